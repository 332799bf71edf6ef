package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"

	"github.com/tallyhq/tally/alerts"
	"github.com/tallyhq/tally/chserver"
	"github.com/tallyhq/tally/chstore"
	"github.com/tallyhq/tally/demo"
	"github.com/tallyhq/tally/ingest"
	"github.com/tallyhq/tally/ops"
	"github.com/tallyhq/tally/projector"
	"github.com/tallyhq/tally/publish"
	"github.com/tallyhq/tally/query"
	"github.com/tallyhq/tally/schemas"
	"github.com/tallyhq/tally/stream"
)

// errNoClickHouse explains how to get a ClickHouse when dev finds none.
var errNoClickHouse = errors.New(`no ClickHouse: pass --clickhouse-addr (TALLY_CLICKHOUSE_ADDR) to use a running server, or install one so tally can start it:
    apt-get update && apt-get install -y clickhouse-server     (make dev does this)
or start the one in docker-compose.yml:
    docker compose up -d clickhouse   and pass --clickhouse-addr 127.0.0.1:9000`)

func runDev(ctx context.Context, args []string) error {
	fs := newFlagSet("dev")
	var (
		lo         logOptions
		qo         queryOptions
		co         clickhouseOptions
		dataDir    string
		chBinary   string
		natsPort   int
		listen     string
		opsAt      string
		keys       string
		withDemo   bool
		demoSpeed  float64
		demoRate   float64
		demoSeed   int
		demoBackfl time.Duration
		demoHook   string
		hookSecret string
		alertEvery time.Duration
	)
	lo.register(fs)
	qo.register(fs)
	co.register(fs, "", "ClickHouse native address host:port to use (default: start clickhouse-server as a child process)")
	stringVar(fs, &dataDir, "data-dir", ".tally-dev", "folder for the embedded NATS store and the ClickHouse data")
	stringVar(fs, &chBinary, "clickhouse-server", "", "clickhouse-server binary to start (default: from PATH or /usr/sbin)")
	intVar(fs, &natsPort, "nats-port", 4222, "embedded NATS port (-1 picks a free one)")
	stringVar(fs, &listen, "listen", ":8080", "HTTP ingest address")
	stringVar(fs, &opsAt, "ops-listen", ":9090", "address for /healthz, /readyz and /metrics")
	stringVar(fs, &keys, "ingest-keys", "", "ingest keys (default: one generated and printed)")
	boolVar(fs, &withDemo, "demo", true, "publish demo traffic")
	float64Var(fs, &demoSpeed, "demo-speed", 0, "demo simulated-time multiplier (0 = generator default)")
	float64Var(fs, &demoRate, "demo-rate", 0, "demo live events per second (0 = generator default)")
	intVar(fs, &demoSeed, "demo-seed", 1, "demo random seed")
	durationVar(fs, &demoBackfl, "demo-backfill", 0, "demo history generated at start (0 = generator default)")
	stringVar(fs, &demoHook, "demo-webhook", "", "webhook URL registered for every demo reseller's alerts (default: a sink in tally dev that logs them; off: none)")
	stringVar(fs, &hookSecret, "demo-webhook-secret", "", "signing secret of the demo webhooks (default: a random one)")
	durationVar(fs, &alertEvery, "alerts-interval", alerts.DefaultConfig().Interval, "how often the alert rules are evaluated")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := lo.logger()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	dataDir, _ = filepath.Abs(dataDir)

	// Find ClickHouse first: without one there is nothing to start.
	var chBin string
	if co.addr == "" {
		if chBin, err = findClickHouse(chBinary); err != nil {
			return err
		}
	}

	// NATS: a port in use falls back to a free one rather than failing.
	if natsPort > 0 && !portFree(natsPort) {
		log.Warn("nats port in use, picking a free one", "port", natsPort)
		natsPort = -1
	}
	natsLog, _ := lo.loggerAtLeast(slog.LevelWarn)
	ns, err := stream.StartEmbedded(stream.EmbeddedConfig{
		Host: "127.0.0.1", Port: natsPort, StoreDir: filepath.Join(dataDir, "nats"), Logger: natsLog,
	})
	if err != nil {
		return fmt.Errorf("embedded nats: %w", err)
	}
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()

	chcfg := co.config()
	var chsrv *chserver.Server
	if co.addr == "" {
		chsrv, err = chserver.Start(ctx, chserver.Config{Binary: chBin, Dir: filepath.Join(dataDir, "clickhouse"), Log: log})
		if err != nil {
			return fmt.Errorf("start clickhouse: %w", err)
		}
		defer func() {
			if err := chsrv.Stop(); err != nil {
				log.Warn("stop clickhouse", "err", err)
			}
		}()
		chcfg.Addr = chsrv.Addr()
	}
	if _, err := chstore.Migrate(ctx, chcfg, log); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	conn, err := chstore.Open(ctx, chcfg)
	if err != nil {
		return err
	}
	defer conn.Close()

	nc, err := nats.Connect(ns.ClientURL(), nats.Name("tally-dev"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect embedded nats: %w", err)
	}
	defer nc.Close()
	js, err := newJetStream(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	scfg := stream.Config{DedupWindow: stream.DefaultDedupWindow}
	if err := stream.Ensure(ctx, js, scfg); err != nil {
		return fmt.Errorf("ensure streams: %w", err)
	}

	ingestKeys := parseKeys(keys)
	if len(ingestKeys) == 0 {
		ingestKeys = []string{devKey(dataDir)}
	}
	icfg := ingest.Config{Listen: listen, Keys: ingestKeys}
	if err := icfg.Validate(); err != nil {
		return err
	}
	pcfg := projector.DefaultConfig()
	pcfg.DedupWindow = scfg.DedupWindow
	reg := newRegistry()
	in, err := ingest.New(icfg, js, log.With("stage", "ingest"), reg)
	if err != nil {
		return err
	}
	pr, err := projector.New(pcfg, js, conn, log.With("stage", "projector"), reg)
	if err != nil {
		return err
	}
	qcfg := qo.config()
	qcfg.JetStream = js
	if err := qcfg.Validate(); err != nil {
		return err
	}
	qs, err := query.New(qcfg, conn, log.With("stage", "query"), reg)
	if err != nil {
		return err
	}
	acfg := alerts.DefaultConfig()
	acfg.Interval = alertEvery
	acfg.LeaseTTL = max(acfg.LeaseTTL, alertEvery)
	al, err := alerts.New(acfg, js, conn, log.With("stage", "alerts"))
	if err != nil {
		return err
	}
	queryKey, err := devQueryKey(ctx, conn, dataDir)
	if err != nil {
		return err
	}
	opsSrv := ops.New(ops.Config{Listen: opsAt}, log, reg, readyChecks(nc, conn))

	var gen *demo.Generator
	if withDemo {
		dcfg := demo.Config{Seed: int64(demoSeed), Speed: demoSpeed, Rate: demoRate, Backfill: demoBackfl}
		if demoBackfl == 0 && hasEvents(ctx, conn) {
			// A restart on existing data: a full backfill would add a second
			// history under new ids.
			dcfg.Backfill, dcfg.CatchUp = 2*time.Hour, time.Hour
			log.Info("existing data found: demo backfills only the last 2 hours")
		}
		if err := dcfg.Validate(); err != nil {
			return err
		}
		gen = demo.New(dcfg, log.With("stage", "demo"))
	}
	var reseller, resellerKey string
	if gen != nil {
		reseller = gen.Scenario().Resellers[0].ID
		if resellerKey, err = devResellerKey(ctx, conn, dataDir, reseller); err != nil {
			return err
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	var hookInfo string
	if gen != nil && demoHook != "off" {
		// Registered before the alerts stage starts, so its first alerts
		// find the webhooks.
		if hookSecret == "" {
			hookSecret = randomSecret()
		}
		hookInfo = demoHook
		if demoHook == "" {
			url, serve, err := serveDemoWebhookSink(gctx, hookSecret, log.With("stage", "webhook-sink"))
			if err != nil {
				return err
			}
			g.Go(serve)
			demoHook, hookInfo = url, url+"   (each delivery is logged as \"webhook received\")"
		}
		var resellers []string
		for _, r := range gen.Scenario().Resellers {
			resellers = append(resellers, r.ID)
		}
		if err := registerDemoWebhooks(ctx, conn, resellers, demoHook, hookSecret); err != nil {
			return err
		}
	}
	g.Go(func() error { return in.Run(gctx) })
	g.Go(func() error { return pr.Run(gctx) })
	g.Go(func() error { return opsSrv.Run(gctx) })
	g.Go(func() error { return qs.Run(gctx) })
	g.Go(func() error { return al.Run(gctx) })
	if gen != nil {
		pub := publish.New(js, publish.Options{})
		g.Go(func() error { return gen.Run(gctx, demoSink(pub, log)) })
	}
	g.Go(func() error { return reportProgress(gctx, conn, log) })

	printBanner(devInfo{
		ingest: httpURL(listen), ops: httpURL(opsAt), nats: ns.ClientURL(), clickhouse: chcfg.Addr,
		database: chcfg.Database, key: ingestKeys[0], dataDir: dataDir, demo: withDemo, ownCH: chsrv != nil,
		query: httpURL(qcfg.Listen), queryKey: queryKey, resellerKey: resellerKey, reseller: reseller,
		webhook: hookInfo,
	})
	err = g.Wait()
	log.Info("stopped; shutting down nats and clickhouse")
	return err
}

// demoSink publishes generated events; rejected ones are a generator bug and are logged.
func demoSink(pub *publish.Publisher, log *slog.Logger) func(context.Context, []*schemas.Event) error {
	return func(ctx context.Context, events []*schemas.Event) error {
		results, err := pub.PublishBatch(ctx, events)
		for _, r := range results {
			if r.Status == publish.StatusRejected {
				log.Warn("demo event rejected", "id", r.ID, "err", r.Err)
			}
		}
		return err
	}
}

// reportProgress logs what the read models hold every 15 seconds, so a
// developer sees the demo land in ClickHouse.
func reportProgress(ctx context.Context, conn driver.Conn, log *slog.Logger) error {
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		var events, orgs uint64
		var minutes float64
		if err := conn.QueryRow(ctx, progressQuery).Scan(&events, &orgs, &minutes); err != nil {
			log.Warn("progress query", "err", err)
			continue
		}
		log.Info("read models", "events", events, "organizations", orgs, "usage_minutes", int64(minutes))
	}
}

func hasEvents(ctx context.Context, conn driver.Conn) bool {
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM events").Scan(&n); err != nil {
		return false
	}
	return n > 0
}

const progressQuery = `SELECT
    (SELECT count() FROM events) AS events,
    (SELECT uniqExact(reseller_id, org_id) FROM organizations) AS orgs,
    (SELECT sumMerge(media_ms) / 60000 FROM usage_15m) AS minutes`

type devInfo struct {
	ingest, ops, nats, clickhouse, database, key, dataDir string
	query, queryKey, reseller, resellerKey, webhook       string
	demo, ownCH                                           bool
}

func printBanner(d devInfo) {
	chNote := "(started by tally, data in " + filepath.Join(d.dataDir, "clickhouse") + ")"
	if !d.ownCH {
		chNote = "(given)"
	}
	host, port, _ := net.SplitHostPort(d.clickhouse)
	var b strings.Builder
	fmt.Fprintf(&b, "\ntally dev is running. Ctrl-C stops everything.\n\n")
	fmt.Fprintf(&b, "  Dashboard      %s/\n", d.query)
	if d.resellerKey != "" {
		fmt.Fprintf(&b, "                 sign in with %s   (reseller %s)\n", d.resellerKey, d.reseller)
		fmt.Fprintf(&b, "                 or with %s   (operator: every reseller)\n", d.queryKey)
	} else {
		fmt.Fprintf(&b, "                 sign in with %s   (operator: every reseller)\n", d.queryKey)
	}
	fmt.Fprintf(&b, "  Ingest API     %s/v1/events   (Authorization: Bearer %s)\n", d.ingest, d.key)
	fmt.Fprintf(&b, "  Query API      %s/v1/overview?reseller=acme-media   (Authorization: Bearer %s, operator key)\n", d.query, d.queryKey)
	fmt.Fprintf(&b, "                 OpenAPI document: %s/openapi.yaml\n", d.query)
	fmt.Fprintf(&b, "  Health/metrics %s/healthz  %s/readyz  %s/metrics\n", d.ops, d.ops, d.ops)
	fmt.Fprintf(&b, "  NATS           %s (JetStream, store in %s)\n", d.nats, filepath.Join(d.dataDir, "nats"))
	fmt.Fprintf(&b, "  ClickHouse     %s %s\n", d.clickhouse, chNote)
	fmt.Fprintf(&b, "                 clickhouse-client --host %s --port %s -d %s\n", host, port, d.database)
	fmt.Fprintf(&b, "  Demo traffic   %v\n", d.demo)
	if d.webhook != "" {
		fmt.Fprintf(&b, "  Alert webhook  %s\n", d.webhook)
	}
	fmt.Fprintf(&b, `
Try:
  curl -s -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \\
       --data @schemas/examples/job.completed.json %s/v1/events
  curl -s -H 'Authorization: Bearer %s' '%s/v1/organizations?reseller=acme-media&sort=usage&order=desc'
  clickhouse-client --host %s --port %s -d %s -q 'SELECT org_id, sumMerge(media_ms)/60000 AS minutes FROM usage_15m GROUP BY org_id ORDER BY minutes DESC LIMIT 5'

`, d.key, d.ingest, d.queryKey, d.query, host, port, d.database)
	fmt.Fprint(os.Stderr, b.String())
}

// findClickHouse returns the clickhouse-server binary to start, or how to
// get one.
func findClickHouse(explicit string) (string, error) {
	bin, err := chserver.FindBinary(explicit)
	if errors.Is(err, chserver.ErrNotFound) {
		return "", fmt.Errorf("%w\n%w", err, errNoClickHouse)
	}
	return bin, err
}

// devKey returns the dev ingest key, generated once and kept in the data dir
// so a restart prints the same key.
func devKey(dataDir string) string {
	path := filepath.Join(dataDir, "ingest-key")
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
		return string(b)
	}
	buf := make([]byte, 12)
	_, _ = rand.Read(buf)
	key := "dev-" + hex.EncodeToString(buf)
	_ = os.WriteFile(path, []byte(key), 0o600)
	return key
}

func portFree(port int) bool {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func httpURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
