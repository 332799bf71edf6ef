package main

import (
	"context"
	"log/slog"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/tallyhq/tally/ops"
)

// runWithOps runs one stage beside its ops server (/healthz, /readyz,
// /metrics on opsAt) until ctx ends or either of them fails.
func runWithOps(ctx context.Context, log *slog.Logger, reg *prometheus.Registry, opsAt string, checks map[string]ops.Check, run func(context.Context) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return run(gctx) })
	g.Go(func() error { return ops.New(ops.Config{Listen: opsAt}, log, reg, checks).Run(gctx) })
	return g.Wait()
}

// readyChecks are the readiness checks of a stage: NATS connected and, when
// the stage uses it, ClickHouse answering.
func readyChecks(nc *nats.Conn, conn driver.Conn) map[string]ops.Check {
	checks := map[string]ops.Check{"nats": natsCheck(nc)}
	if conn != nil {
		checks["clickhouse"] = func(ctx context.Context) error { return conn.Ping(ctx) }
	}
	return checks
}
