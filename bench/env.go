package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyhq/tally/chserver"
	"github.com/tallyhq/tally/chstore"
	"github.com/tallyhq/tally/stream"
)

// env is the bench's infrastructure: NATS, ClickHouse, a temp folder.
type env struct {
	cfg      Config
	progress io.Writer
	log      *slog.Logger // for the packages the bench drives (warnings only)
	dir      string
	began    time.Time

	ns    *server.Server
	nc    *nats.Conn
	js    jetstream.JetStream
	scfg  stream.Config
	chsrv *chserver.Server
	ch    chstore.Config // Addr and credentials; Database set per measurement
	admin driver.Conn    // no database selected: CREATE/DROP DATABASE

	window     int // raw async publish window (set by calibrate)
	chPID      int // the clickhouse-server the bench started; 0 if given
	chVersion  string
	loadBefore float64 // machine CPU busy fraction just before measuring; -1 unknown
	avgBody    float64
	mix        string

	dbSeq    int
	dbs      []string // created and not retired yet
	children []*child // started and maybe not stopped yet
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.progress, "[%6.1fs] %s\n", time.Since(e.began).Seconds(), fmt.Sprintf(format, args...))
}

func setup(ctx context.Context, cfg Config, progress io.Writer) (_ *env, err error) {
	e := &env{
		cfg:      cfg,
		progress: progress,
		log:      slog.New(slog.NewTextHandler(progress, &slog.HandlerOptions{Level: slog.LevelWarn})),
		began:    time.Now(),
		scfg:     stream.Config{}, // the defaults, as `tally project` uses them
	}
	defer func() {
		if err != nil {
			_ = e.close()
		}
	}()
	if e.dir, err = os.MkdirTemp(cfg.Dir, "tally-bench-"); err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	e.logf("temp dir %s", e.dir)

	e.ns, err = stream.StartEmbedded(stream.EmbeddedConfig{Port: -1, StoreDir: filepath.Join(e.dir, "nats"), Logger: e.log})
	if err != nil {
		return nil, err
	}
	e.nc, err = nats.Connect(e.ns.ClientURL(), nats.Name("tally-bench"))
	if err != nil {
		return nil, fmt.Errorf("connect nats: %w", err)
	}
	if e.js, err = jetstream.New(e.nc); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	e.logf("embedded NATS at %s", e.ns.ClientURL())

	e.ch = chstore.Config{Addr: cfg.ClickHouseAddr, Username: cfg.ClickHouseUser, Password: cfg.ClickHousePass}.WithDefaults()
	if e.ch.Addr == "" {
		e.chsrv, err = chserver.Start(ctx, chserver.Config{Binary: cfg.ClickHouseBinary, Dir: filepath.Join(e.dir, "clickhouse"), Log: e.log})
		if err != nil {
			return nil, err
		}
		e.ch.Addr = e.chsrv.Addr()
		e.chPID = findServerPID(e.chsrv.Dir())
		e.logf("clickhouse-server started at %s", e.ch.Addr)
	}
	e.admin, err = clickhouse.Open(&clickhouse.Options{
		Protocol: clickhouse.Native, Addr: []string{e.ch.Addr},
		Auth: clickhouse.Auth{Username: e.ch.Username, Password: e.ch.Password},
	})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", e.ch.Addr, err)
	}
	if err := e.admin.QueryRow(ctx, "SELECT version()").Scan(&e.chVersion); err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", e.ch.Addr, err)
	}
	e.logf("ClickHouse %s at %s", e.chVersion, e.ch.Addr)

	e.loadBefore = machineBusy(ctx, time.Second)
	if e.loadBefore > 0.15 {
		e.logf("WARNING: the machine is %.0f%% busy before the bench starts (other processes); the numbers will be low", 100*e.loadBefore)
	}

	c := newGenerator("mx", time.Now()).corpus(genBlock * 64)
	e.avgBody = c.avgBodyBytes()
	e.mix = "jobs created/started/completed (1 in 12 failed) + 1 in 64 user, subscription, organization or invoice events"
	if err := checkCorpus(c); err != nil {
		return nil, fmt.Errorf("generated events: %w", err)
	}
	return e, nil
}

// freshStream deletes the events and dead-letter streams (with their
// consumers and dedup state) and creates them again.
func (e *env) freshStream(ctx context.Context) error {
	for _, name := range []string{stream.EventsStream, stream.DLQStream} {
		if err := e.js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("delete stream %s: %w", name, err)
		}
	}
	if err := stream.Ensure(ctx, e.js, e.scfg); err != nil {
		return fmt.Errorf("ensure streams: %w", err)
	}
	return nil
}

// streamMsgs returns the number of messages in the events stream.
func (e *env) streamMsgs(ctx context.Context) (uint64, error) {
	s, err := e.js.Stream(ctx, stream.EventsStream)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", err)
	}
	return info.State.Msgs, nil
}

