package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/tallyhq/tally/bench"
)

func runBench(ctx context.Context, args []string) error {
	if len(args) > 0 && (args[0] == "query" || args[0] == "alerts") {
		return runReadBench(ctx, args[0], args[1:])
	}
	fs := newFlagSet("bench")
	def := bench.DefaultConfig()
	var (
		cfg        = def
		quick      bool
		cpuProfile string
		only       string
		projFlags  string
		projEnv    string
	)
	intVar(fs, &cfg.Events, "events", def.Events, "events of the end-to-end run and of the projector's backlog")
	intVar(fs, &cfg.IngestEvents, "ingest-events", def.IngestEvents, "events POSTed to the ingest stage")
	intVar(fs, &cfg.IngestClients, "ingest-clients", def.IngestClients, "concurrent HTTP clients of the ingest run")
	intVar(fs, &cfg.FreshnessRate, "freshness-rate", def.FreshnessRate, "steady publish rate of the freshness run, events/s")
	durationVar(fs, &cfg.FreshnessDuration, "freshness-duration", def.FreshnessDuration, "how long the freshness run publishes")
	boolVar(fs, &quick, "quick", false, "smoke-test sizes: 20,000 events, 3s of freshness (overrides the sizes above)")
	boolVar(fs, &cfg.Keep, "keep", false, "keep the temporary folder (NATS store, ClickHouse data, logs) and the databases")
	stringVar(fs, &cfg.Dir, "temp-dir", "", "where to make the temporary folder (default: the system temp dir)")
	stringVar(fs, &cfg.ClickHouseAddr, "clickhouse-addr", "", "ClickHouse native address host:port to use; the bench creates and drops databases tally_bench_* on it (default: start clickhouse-server in the temp folder)")
	stringVar(fs, &cfg.ClickHouseUser, "clickhouse-user", "default", "ClickHouse user (with --clickhouse-addr)")
	stringVar(fs, &cfg.ClickHousePass, "clickhouse-password", "", "ClickHouse password (with --clickhouse-addr)")
	stringVar(fs, &cfg.ClickHouseBinary, "clickhouse-server", "", "clickhouse-server binary to start (default: from PATH or /usr/sbin)")
	stringVar(fs, &only, "only", "", "run only these measurements, comma separated: "+strings.Join(bench.Groups, ", ")+" (default: all)")
	stringVar(fs, &projFlags, "projector-flags", "", "extra flags for the projector process (tally project), e.g. \"--batch-size 20000\"")
	stringVar(fs, &projEnv, "projector-env", "", "extra environment for the projector process, space separated, e.g. GOGC=100")
	stringVar(fs, &cpuProfile, "cpu-profile", "", "write a CPU profile of the bench process (NATS server, ingest, clients) to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if quick {
		cfg = cfg.Quick()
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable for the projector process: %w", err)
	}
	cfg.ProjectorCommand = append([]string{exe, "project"}, strings.Fields(projFlags)...)
	cfg.ProjectorEnv = strings.Fields(projEnv)
	cfg.Only = parseKeys(only)
	stop, err := startCPUProfile(cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	rep, err := bench.Run(ctx, cfg, os.Stderr)
	if err != nil {
		return err
	}
	return printReport(rep)
}

// printReport writes the benchmark table to stdout and says on stderr when
// a target was missed.
func printReport(rep bench.Report) error {
	if err := rep.WriteMarkdown(os.Stdout); err != nil {
		return err
	}
	if !rep.Pass() {
		fmt.Fprintln(os.Stderr, "tally bench: some targets were not met (see the table)")
	}
	return nil
}

// runReadBench is `tally bench query` (the dashboard API under load) and
// `tally bench alerts` (one evaluation cycle of every alert rule), both over
// a generated dataset cached in --data-dir.
func runReadBench(ctx context.Context, mode string, args []string) error {
	fs := newFlagSet("bench " + mode)
	def := bench.DefaultReadConfig()
	cfg := def
	var end, cpuProfile string
	intVar(fs, &cfg.Dataset.Orgs, "orgs", def.Dataset.Orgs, "organizations in the dataset")
	intVar(fs, &cfg.Dataset.Resellers, "resellers", def.Dataset.Resellers, "resellers in the dataset")
	intVar(fs, &cfg.Dataset.Jobs, "jobs", def.Dataset.Jobs, "jobs in the dataset")
	intVar(fs, &cfg.Dataset.Months, "months", def.Dataset.Months, "months of jobs in the dataset")
	stringVar(fs, &end, "end", def.Dataset.End.Format(time.RFC3339), "where the data ends, the benchmark's \"now\" (RFC 3339, aligned to 15 minutes)")
	stringVar(fs, &cfg.DataDir, "data-dir", "", "keep the ClickHouse data with the dataset here and reuse it on the next run (default: a temporary folder)")
	stringVar(fs, &cfg.Dir, "temp-dir", "", "where to make the temporary folder (default: the system temp dir)")
	boolVar(fs, &cfg.Keep, "keep", false, "keep the temporary folder")
	stringVar(fs, &cfg.ClickHouseAddr, "clickhouse-addr", "", "ClickHouse native address host:port to use; the dataset is kept there in --clickhouse-database (default: start clickhouse-server)")
	stringVar(fs, &cfg.ClickHouseUser, "clickhouse-user", "default", "ClickHouse user (with --clickhouse-addr)")
	stringVar(fs, &cfg.ClickHousePass, "clickhouse-password", "", "ClickHouse password (with --clickhouse-addr)")
	stringVar(fs, &cfg.ClickHouseBinary, "clickhouse-server", "", "clickhouse-server binary to start (default: from PATH or /usr/sbin)")
	stringVar(fs, &cfg.Database, "clickhouse-database", def.Database, "database holding the dataset")
	stringVar(fs, &cpuProfile, "cpu-profile", "", "write a CPU profile of the bench process (the "+mode+" stage and its clients) to this file")
	if mode == "query" {
		intVar(fs, &cfg.Clients, "clients", def.Clients, "concurrent API clients")
		durationVar(fs, &cfg.Duration, "duration", def.Duration, "how long the clients are measured")
		durationVar(fs, &cfg.Warmup, "warmup", def.Warmup, "unmeasured warm-up before that")
		durationVar(fs, &cfg.Think, "think", def.Think, "mean pause of each client between interactions (exponential), a user reading the page; 0: none (saturation)")
	} else {
		intVar(fs, &cfg.Cycles, "cycles", def.Cycles, "evaluation cycles (the first raises the alerts)")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	t, err := time.Parse(time.RFC3339, end)
	if err != nil {
		return fmt.Errorf("--end %q: %w", end, err)
	}
	cfg.Dataset.End = t.UTC()
	run := bench.RunQuery
	if mode == "alerts" {
		run = bench.RunAlerts
	}
	stop, err := startCPUProfile(cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	rep, err := run(ctx, cfg, os.Stderr)
	if err != nil {
		return err
	}
	return printReport(rep)
}

// startCPUProfile writes a CPU profile of this process to path until stop
// is called; with no path it does nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
