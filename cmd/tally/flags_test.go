package main

import (
	"flag"
	"testing"
	"time"

	"github.com/tallyhq/tally/chstore"
	"github.com/tallyhq/tally/projector"
)

func TestFlagsFromEnvironment(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		args      []string
		wantURL   string
		wantBatch int
		wantWait  time.Duration
	}{
		{"defaults", nil, nil, "nats://127.0.0.1:4222", projector.DefaultBatchSize, projector.DefaultBatchWait},
		{"environment", map[string]string{"TALLY_NATS_URL": "nats://n:1", "TALLY_BATCH_SIZE": "50", "TALLY_BATCH_WAIT": "1s"}, nil, "nats://n:1", 50, time.Second},
		{"flag beats environment", map[string]string{"TALLY_BATCH_SIZE": "50"}, []string{"--batch-size", "70"}, "nats://127.0.0.1:4222", 70, 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var no natsOptions
			var po projectorOptions
			parseTestFlags(t, tt.env, tt.args, func(fs *flag.FlagSet) {
				no.register(fs)
				po.register(fs)
			})
			if no.url != tt.wantURL || po.batchSize != tt.wantBatch || po.batchWait != tt.wantWait {
				t.Fatalf("got url %q batch %d wait %s", no.url, po.batchSize, po.batchWait)
			}
		})
	}
}

func TestMalformedEnvironmentIsAnError(t *testing.T) {
	t.Setenv("TALLY_BATCH_SIZE", "lots")
	envErrors = nil
	fs := newFlagSet("project")
	var po projectorOptions
	po.register(fs)
	err := parseFlags(fs, nil)
	if err == nil || err.Error() == "" {
		t.Fatal("want an error naming TALLY_BATCH_SIZE")
	}
	t.Log(err)
}

func TestClickHouseConnectionLimit(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want int
	}{
		{"default", nil, nil, chstore.DefaultMaxConns},
		{"environment", map[string]string{"TALLY_CLICKHOUSE_MAX_CONNS": "4"}, nil, 4},
		{"flag", nil, []string{"--clickhouse-max-conns", "32"}, 32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var co clickhouseOptions
			parseTestFlags(t, tt.env, tt.args, func(fs *flag.FlagSet) { co.register(fs, "127.0.0.1:9000", "address") })
			if got := co.config(); got.MaxOpenConns != tt.want || got.MaxIdleConns != tt.want {
				t.Fatalf("open %d, idle %d connections, want %d of each", got.MaxOpenConns, got.MaxIdleConns, tt.want)
			}
		})
	}
}

// parseTestFlags sets env for the test, registers flags with register on
// a fresh flag set and parses args.
func parseTestFlags(t *testing.T, env map[string]string, args []string, register func(*flag.FlagSet)) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	envErrors = nil
	fs := newFlagSet("test")
	register(fs)
	if err := parseFlags(fs, args); err != nil {
		t.Fatal(err)
	}
}
