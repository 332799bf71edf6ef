package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/tallyhq/tally/chserver"
	"github.com/tallyhq/tally/chstore"
)

// ReadConfig configures the read-side benchmarks, `tally bench query` (the
// dashboard API under concurrent load) and `tally bench alerts` (one
// evaluation cycle of every alert rule), over a generated dataset.
type ReadConfig struct {
	Dataset DatasetConfig
	// DataDir keeps the clickhouse-server data (with the dataset) between
	// runs: a second run with the same dataset reuses it. Empty: a
	// temporary folder, removed at the end.
	DataDir string
	// Dir is where the temporary folder is made; "" means os.TempDir().
	Dir  string
	Keep bool
	// ClickHouseAddr is a running ClickHouse to use instead of starting
	// one; the dataset lives in Database there (kept between runs).
	ClickHouseAddr   string
	ClickHouseUser   string
	ClickHousePass   string
	ClickHouseBinary string
	Database         string

	// Query benchmark: Clients concurrent clients for Duration after
	// Warmup, each sending the next request when the last one answered.
	Clients  int
	Duration time.Duration
	Warmup   time.Duration
	// Think is each client's mean pause (exponentially distributed)
	// between interactions, as a dashboard user reads the page; 0 sends
	// the next request at once (a saturation test).
	Think time.Duration
	// MaxP99 is the p99 target of overview, organizations, activity and
	// the one-month daily usage; MaxBreakdownP99 of the 13-month
	// breakdown by organization.
	MaxP99          time.Duration
	MaxBreakdownP99 time.Duration

	// Alerts benchmark: Cycles evaluation cycles (the first raises the
	// alerts, the others find them raised), each within MaxCycle.
	Cycles   int
	MaxCycle time.Duration
}

// DefaultReadConfig returns the configuration of issues 3 and 4.
func DefaultReadConfig() ReadConfig {
	return ReadConfig{
		Dataset: DefaultDatasetConfig(), Database: "tally_bench_read",
		Clients: 50, Duration: 60 * time.Second, Warmup: 5 * time.Second, Think: 3 * time.Second,
		MaxP99: 100 * time.Millisecond, MaxBreakdownP99: 300 * time.Millisecond,
		Cycles: 3, MaxCycle: 2 * time.Second,
	}
}

// Validate reports the first invalid setting.
func (c ReadConfig) Validate() error {
	if err := c.Dataset.Validate(); err != nil {
		return err
	}
	switch {
	case !validIdent(c.Database):
		return fmt.Errorf("bench: database %q must match ^[a-zA-Z_][a-zA-Z0-9_]*$", c.Database)
	case c.Clients < 1 || c.Duration <= 0 || c.Warmup < 0 || c.Think < 0:
		return errors.New("bench: at least one client and a positive duration")
	case c.Cycles < 1:
		return errors.New("bench: at least one alert cycle")
	case c.MaxP99 <= 0 || c.MaxBreakdownP99 <= 0 || c.MaxCycle <= 0:
		return errors.New("bench: targets must be positive")
	}
	return nil
}

// readEnv is a ClickHouse holding the dataset.
type readEnv struct {
	cfg      ReadConfig
	progress io.Writer
	log      *slog.Logger
	began    time.Time
	dir      string // temporary folder, removed by close unless Keep
	chsrv    *chserver.Server
	ds       *Dataset
	chPID    int
	version  string
	load     float64
}

func (e *readEnv) logf(format string, args ...any) {
	fmt.Fprintf(e.progress, "[%6.1fs] %s\n", time.Since(e.began).Seconds(), fmt.Sprintf(format, args...))
}

func setupRead(ctx context.Context, cfg ReadConfig, progress io.Writer) (_ *readEnv, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &readEnv{cfg: cfg, progress: progress, began: time.Now(),
		log: slog.New(slog.NewTextHandler(progress, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	defer func() {
		if err != nil {
			_ = e.close()
		}
	}()
	if e.dir, err = os.MkdirTemp(cfg.Dir, "tally-bench-read-"); err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	ch := chstore.Config{Addr: cfg.ClickHouseAddr, Username: cfg.ClickHouseUser, Password: cfg.ClickHousePass, Database: cfg.Database}.WithDefaults()
	if ch.Addr == "" {
		dataDir := filepath.Join(e.dir, "clickhouse")
		if cfg.DataDir != "" {
			dataDir = filepath.Join(cfg.DataDir, "clickhouse")
		}
		e.chsrv, err = chserver.Start(ctx, chserver.Config{Binary: cfg.ClickHouseBinary, Dir: dataDir, Log: e.log})
		if err != nil {
			return nil, err
		}
		ch.Addr = e.chsrv.Addr()
		e.chPID = findServerPID(e.chsrv.Dir())
		e.logf("clickhouse-server started at %s, data in %s", ch.Addr, dataDir)
	}
	e.logf("preparing the dataset (%d organizations, %d resellers, %d jobs over %d months up to %s)",
		cfg.Dataset.Orgs, cfg.Dataset.Resellers, cfg.Dataset.Jobs, cfg.Dataset.Months, cfg.Dataset.End.Format(time.RFC3339))
	e.ds, err = PrepareDataset(ctx, ch, cfg.Dataset, e.log, func(s string) { e.logf("%s", s) })
	if err != nil {
		return nil, err
	}
	if e.ds.Reused {
		e.logf("reused the dataset in %s (%d job rows, %d usage_15m rows)", ch.Database, e.ds.JobRows, e.ds.UsageRow)
	} else {
		e.logf("dataset ready in %s (%d job rows, %d usage_15m rows)", e.ds.Took.Round(time.Second), e.ds.JobRows, e.ds.UsageRow)
	}
	if err := e.ds.Conn.QueryRow(ctx, "SELECT version()").Scan(&e.version); err != nil {
		return nil, fmt.Errorf("clickhouse version: %w", err)
	}
	e.load = machineBusy(ctx, time.Second)
	return e, nil
}

func (e *readEnv) machine() string {
	s := fmt.Sprintf("%d CPUs, %s %s/%s, ClickHouse %s", runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, e.version)
	if e.load >= 0 {
		s += fmt.Sprintf("; machine %.0f%% busy just before measuring (other processes)", 100*e.load)
	}
	if avg, err := os.ReadFile("/proc/loadavg"); err == nil && len(avg) > 14 {
		s += "; loadavg " + string(avg[:14])
	}
	return s
}

func (e *readEnv) sizes() string {
	d := e.cfg.Dataset
	return fmt.Sprintf("%s organizations across %d resellers (Zipf-sized), %s jobs over %d months up to %s (%s usage_15m rows)",
		num(float64(d.Orgs)), d.Resellers, num(float64(e.ds.JobRows)), d.Months, d.End.Format(time.RFC3339), num(float64(e.ds.UsageRow)))
}

func (e *readEnv) close() error {
	var errs []error
	if e.ds != nil {
		errs = append(errs, e.ds.Conn.Close())
	}
	if e.chsrv != nil {
		errs = append(errs, e.chsrv.Stop())
	}
	if e.dir != "" {
		if e.cfg.Keep {
			e.logf("kept %s", e.dir)
		} else {
			errs = append(errs, os.RemoveAll(e.dir))
		}
	}
	return errors.Join(errs...)
}
