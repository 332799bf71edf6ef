package chstore_test

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/tallyhq/tally/chstore"
	"github.com/tallyhq/tally/testenv"
)

var quiet = slog.New(slog.DiscardHandler)

func tables(t *testing.T, ch *testenv.CH) []string {
	t.Helper()
	rows, err := ch.Conn.Query(t.Context(), "SELECT name FROM system.tables WHERE database = ?", ch.Config.Database)
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// TestMigrateFreshAndAgain applies every migration to a new database on
// ClickHouse 18.16, then checks that a second run applies nothing.
func TestMigrateFreshAndAgain(t *testing.T) {
	ch := testenv.ClickHouse(t)
	cfg := ch.Config
	cfg.Database = ch.Config.Database + "_fresh"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := ch.Conn.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database); err != nil {
			t.Errorf("drop: %v", err)
		}
	})

	applied, err := chstore.Migrate(t.Context(), cfg, quiet)
	if err != nil {
		t.Fatalf("first Migrate: %v", err)
	}
	ms := chstore.Migrations()
	if len(applied) != len(ms) {
		t.Fatalf("first Migrate applied %d migrations, want %d", len(applied), len(ms))
	}
	for i, a := range applied {
		if a.Version != ms[i].Version || a.File != ms[i].File || a.Statements != len(ms[i].Statements) {
			t.Errorf("applied[%d] = %+v, want %s", i, a, ms[i].File)
		}
	}

	again, err := chstore.Migrate(t.Context(), cfg, quiet)
	if err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if len(again) != 0 {
		t.Errorf("second Migrate applied %v, want nothing", again)
	}

	conn, err := chstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer conn.Close()
	var recorded uint64
	if err := conn.QueryRow(t.Context(), "SELECT count() FROM schema_migrations").Scan(&recorded); err != nil {
		t.Fatal(err)
	}
	if recorded != uint64(len(ms)) {
		t.Errorf("schema_migrations has %d rows, want %d", recorded, len(ms))
	}
}

func TestMigratedTables(t *testing.T) {
	ch := testenv.ClickHouse(t)
	got := strings.Join(tables(t, ch), " ")
	for _, want := range []string{
		"custom_models", "custom_models_mv", "event_ids", "event_ids_mv", "events", "jobs", "jobs_mv",
		"org_users", "org_users_mv", "organizations", "organizations_mv", "schema_migrations",
		"subscriptions", "subscriptions_mv", "usage_15m", "usage_15m_mv",
	} {
		if !strings.Contains(" "+got+" ", " "+want+" ") {
			t.Errorf("table %s missing; have %s", want, got)
		}
	}
}

func TestMigrateDetectsChangedMigration(t *testing.T) {
	ch := testenv.ClickHouse(t)
	ms := chstore.Migrations()
	victim := ms[len(ms)-1]
	if err := ch.Conn.Exec(t.Context(), "ALTER TABLE schema_migrations DELETE WHERE version = ?", victim.Version); err != nil {
		t.Fatalf("delete record: %v", err)
	}
	// Mutations run asynchronously on 18.16.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n uint64
		if err := ch.Conn.QueryRow(t.Context(), "SELECT count() FROM schema_migrations WHERE version = ?", victim.Version).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("mutation did not finish")
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, err := ch.Conn.PrepareBatch(t.Context(), "INSERT INTO schema_migrations (version, name, checksum, applied_at)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(victim.Version, victim.Name, strings.Repeat("0", 64), time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}

	_, err = chstore.Migrate(t.Context(), ch.Config, quiet)
	if err == nil {
		t.Fatal("Migrate succeeded despite a changed migration")
	}
	if !strings.Contains(err.Error(), victim.File) || !strings.Contains(err.Error(), "changed after it was applied") {
		t.Errorf("Migrate error = %v, want it to name %s", err, victim.File)
	}
}

func TestOpenAndMigrateErrors(t *testing.T) {
	ch := testenv.ClickHouse(t)
	tests := []struct {
		name    string
		cfg     chstore.Config
		migrate bool
		wantErr string
	}{
		{"missing database", chstore.Config{Addr: ch.Config.Addr, Database: "no_such_db_here"}, false, "no_such_db_here"},
		{"invalid database name", chstore.Config{Addr: ch.Config.Addr, Database: "x-y"}, true, "must match"},
		{"nobody listening", chstore.Config{Addr: "127.0.0.1:1", DialTimeout: time.Second}, false, "127.0.0.1:1"},
		{"wrong password", chstore.Config{Addr: ch.Config.Addr, Username: "default", Password: "nope"}, true, "ping clickhouse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.migrate {
				_, err = chstore.Migrate(t.Context(), tt.cfg, quiet)
			} else {
				var conn interface{ Close() error }
				conn, err = chstore.Open(t.Context(), tt.cfg)
				if err == nil {
					conn.Close()
				}
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestEventIDLookupUsesPrimaryKey pins down how to look up many event ids on
// ClickHouse 18.16 so that the primary key of event_ids (ORDER BY id) is
// used. `id IN (?)` with a []string works on current ClickHouse only.
func TestEventIDLookupUsesPrimaryKey(t *testing.T) {
	ch := testenv.ClickHouse(t)
	b, err := ch.Conn.PrepareBatch(t.Context(), "INSERT INTO events (id, type, time, reseller_id)")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := b.Append(id, "job.created", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), "r1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	ctx := clickhouse.Context(t.Context(), clickhouse.WithSettings(clickhouse.Settings{"force_primary_key": 1}))
	tests := []struct {
		name string
		sql  string
		arg  any
	}{
		{"group set", "SELECT count() FROM event_ids WHERE id IN ?", clickhouse.GroupSet{Value: []any{"a", "c", "zz"}}},
		{"subquery over array", "SELECT count() FROM event_ids WHERE id IN (SELECT arrayJoin(?))", []string{"a", "c", "zz"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n uint64
			if err := ch.Conn.QueryRow(ctx, tt.sql, tt.arg).Scan(&n); err != nil {
				t.Fatalf("query: %v", err)
			}
			if n != 2 {
				t.Errorf("found %d ids, want 2", n)
			}
		})
	}
}
