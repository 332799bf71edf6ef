package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/tallyhq/tally/chstore"
	"github.com/tallyhq/tally/projector"
	"github.com/tallyhq/tally/stream"
)

func runProject(ctx context.Context, args []string) error {
	fs := newFlagSet("project")
	var (
		lo    logOptions
		no    natsOptions
		co    clickhouseOptions
		so    streamOptions
		po    projectorOptions
		opsAt string
	)
	lo.register(fs)
	no.register(fs)
	co.register(fs, "127.0.0.1:9000", "ClickHouse native protocol address host:port")
	so.register(fs)
	po.register(fs)
	stringVar(fs, &opsAt, "ops-listen", ":9092", "address for /healthz, /readyz and /metrics (empty disables)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := lo.logger()
	if err != nil {
		return err
	}
	pcfg := po.config(so)
	if err := pcfg.Validate(); err != nil {
		return err
	}
	if err := po.tuneGC(log, os.Getenv); err != nil {
		return err
	}
	nc, js, err := no.connect(log, "project")
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := stream.Ensure(ctx, js, so.config()); err != nil {
		return fmt.Errorf("ensure streams: %w", err)
	}
	conn, err := chstore.Open(ctx, co.config())
	if err != nil {
		return err
	}
	defer conn.Close()
	reg := newRegistry()
	p, err := projector.New(pcfg, js, conn, log, reg)
	if err != nil {
		return err
	}
	return runWithOps(ctx, log, reg, opsAt, readyChecks(nc, conn), p.Run)
}

// projectorOptions configures the projector stage.
type projectorOptions struct {
	consumer  string
	batchSize int
	batchWait time.Duration
	linger    time.Duration
	memLimit  int // MiB; 0 leaves Go's GC defaults
}

// Defaults of the projector process's GC tuning (see docs/operations.md):
// a soft memory limit well inside the 256 MiB budget lets the GC run
// rarely (GOGC 400) while the heap is small.
const (
	defaultProjectorMemLimitMiB = 200
	projectorGCPercent          = 400
)

func (o *projectorOptions) register(fs *flag.FlagSet) {
	def := projector.DefaultConfig()
	stringVar(fs, &o.consumer, "consumer", def.Consumer, "durable JetStream consumer name (shared by projector replicas)")
	intVar(fs, &o.batchSize, "batch-size", def.BatchSize, "most events in one ClickHouse INSERT")
	durationVar(fs, &o.batchWait, "batch-wait", def.BatchWait, "longest wait to fill a batch")
	durationVar(fs, &o.linger, "batch-linger", projector.DefaultBatchLinger, "longest a batch of a heavy stream (a tenth of --batch-size) keeps filling before it is inserted")
	intVar(fs, &o.memLimit, "memory-limit-mib", defaultProjectorMemLimitMiB,
		"soft memory limit of the process in MiB; with it the GC runs at GOGC 400 (0 keeps Go's defaults; GOMEMLIMIT and GOGC in the environment win)")
}

// tuneGC applies the memory limit and GC percent unless the Go runtime's
// own environment variables set them.
func (o *projectorOptions) tuneGC(log *slog.Logger, getenv func(string) string) error {
	if o.memLimit < 0 {
		return fmt.Errorf("memory limit: must be >= 0 MiB, got %d", o.memLimit)
	}
	if o.memLimit == 0 {
		return nil
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(o.memLimit) << 20)
	}
	if getenv("GOGC") == "" {
		debug.SetGCPercent(projectorGCPercent)
	}
	log.Debug("projector GC tuned", "memory_limit", debug.SetMemoryLimit(-1), "gogc_env", getenv("GOGC"))
	return nil
}

func (o *projectorOptions) config(so streamOptions) projector.Config {
	c := projector.DefaultConfig()
	c.Consumer = o.consumer
	c.BatchSize = o.batchSize
	c.BatchWait = o.batchWait
	c.BatchLinger = o.linger
	c.DedupWindow = so.dedupWindow
	return c
}
