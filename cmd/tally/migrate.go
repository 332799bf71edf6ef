package main

import (
	"context"
	"fmt"
	"time"

	"github.com/tallyhq/tally/chstore"
	"github.com/tallyhq/tally/stream"
)

func runMigrate(ctx context.Context, args []string) error {
	fs := newFlagSet("migrate")
	var (
		lo       logOptions
		no       natsOptions
		co       clickhouseOptions
		so       streamOptions
		skipNATS bool
	)
	lo.register(fs)
	no.register(fs)
	co.register(fs, "127.0.0.1:9000", "ClickHouse native protocol address host:port")
	so.register(fs)
	boolVar(fs, &skipNATS, "skip-streams", false, "only migrate ClickHouse; leave the JetStream streams alone")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := lo.logger()
	if err != nil {
		return err
	}
	applied, err := chstore.Migrate(ctx, co.config(), log)
	if err != nil {
		return fmt.Errorf("migrate clickhouse: %w", err)
	}
	for _, a := range applied {
		log.Info("applied migration", "version", a.Version, "name", a.Name)
	}
	log.Info("clickhouse schema up to date", "database", co.database, "applied_now", len(applied))
	if skipNATS {
		return nil
	}
	nc, js, err := no.connect(log, "migrate")
	if err != nil {
		return err
	}
	defer nc.Close()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := stream.Ensure(sctx, js, so.config()); err != nil {
		return fmt.Errorf("ensure streams: %w", err)
	}
	log.Info("jetstream streams up to date")
	return nil
}
