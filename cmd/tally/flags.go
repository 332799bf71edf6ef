package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyhq/tally/chstore"
	"github.com/tallyhq/tally/stream"
)

// newFlagSet returns a flag set for a subcommand whose usage lists the
// TALLY_* environment variable beside each flag.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("tally "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tally %s [flags]\n\nFlags (environment variable in brackets):\n", name)
		fs.PrintDefaults()
	}
	return fs
}

// envName is the environment variable that sets a flag: --nats-url is TALLY_NATS_URL.
func envName(flagName string) string {
	return "TALLY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func usageWithEnv(name, usage string) string { return usage + " [" + envName(name) + "]" }

func stringVar(fs *flag.FlagSet, p *string, name, def, usage string) {
	if v, ok := os.LookupEnv(envName(name)); ok {
		def = v
	}
	fs.StringVar(p, name, def, usageWithEnv(name, usage))
}

func intVar(fs *flag.FlagSet, p *int, name string, def int, usage string) {
	fs.IntVar(p, name, def, usageWithEnv(name, usage))
	envInto(fs, name)
}

func boolVar(fs *flag.FlagSet, p *bool, name string, def bool, usage string) {
	fs.BoolVar(p, name, def, usageWithEnv(name, usage))
	envInto(fs, name)
}

func durationVar(fs *flag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	fs.DurationVar(p, name, def, usageWithEnv(name, usage))
	envInto(fs, name)
}

func float64Var(fs *flag.FlagSet, p *float64, name string, def float64, usage string) {
	fs.Float64Var(p, name, def, usageWithEnv(name, usage))
	envInto(fs, name)
}

// envInto applies the flag's environment variable, if set, as its new
// default; a flag on the command line still wins because it is parsed later.
// A malformed value is remembered and reported by parseFlags.
func envInto(fs *flag.FlagSet, name string) {
	v, ok := os.LookupEnv(envName(name))
	if !ok {
		return
	}
	f := fs.Lookup(name)
	if err := f.Value.Set(v); err != nil {
		envErrors = append(envErrors, fmt.Errorf("%s=%q: %w", envName(name), v, err))
		return
	}
	f.DefValue = v
}

var envErrors []error

// parseFlags parses args and reports malformed environment values first.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if len(envErrors) > 0 {
		return envErrors[0]
	}
	return fs.Parse(args)
}

// logOptions selects the log format and level.
type logOptions struct {
	format string
	level  string
}

func (o *logOptions) register(fs *flag.FlagSet) {
	stringVar(fs, &o.format, "log-format", "text", "log format: text or json")
	stringVar(fs, &o.level, "log-level", "info", "log level: debug, info, warn or error")
}

func (o *logOptions) logger() (*slog.Logger, error) { return o.loggerAtLeast(slog.LevelDebug) }

// loggerAtLeast is logger with a floor on the level: embedded servers' info
// chatter is kept out of the dev console.
func (o *logOptions) loggerAtLeast(floor slog.Level) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(o.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", o.level, err)
	}
	lvl = max(lvl, floor)
	hopts := &slog.HandlerOptions{Level: lvl}
	switch o.format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, hopts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, hopts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", o.format)
	}
}

// natsOptions says how to reach NATS.
type natsOptions struct {
	url   string
	creds string
}

func (o *natsOptions) register(fs *flag.FlagSet) {
	stringVar(fs, &o.url, "nats-url", nats.DefaultURL, "NATS server URL(s), comma separated")
	stringVar(fs, &o.creds, "nats-creds", "", "NATS credentials file")
}

// connect dials NATS with reconnects forever: a stage keeps running through
// a NATS outage and reports it through /readyz.
func (o *natsOptions) connect(log *slog.Logger, name string) (*nats.Conn, jetstream.JetStream, error) {
	opts := []nats.Option{
		nats.Name("tally-" + name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrl()) }),
	}
	if o.creds != "" {
		opts = append(opts, nats.UserCredentials(o.creds))
	}
	nc, err := nats.Connect(o.url, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to nats %s: %w", o.url, err)
	}
	js, err := newJetStream(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

func natsCheck(nc *nats.Conn) func(context.Context) error {
	return func(context.Context) error {
		if !nc.IsConnected() {
			return fmt.Errorf("nats: %s", nc.Status())
		}
		return nil
	}
}

// clickhouseOptions says how to reach ClickHouse.
type clickhouseOptions struct {
	addr     string
	database string
	user     string
	password string
	maxConns int
}

func (o *clickhouseOptions) register(fs *flag.FlagSet, defaultAddr, addrUsage string) {
	stringVar(fs, &o.addr, "clickhouse-addr", defaultAddr, addrUsage)
	stringVar(fs, &o.database, "clickhouse-database", "tally", "ClickHouse database")
	stringVar(fs, &o.user, "clickhouse-user", "default", "ClickHouse user")
	stringVar(fs, &o.password, "clickhouse-password", "", "ClickHouse password")
	intVar(fs, &o.maxConns, "clickhouse-max-conns", chstore.DefaultMaxConns, "most open ClickHouse connections, all kept idle between queries")
}

func (o *clickhouseOptions) config() chstore.Config {
	return chstore.Config{Addr: o.addr, Database: o.database, Username: o.user, Password: o.password,
		MaxOpenConns: o.maxConns, MaxIdleConns: o.maxConns}
}

// streamOptions configures the JetStream streams.
type streamOptions struct {
	replicas    int
	dedupWindow time.Duration
	maxAge      time.Duration
}

func (o *streamOptions) register(fs *flag.FlagSet) {
	intVar(fs, &o.replicas, "stream-replicas", 1, "stream replicas (1 in dev, 3 in production)")
	durationVar(fs, &o.dedupWindow, "dedup-window", stream.DefaultDedupWindow, "JetStream duplicate window on event id; the projector checks older events against ClickHouse")
	durationVar(fs, &o.maxAge, "stream-max-age", 0, "how long the stream keeps events (0 = forever, so read models can be rebuilt by replay)")
}

func (o *streamOptions) config() stream.Config {
	return stream.Config{Replicas: o.replicas, DedupWindow: o.dedupWindow, MaxAge: o.maxAge}
}

func parseKeys(s string) []string {
	var keys []string
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// newJetStream returns the JetStream context every stage shares: async
// publishes time out instead of waiting forever on a lost ack, and the
// pending limit leaves room for several publishers (ingest and the demo).
func newJetStream(nc *nats.Conn) (jetstream.JetStream, error) {
	return jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(16384),
		jetstream.WithPublishAsyncTimeout(10*time.Second))
}
