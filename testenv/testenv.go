// Package testenv gives tests the real things: an embedded NATS JetStream
// server and a clickhouse-server child process with migrated databases.
// Tests that use it never skip: a missing dependency fails the test with the
// command that installs it.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyhq/tally/chserver"
	"github.com/tallyhq/tally/chstore"
)

const (
	missingClickHouse = "clickhouse-server not found: run `apt-get install -y clickhouse-server` (make test does)"
	setupTimeout      = 90 * time.Second
	sharedDirPattern  = "tally-testenv-ch-"
	ownerFile         = "owner.pid"
)

// NATS starts an embedded NATS server with JetStream (random port, store in
// t.TempDir()) and shuts it down at test cleanup.
func NATS(t testing.TB) (url string, s *server.Server) {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("testenv: create NATS server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatalf("testenv: NATS server not ready after 10s")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s.ClientURL(), s
}

// JetStream connects to the NATS server at url and returns the connection
// and its JetStream context; the connection is closed at test cleanup.
func JetStream(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name(t.Name()))
	if err != nil {
		t.Fatalf("testenv: connect to NATS %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("testenv: jetstream: %v", err)
	}
	return nc, js
}

// CH is a fresh, migrated ClickHouse database on a running server.
type CH struct {
	// Server is the running server. For ClickHouse(t) it is shared by every
	// test in the process: never stop or restart it; use OwnClickHouse.
	Server *chserver.Server
	// Config connects to this test's database (Config.Database).
	Config chstore.Config
	// Conn is connected to Config.Database; closed at test cleanup.
	Conn driver.Conn
}

var shared struct {
	once sync.Once
	srv  *chserver.Server
	err  error
}

// ClickHouse returns a fresh database (t_<random>, migrations applied) on the
// test process's shared clickhouse-server, which is started on first use and
// killed when the process exits. The database is dropped at test cleanup.
func ClickHouse(t testing.TB) *CH {
	t.Helper()
	shared.once.Do(func() { shared.srv, shared.err = startShared() })
	if shared.err != nil {
		if errors.Is(shared.err, chserver.ErrNotFound) {
			t.Fatalf("%s (%v)", missingClickHouse, shared.err)
		}
		t.Fatalf("testenv: start shared clickhouse-server: %v", shared.err)
	}
	if !shared.srv.Running() {
		t.Fatalf("testenv: the shared clickhouse-server is not running (did a test stop it? fault tests must use testenv.OwnClickHouse); error log: %s", shared.srv.ErrorLogPath())
	}
	return newDatabase(t, shared.srv, "t_"+randomHex(6), true)
}

// OwnClickHouse starts a dedicated clickhouse-server for this test, in
// t.TempDir(), with a migrated database "tally". The test may stop and
// restart CH.Server freely; it is stopped at test cleanup.
func OwnClickHouse(t testing.TB) *CH {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	srv, err := chserver.Start(ctx, chserver.Config{Dir: t.TempDir(), Log: quietLogger()})
	if err != nil {
		if errors.Is(err, chserver.ErrNotFound) {
			t.Fatalf("%s (%v)", missingClickHouse, err)
		}
		t.Fatalf("testenv: start clickhouse-server: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("testenv: stop clickhouse-server: %v", err)
		}
	})
	return newDatabase(t, srv, chstore.DefaultDatabase, false)
}

func newDatabase(t testing.TB, srv *chserver.Server, db string, drop bool) *CH {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	cfg := chstore.Config{Addr: srv.Addr(), Database: db}.WithDefaults()
	if _, err := chstore.Migrate(ctx, cfg, quietLogger()); err != nil {
		t.Fatalf("testenv: migrate %s: %v", db, err)
	}
	conn, err := chstore.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		conn.Close()
		if !drop || !srv.Running() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := chstore.Open(ctx, chstore.Config{Addr: srv.Addr(), Database: "system"})
		if err != nil {
			t.Errorf("testenv: drop database %s: %v", db, err)
			return
		}
		defer c.Close()
		if err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Errorf("testenv: drop database %s: %v", db, err)
		}
	})
	return &CH{Server: srv, Config: cfg, Conn: conn}
}

// startShared starts the process-wide server in a fresh temp dir. Without a
// TestMain there is no hook at process exit: the server dies with the
// process (Pdeathsig) and the directories of dead test processes are removed
// by the next run.
func startShared() (*chserver.Server, error) {
	if _, err := chserver.FindBinary(""); err != nil {
		return nil, err
	}
	removeStaleDirs()
	dir, err := os.MkdirTemp("", sharedDirPattern+"*")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("write owner file: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	srv, err := chserver.Start(ctx, chserver.Config{Dir: dir, Log: quietLogger()})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return srv, nil
}

// removeStaleDirs removes shared-server dirs whose owning process is gone.
func removeStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), sharedDirPattern+"*"))
	for _, d := range dirs {
		raw, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(string(raw))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
