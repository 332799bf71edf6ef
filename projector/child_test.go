package projector

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/chstore"
)

// The test binary doubles as a projector process (re-exec pattern): with
// childEnv=1, TestMain runs runChild instead of the tests.
const (
	childEnv      = "TALLY_PROJECTOR_CHILD"
	childNATS     = "TALLY_TEST_NATS_URL"
	childCHAddr   = "TALLY_TEST_CH_ADDR"
	childCHDB     = "TALLY_TEST_CH_DATABASE"
	childBatch    = "TALLY_TEST_BATCH_SIZE"
	childAckWait  = "TALLY_TEST_ACK_WAIT"
	childLogLevel = "TALLY_TEST_LOG_LEVEL"
	childCPUProf  = "TALLY_TEST_CPUPROFILE"
)

// runChild runs a projector configured from the environment until SIGTERM,
// logging JSON to stderr; its last line reports the peak RSS.
func runChild() int {
	level := slog.LevelDebug
	if os.Getenv(childLogLevel) == "info" {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	fail := func(err error) int {
		log.Error("child failed", "error", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if path := os.Getenv(childCPUProf); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(err)
		}
		defer pprof.StopCPUProfile()
	}

	nc, err := nats.Connect(os.Getenv(childNATS))
	if err != nil {
		return fail(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fail(err)
	}
	conn, err := chstore.Open(ctx, chstore.Config{Addr: os.Getenv(childCHAddr), Database: os.Getenv(childCHDB)})
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	cfg := DefaultConfig()
	if v := os.Getenv(childBatch); v != "" && v != "0" {
		if cfg.BatchSize, err = strconv.Atoi(v); err != nil {
			return fail(err)
		}
	}
	if v := os.Getenv(childAckWait); v != "" {
		if cfg.AckWait, err = time.ParseDuration(v); err != nil {
			return fail(err)
		}
		cfg.InsertTimeout = cfg.AckWait / 2
	}
	p, err := New(cfg, js, conn, log, prometheus.NewRegistry())
	if err != nil {
		return fail(err)
	}
	if err := p.Run(ctx); err != nil {
		return fail(err)
	}
	log.Info("child exit", "vm_hwm_kib", peakRSSKiB())
	return 0
}

// peakRSSKiB is this process's peak resident set size (VmHWM).
func peakRSSKiB() int {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return -1
}

// child is a projector process started by startChild.
type child struct {
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

// startChild starts the test binary as a projector process with extra
// environment variables; its stderr goes to a file in dir.
func startChild(t testing.TB, dir string, env ...string) *child {
	t.Helper()
	logPath := filepath.Join(dir, fmt.Sprintf("child-%d.log", time.Now().UnixNano()))
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), append([]string{childEnv + "=1"}, env...)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	out.Close()
	c := &child{cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.exited
	})
	return c
}

// waitLog waits until the child logged a record with message msg.
func (c *child) waitLog(t testing.TB, msg string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		raw, _ := os.ReadFile(c.log)
		if strings.Contains(string(raw), `"msg":"`+msg+`"`) {
			return
		}
		select {
		case <-c.exited:
			t.Fatalf("child exited before logging %q; log:\n%s", msg, tailFile(c.log, 20))
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("child did not log %q within %s; log:\n%s", msg, timeout, tailFile(c.log, 20))
}

func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

// stop sends SIGTERM and waits for a clean exit.
func (c *child) stop(t testing.TB) {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("child did not exit 30s after SIGTERM; log %s", c.log)
	}
	if code := c.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("child exit code %d; log:\n%s", code, tailFile(c.log, 20))
	}
}

// logLines returns the child's JSON log records.
func (c *child) logLines(t testing.TB) []map[string]any {
	t.Helper()
	f, err := os.Open(c.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func tailFile(path string, n int) string {
	raw, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// consumerBacklog is the consumer's pending plus unacked messages; ok is
// false when the consumer does not exist yet.
func consumerBacklog(ctx context.Context, js jetstream.JetStream, stream, name string) (n uint64, ok bool) {
	c, err := js.Consumer(ctx, stream, name)
	if err != nil {
		return 0, false
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, false
	}
	return info.NumPending + uint64(info.NumAckPending), true
}
