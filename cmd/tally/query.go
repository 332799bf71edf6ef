package main

import (
	"context"
	"flag"

	"github.com/tallyhq/tally/chstore"
	"github.com/tallyhq/tally/query"
)

func runQuery(ctx context.Context, args []string) error {
	fs := newFlagSet("query")
	var (
		lo logOptions
		co clickhouseOptions
		qo queryOptions
		no natsOptions
	)
	lo.register(fs)
	co.register(fs, "127.0.0.1:9000", "ClickHouse native protocol address host:port")
	qo.register(fs)
	// NATS is optional here: only test alerts need it.
	stringVar(fs, &no.url, "nats-url", "", "NATS server URL(s), comma separated; optional: without it the API cannot send test alerts (503)")
	stringVar(fs, &no.creds, "nats-creds", "", "NATS credentials file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := lo.logger()
	if err != nil {
		return err
	}
	qcfg := qo.config()
	if err := qcfg.Validate(); err != nil {
		return err
	}
	conn, err := chstore.Open(ctx, co.config())
	if err != nil {
		return err
	}
	defer conn.Close()
	if no.url != "" {
		nc, js, err := no.connect(log, "query")
		if err != nil {
			return err
		}
		defer nc.Close()
		qcfg.JetStream = js
	}
	q, err := query.New(qcfg, conn, log, newRegistry())
	if err != nil {
		return err
	}
	return q.Run(ctx)
}

// queryOptions configures the query stage, which serves its own /healthz,
// /readyz and /metrics beside the API.
type queryOptions struct {
	cfg query.Config
}

func (o *queryOptions) register(fs *flag.FlagSet) {
	def := query.DefaultConfig()
	stringVar(fs, &o.cfg.Listen, "query-listen", def.Listen, "query API address (dashboard API, /healthz, /readyz, /metrics)")
	durationVar(fs, &o.cfg.RequestTimeout, "query-timeout", def.RequestTimeout, "longest a query API request may run")
	durationVar(fs, &o.cfg.KeyCacheTTL, "key-cache-ttl", def.KeyCacheTTL, "how long API key lookups are cached (a revocation takes effect within it)")
	stringVar(fs, &o.cfg.TimeZone, "default-tz", def.TimeZone, "IANA time zone of requests without ?tz=")
}

func (o *queryOptions) config() query.Config { return o.cfg }
