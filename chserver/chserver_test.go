package chserver_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tallyhq/tally/chserver"
)

func start(t *testing.T, cfg chserver.Config) *chserver.Server {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	s, err := chserver.Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

func connect(t *testing.T, addr, user, password string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Protocol:    clickhouse.Native,
		Addr:        []string{addr},
		Auth:        clickhouse.Auth{Username: user, Password: password},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("open %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func count(t *testing.T, conn driver.Conn, table string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(t.Context(), "SELECT count() FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func insertRows(t *testing.T, conn driver.Conn, ids ...uint32) {
	t.Helper()
	b, err := conn.PrepareBatch(t.Context(), "INSERT INTO default.kept (id, at)")
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	for _, id := range ids {
		if err := b.Append(id, time.Date(2024, 1, 1, 0, 0, int(id), 0, time.UTC)); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatalf("send: %v", err)
	}
}

func TestStartStopRestartReuse(t *testing.T) {
	dir := t.TempDir()
	s := start(t, chserver.Config{Dir: dir})
	if !s.Running() {
		t.Fatal("Running() = false after Start")
	}
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") || s.Addr() == s.HTTPAddr() {
		t.Fatalf("Addr() = %q, HTTPAddr() = %q", s.Addr(), s.HTTPAddr())
	}
	if env := serverEnviron(t, dir); !slices.Contains(env, "MALLOC_CONF="+chserver.MallocConf) {
		t.Errorf("server environment lacks MALLOC_CONF=%s: %q", chserver.MallocConf, env)
	}

	conn := connect(t, s.Addr(), "default", "")
	// 18.16 names the configured "UTC" Etc/UTC; what matters is the offset.
	var unix uint32
	if err := conn.QueryRow(t.Context(), "SELECT toUnixTimestamp(toDateTime('2024-01-01 00:00:00'))").Scan(&unix); err != nil {
		t.Fatalf("timezone: %v", err)
	}
	if unix != 1704067200 {
		t.Errorf("server time zone is not UTC: 2024-01-01 00:00:00 is unix %d", unix)
	}
	if err := conn.Exec(t.Context(), "CREATE TABLE default.kept (id UInt32, at DateTime) ENGINE = MergeTree ORDER BY id"); err != nil {
		t.Fatalf("create: %v", err)
	}
	insertRows(t, conn, 1, 2)

	addr := s.Addr()
	if err := s.Restart(t.Context()); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if s.Addr() != addr {
		t.Fatalf("Addr after Restart = %s, want %s", s.Addr(), addr)
	}
	// The pool's connections died with the old process; a new client sees the data.
	conn = connect(t, s.Addr(), "default", "")
	if got := count(t, conn, "default.kept"); got != 2 {
		t.Fatalf("rows after Restart = %d, want 2", got)
	}
	insertRows(t, conn, 3)

	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if s.Running() {
		t.Fatal("Running() = true after Stop")
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := conn.Ping(t.Context()); err == nil {
		t.Fatal("Ping succeeded after Stop")
	}

	// A new Start on the same Dir (other ports) reuses the data.
	s2 := start(t, chserver.Config{Dir: dir})
	conn2 := connect(t, s2.Addr(), "default", "")
	if got := count(t, conn2, "default.kept"); got != 3 {
		t.Fatalf("rows after second Start = %d, want 3", got)
	}
}

func TestAnalystUser(t *testing.T) {
	s := start(t, chserver.Config{AnalystPassword: "s3cret"})
	admin := connect(t, s.Addr(), "default", "")
	if err := admin.Exec(t.Context(), "CREATE TABLE default.kept (id UInt32, at DateTime) ENGINE = MergeTree ORDER BY id"); err != nil {
		t.Fatalf("create: %v", err)
	}
	insertRows(t, admin, 1)

	analyst := connect(t, s.Addr(), chserver.AnalystUser, "s3cret")
	if got := count(t, analyst, "default.kept"); got != 1 {
		t.Errorf("analyst count = %d, want 1", got)
	}
	settings := map[string]string{}
	rows, err := analyst.Query(t.Context(), "SELECT name, value FROM system.settings WHERE name IN ('readonly', 'max_execution_time', 'max_memory_usage')")
	if err != nil {
		t.Fatalf("settings: %v", err)
	}
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			t.Fatalf("scan: %v", err)
		}
		settings[name] = value
	}
	rows.Close()
	for name, want := range map[string]string{"readonly": "1", "max_execution_time": "60", "max_memory_usage": "4000000000"} {
		if settings[name] != want {
			t.Errorf("analyst setting %s = %q, want %q", name, settings[name], want)
		}
	}

	tests := []struct {
		name string
		sql  string
	}{
		{"create table", "CREATE TABLE default.nope (x UInt8) ENGINE = Memory"},
		{"drop table", "DROP TABLE default.kept"},
		{"insert select", "INSERT INTO default.kept (id, at) SELECT 9, now()"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := analyst.Exec(t.Context(), tt.sql); err == nil {
				t.Errorf("analyst could run %q", tt.sql)
			}
		})
	}

	wrong := connect(t, s.Addr(), chserver.AnalystUser, "wrong")
	if err := wrong.Ping(t.Context()); err == nil {
		t.Error("analyst with a wrong password could connect")
	}
}

func TestStartErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name    string
		cfg     chserver.Config
		wantErr string
		wantIs  error
	}{
		{"no dir", chserver.Config{}, "dir is required", nil},
		{"same ports", chserver.Config{Dir: "x", TCPPort: 9000, HTTPPort: 9000}, "must differ", nil},
		{"bad port", chserver.Config{Dir: "x", TCPPort: 70000}, "out of range", nil},
		{"missing binary", chserver.Config{Dir: "x", Binary: "/nonexistent/clickhouse-server"}, "clickhouse-server not found", chserver.ErrNotFound},
		// The server cannot listen: Start reports its exit and its error log.
		{"port in use", chserver.Config{TCPPort: busyPort}, "clickhouse-server.err.log (tail)", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg.Dir == "" && tt.name != "no dir" {
				tt.cfg.Dir = t.TempDir()
			}
			if tt.cfg.Dir == "x" {
				tt.cfg.Dir = filepath.Join(t.TempDir(), "x")
			}
			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			s, err := chserver.Start(ctx, tt.cfg)
			if err == nil {
				s.Stop()
				t.Fatalf("Start succeeded, want error containing %q", tt.wantErr)
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Start error = %v, want it to contain %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Start error = %v, want errors.Is %v", err, tt.wantIs)
			}
		})
	}
}

func TestFixedPorts(t *testing.T) {
	free := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	tcp, http := free(), free()
	s := start(t, chserver.Config{TCPPort: tcp, HTTPPort: http})
	if want := "127.0.0.1:" + strconv.Itoa(tcp); s.Addr() != want {
		t.Errorf("Addr() = %s, want %s", s.Addr(), want)
	}
	if want := "127.0.0.1:" + strconv.Itoa(http); s.HTTPAddr() != want {
		t.Errorf("HTTPAddr() = %s, want %s", s.HTTPAddr(), want)
	}
}

// serverEnviron returns the environment of the clickhouse-server process
// whose config file is in dir.
func serverEnviron(t *testing.T, dir string) []string {
	t.Helper()
	want := "--config-file=" + filepath.Join(dir, "config.xml")
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range cmdlines {
		b, err := os.ReadFile(f)
		if err != nil || !slices.Contains(strings.Split(string(b), "\x00"), want) {
			continue
		}
		env, err := os.ReadFile(filepath.Join(filepath.Dir(f), "environ"))
		if err != nil {
			t.Fatalf("read the server's environment: %v", err)
		}
		return strings.Split(strings.TrimRight(string(env), "\x00"), "\x00")
	}
	t.Fatalf("no process with %s", want)
	return nil
}
