// Command tally is the usage pipeline behind the reseller dashboard: one
// binary whose subcommands run each stage (ingest, project, migrate, ...) or
// everything at once for development (dev).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand: its name, a one-line summary and its entry point.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = map[string]command{
	"dev":     {"run everything locally: embedded NATS, a ClickHouse child process, all stages, demo traffic", runDev},
	"ingest":  {"run the HTTP ingest stage", runIngest},
	"project": {"run the projector stage (JetStream to ClickHouse)", runProject},
	"migrate": {"apply ClickHouse migrations and create or update the JetStream streams", runMigrate},
	"bench":   {"measure ingest, end-to-end throughput, freshness and projector memory; print a table", runBench},
	"query":   {"run the query stage (the dashboard's read API)", runQuery},
	"alerts":  {"run the alerts stage (rules, alerts table, tally.alerts.> notifications)", runAlerts},
	"keys":    {"create, revoke and list query API keys", runKeys},
	"version": {"print the version", runVersion},
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "tally: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.run(ctx, os.Args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "tally %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintf(os.Stderr, "tally: the usage pipeline behind the reseller dashboard\n\nUsage: tally <command> [flags]\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(os.Stderr, "\nEvery flag can also be set by an environment variable: --nats-url is TALLY_NATS_URL.\nRun 'tally <command> -h' for a command's flags.\n")
}

func runVersion(_ context.Context, _ []string) error {
	fmt.Println("tally", version)
	return nil
}
