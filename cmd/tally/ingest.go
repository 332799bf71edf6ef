package main

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tallyhq/tally/ingest"
	"github.com/tallyhq/tally/stream"
)

func runIngest(ctx context.Context, args []string) error {
	fs := newFlagSet("ingest")
	var (
		lo     logOptions
		no     natsOptions
		so     streamOptions
		listen string
		keys   string
		opsAt  string
		maxB   int
		maxN   int
	)
	lo.register(fs)
	no.register(fs)
	so.register(fs)
	stringVar(fs, &listen, "listen", ":8080", "HTTP ingest address")
	stringVar(fs, &keys, "ingest-keys", "", "comma-separated ingest keys accepted as Bearer tokens (required)")
	stringVar(fs, &opsAt, "ops-listen", ":9091", "address for /healthz, /readyz and /metrics (empty disables)")
	intVar(fs, &maxB, "max-body-bytes", ingest.DefaultMaxBodyBytes, "largest request body accepted")
	intVar(fs, &maxN, "max-batch", ingest.DefaultMaxBatch, "most events accepted in one request")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := lo.logger()
	if err != nil {
		return err
	}
	cfg := ingest.Config{Listen: listen, Keys: parseKeys(keys), MaxBodyBytes: maxB, MaxBatch: maxN}
	if err := cfg.Validate(); err != nil {
		return err
	}
	nc, js, err := no.connect(log, "ingest")
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := stream.Ensure(ctx, js, so.config()); err != nil {
		return fmt.Errorf("ensure streams: %w", err)
	}
	reg := newRegistry()
	in, err := ingest.New(cfg, js, log, reg)
	if err != nil {
		return err
	}
	return runWithOps(ctx, log, reg, opsAt, readyChecks(nc, nil), in.Run)
}

// newRegistry returns a Prometheus registry with the Go and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
