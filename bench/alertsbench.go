package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyhq/tally/alerts"
	"github.com/tallyhq/tally/stream"
)

// RunAlerts benchmarks the alerts stage: Cycles evaluation cycles of every
// rule over the dataset's organizations, one evaluation window apart. The
// first cycle raises every alert the data calls for; the next ones find
// them raised (the steady state). Alerts of earlier runs are removed first.
func RunAlerts(ctx context.Context, cfg ReadConfig, progress io.Writer) (Report, error) {
	e, err := setupRead(ctx, cfg, progress)
	if err != nil {
		return Report{}, err
	}
	rep, runErr := e.runAlerts(ctx)
	closeErr := e.close()
	rep.Elapsed = time.Since(e.began)
	if runErr != nil {
		return rep, runErr
	}
	return rep, closeErr
}

func (e *readEnv) runAlerts(ctx context.Context) (Report, error) {
	cfg := e.cfg
	rep := Report{Machine: e.machine(), Sizes: e.sizes()}
	conn := e.ds.Conn
	for _, table := range []string{"alerts", "alert_settings"} {
		if err := conn.Exec(ctx, "TRUNCATE TABLE "+table); err != nil {
			return rep, fmt.Errorf("truncate %s: %w", table, err)
		}
	}
	ns, err := stream.StartEmbedded(stream.EmbeddedConfig{Port: -1, StoreDir: filepath.Join(e.dir, "nats"), Logger: e.log})
	if err != nil {
		return rep, err
	}
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	nc, err := nats.Connect(ns.ClientURL(), nats.Name("tally-bench-alerts"))
	if err != nil {
		return rep, fmt.Errorf("connect nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return rep, fmt.Errorf("jetstream: %w", err)
	}
	acfg := alerts.DefaultConfig()
	acfg.ActivityConsumer = ""
	acfg.Webhooks.Consumer = ""
	var now time.Time
	acfg.Now = func() time.Time { return now }
	a, err := alerts.New(acfg, js, conn, e.log)
	if err != nil {
		return rep, err
	}
	if err := a.Setup(ctx); err != nil {
		return rep, err
	}
	e.logf("evaluating every rule %d times, %s apart, at %s", cfg.Cycles, acfg.Interval, cfg.Dataset.End.Format(time.RFC3339))
	var took []time.Duration
	for i := range cfg.Cycles {
		now = cfg.Dataset.End.Add(time.Duration(i) * acfg.Interval)
		start := time.Now()
		if err := a.Evaluate(ctx); err != nil {
			return rep, fmt.Errorf("cycle %d: %w", i+1, err)
		}
		took = append(took, time.Since(start))
		e.logf("  cycle %d: %s", i+1, took[i].Round(time.Millisecond))
	}
	rows, err := conn.Query(ctx, `SELECT rule, countIf(state = 'firing') FROM alerts FINAL GROUP BY rule ORDER BY rule`)
	if err != nil {
		return rep, fmt.Errorf("count alerts: %w", err)
	}
	var counts []string
	for rows.Next() {
		var rule string
		var n uint64
		if err := rows.Scan(&rule, &n); err != nil {
			rows.Close()
			return rep, fmt.Errorf("count alerts: %w", err)
		}
		counts = append(counts, fmt.Sprintf("%s %d", rule, n))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("count alerts: %w", err)
	}
	str, err := js.Stream(ctx, alerts.StreamName)
	if err != nil {
		return rep, fmt.Errorf("alerts stream: %w", err)
	}
	info, err := str.Info(ctx)
	if err != nil {
		return rep, fmt.Errorf("alerts stream: %w", err)
	}
	rep.add(Row{Key: "alerts_first", Name: fmt.Sprintf("Alerts: first evaluation cycle of every rule over %s organizations (raises the alerts)", num(float64(cfg.Dataset.Orgs))),
		Kind: Latency, Unit: "ms", Value: ms(took[0]), Max: ms(cfg.MaxCycle),
		Note: fmt.Sprintf("Firing alerts after the cycles: %s; %d messages published on %s. Lease, settings, rule queries, reconcile (read, publish, insert) included.",
			strings.Join(counts, ", "), info.State.Msgs, alerts.StreamName)})
	if len(took) > 1 {
		var worst time.Duration
		var parts []string
		for _, d := range took[1:] {
			worst = max(worst, d)
			parts = append(parts, num(ms(d))+" ms")
		}
		rep.add(Row{Key: "alerts_steady", Name: "Alerts: next evaluation cycles, alerts already raised (slowest)",
			Kind: Latency, Unit: "ms", Value: ms(worst), Max: ms(cfg.MaxCycle), Note: "Cycles: " + strings.Join(parts, ", ") + "."})
	}
	return rep, nil
}

func pidSelf() int { return os.Getpid() }
