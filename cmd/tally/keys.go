package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tallyhq/tally/chstore"
	"github.com/tallyhq/tally/query"
)

const keysUsage = `Usage:
  tally keys create --reseller R --name N [--revenue]   a reseller's key (sees only its organizations)
  tally keys create --operator --name N                 an operator key (any reseller, ?reseller=R)
  tally keys revoke ID
  tally keys list
Every subcommand takes the ClickHouse flags (--clickhouse-addr, ...); run 'tally keys create -h'.`

func runKeys(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(os.Stderr, keysUsage)
		if len(args) == 0 {
			return errors.New("missing keys subcommand")
		}
		return nil
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("keys " + sub)
	var (
		co       clickhouseOptions
		reseller string
		name     string
		operator bool
		revenue  bool
	)
	co.register(fs, "127.0.0.1:9000", "ClickHouse native protocol address host:port")
	switch sub {
	case "create":
		fs.StringVar(&reseller, "reseller", "", "reseller the key sees")
		fs.StringVar(&name, "name", "", "who or what uses the key (required)")
		fs.BoolVar(&operator, "operator", false, "an operator key: sees every reseller, picked with ?reseller=")
		fs.BoolVar(&revenue, "revenue", false, "show revenue (MRR) to this reseller key")
	case "revoke", "list":
	default:
		return fmt.Errorf("unknown keys subcommand %q\n%s", sub, keysUsage)
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	conn, err := chstore.Open(ctx, co.config())
	if err != nil {
		return err
	}
	defer conn.Close()
	now := time.Now()
	switch sub {
	case "create":
		if fs.NArg() > 0 {
			return fmt.Errorf("unexpected arguments %q", fs.Args())
		}
		k, secret, err := query.CreateKey(ctx, conn, query.KeySpec{Name: name, ResellerID: reseller, Operator: operator, Revenue: revenue}, now)
		if err != nil {
			return err
		}
		who := "reseller " + k.ResellerID
		if k.Role == query.RoleOperator {
			who = "the operator"
		}
		fmt.Fprintf(os.Stderr, "created key %s (%s) for %s; it is shown only this once:\n", k.ID, k.Name, who)
		fmt.Println(secret)
	case "revoke":
		if fs.NArg() != 1 {
			return errors.New("usage: tally keys revoke ID")
		}
		k, err := query.RevokeKey(ctx, conn, fs.Arg(0), now)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "revoked key %s (%s); query services stop accepting it within their key cache TTL\n", k.ID, k.Name)
	case "list":
		keys, err := query.ListKeys(ctx, conn)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tNAME\tROLE\tRESELLER\tREVENUE\tREVOKED\tCREATED")
		for _, k := range keys {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%v\t%v\t%s\n", k.ID, k.Name, k.Role, k.ResellerID, k.Revenue, k.Revoked, k.CreatedAt.Format(time.RFC3339))
		}
		return w.Flush()
	}
	return nil
}

// devQueryKey returns the operator key of `tally dev`'s query API, created
// once and kept in the data dir so a restart prints the same key (a new one
// if it was revoked or the database is new).
func devQueryKey(ctx context.Context, conn driver.Conn, dataDir string) (string, error) {
	return devAPIKey(ctx, conn, filepath.Join(dataDir, "query-key"), query.KeySpec{Name: "tally dev", Operator: true})
}

// devResellerKey returns `tally dev`'s key of one demo reseller, the one the
// banner offers for signing in to the dashboard; kept like devQueryKey.
func devResellerKey(ctx context.Context, conn driver.Conn, dataDir, reseller string) (string, error) {
	return devAPIKey(ctx, conn, filepath.Join(dataDir, "reseller-key-"+reseller),
		query.KeySpec{Name: "tally dev " + reseller, ResellerID: reseller, Revenue: true})
}

func devAPIKey(ctx context.Context, conn driver.Conn, path string, spec query.KeySpec) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		secret := strings.TrimSpace(string(b))
		k, err := query.LookupKey(ctx, conn, secret)
		if err == nil && !k.Revoked {
			return secret, nil
		}
		if err != nil && !errors.Is(err, query.ErrKeyNotFound) {
			return "", err
		}
	}
	_, secret, err := query.CreateKey(ctx, conn, spec, time.Now())
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(secret), 0o600); err != nil {
		return "", fmt.Errorf("save dev key %s: %w", filepath.Base(path), err)
	}
	return secret, nil
}