// freshDB migrates a new database for one measurement and connects to it.
func (e *env) freshDB(ctx context.Context, what string) (chstore.Config, driver.Conn, error) {
	e.dbSeq++
	cfg := e.ch
	cfg.Database = e.cfg.DatabasePrefix + "_" + strconv.Itoa(os.Getpid()) + "_" + strconv.Itoa(e.dbSeq) + "_" + what
	if !validIdent(cfg.Database) {
		return cfg, nil, fmt.Errorf("database name %q", cfg.Database)
	}
	e.dbs = append(e.dbs, cfg.Database)
	if _, err := chstore.Migrate(ctx, cfg, e.log); err != nil {
		return cfg, nil, fmt.Errorf("migrate %s: %w", cfg.Database, err)
	}
	conn, err := chstore.Open(ctx, cfg)
	if err != nil {
		return cfg, nil, err
	}
	return cfg, conn, nil
}

// retireDB takes a finished measurement's database off the server so its
// background merges do not load the next measurement. With Keep it stays.
// On a server given by address it is dropped. On the bench's own server it
// is detached, and its files go with the temp folder at close: dropping
// deletes thousands of part files at once, and on ext4 without a journal
// (as on the bench machine) every file created in the next minutes then
// checks those freed inodes (ext4's recently_deleted). Measured right after
// such a drop: 28% of ClickHouse's CPU in ext4_create, and INSERTs into
// events with its views at 32 instead of 23 µs of ClickHouse CPU per row.
func (e *env) retireDB(ctx context.Context, name string) error {
	if e.cfg.Keep {
		return nil
	}
	if !validIdent(name) {
		return fmt.Errorf("database name %q", name)
	}
	verb := "DROP DATABASE IF EXISTS "
	if e.chsrv != nil {
		verb = "DETACH DATABASE "
	}
	if err := e.admin.Exec(ctx, verb+name); err != nil {
		return fmt.Errorf("retire database %s: %w", name, err)
	}
	for i, d := range e.dbs {
		if d == name {
			e.dbs = append(e.dbs[:i], e.dbs[i+1:]...)
			break
		}
	}
	return nil
}

// launchProjector starts `tally project` on database db with its ops
// server on a free port.
func (e *env) launchProjector(db, name string) (*child, error) {
	opsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	argv := append(append([]string{}, e.cfg.ProjectorCommand...),
		"--nats-url", e.ns.ClientURL(),
		"--clickhouse-addr", e.ch.Addr,
		"--clickhouse-database", db,
		"--clickhouse-user", e.ch.Username,
		"--clickhouse-password", e.ch.Password,
		"--ops-listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(opsPort)),
		"--log-level", "warn",
	)
	c, err := startChild(argv, e.cfg.ProjectorEnv, filepath.Join(e.dir, "projector-"+name+".log"))
	if err != nil {
		return nil, err
	}
	c.opsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(opsPort))
	e.children = append(e.children, c)
	return c, nil
}

// startProjector launches the projector and waits until its consumer
// exists on the stream, so nothing published afterwards waits for it.
func (e *env) startProjector(ctx context.Context, db, name string) (*child, error) {
	c, err := e.launchProjector(db, name)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	err = c.waitFor(wctx, 20*time.Millisecond, func(ctx context.Context) (bool, error) {
		s, err := e.js.Stream(ctx, stream.EventsStream)
		if err != nil {
			return false, fmt.Errorf("stream info: %w", err)
		}
		return s.CachedInfo().State.Consumers > 0, nil
	})
	if err != nil {
		return c, fmt.Errorf("projector did not create its consumer: %w%s", err, c.logTail())
	}
	return c, nil
}

// projectorStats scrapes a running projector's metrics; failures only
// make the report say less.
func (e *env) projectorStats(ctx context.Context, c *child) string {
	s, err := scrapeProjector(ctx, c.opsAddr)
	if err != nil {
		e.logf("  (%v)", err)
		return ""
	}
	return s.String()
}

func (e *env) stopChild(c *child) error {
	for i, x := range e.children {
		if x == c {
			e.children = append(e.children[:i], e.children[i+1:]...)
			break
		}
	}
	return c.stop(30 * time.Second)
}

// close stops everything the bench started and removes the temp folder
// (unless Keep). It returns the first error.
func (e *env) close() error {
	var errs []error
	for _, c := range e.children {
		errs = append(errs, c.stop(30*time.Second))
	}
	e.children = nil
	if e.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		if e.chsrv == nil { // a server we started goes away with its folder
			for _, db := range append([]string(nil), e.dbs...) {
				errs = append(errs, e.retireDB(ctx, db))
			}
		}
		cancel()
		errs = append(errs, e.admin.Close())
	}
	if e.nc != nil {
		e.nc.Close()
	}
	if e.ns != nil {
		e.ns.Shutdown()
		e.ns.WaitForShutdown()
	}
	if e.chsrv != nil {
		errs = append(errs, e.chsrv.Stop())
	}
	if e.dir != "" {
		if e.cfg.Keep {
			e.logf("kept %s (NATS store, ClickHouse data and logs, projector logs)", e.dir)
			if len(e.dbs) > 0 {
				e.logf("kept databases %v", e.dbs)
			}
		} else {
			errs = append(errs, os.RemoveAll(e.dir))
		}
	}
	return errors.Join(errs...)
}

// meter starts attributing CPU time to the bench process (NATS server,
// publishers, ingest), the clickhouse-server and other processes.
func (e *env) meter() *cpuMeter {
	others := ""
	if e.chsrv == nil {
		others = "incl. the given ClickHouse if it runs here"
	}
	return newCPUMeter(others, map[string]int{"bench process": os.Getpid(), "clickhouse-server": e.chPID})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
