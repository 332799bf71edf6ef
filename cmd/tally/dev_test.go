package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tallyhq/tally/chstore"
)

// TestDevRunsEverything runs the real binary as the README's first command
// does: it must start NATS, ClickHouse and every stage, land demo traffic in
// ClickHouse, and stop everything (ClickHouse included) on Ctrl-C.
func TestDevRunsEverything(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "tally")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dataDir := t.TempDir()
	listen := "127.0.0.1:" + strconv.Itoa(freePort(t))
	opsAt := "127.0.0.1:" + strconv.Itoa(freePort(t))
	queryAt := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cmd := exec.Command(bin, "dev", "--data-dir", dataDir, "--nats-port", "-1", "--listen", listen, "--ops-listen", opsAt, "--query-listen", queryAt)
	cmd.Env = append(os.Environ(), "TALLY_LOG_LEVEL=warn")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	chPort, queryKey := make(chan string, 1), make(chan string, 1)
	var output strings.Builder
	go func() {
		chRE := regexp.MustCompile(`clickhouse-client --host 127\.0\.0\.1 --port (\d+)`)
		keyRE := regexp.MustCompile(`Bearer (\S+), operator key`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			output.WriteString(sc.Text() + "\n")
			if m := chRE.FindStringSubmatch(sc.Text()); m != nil && len(chPort) == 0 {
				chPort <- m[1]
			}
			if m := keyRE.FindStringSubmatch(sc.Text()); m != nil {
				queryKey <- m[1]
			}
		}
	}()
	var port, key string
	for port == "" || key == "" {
		select {
		case port = <-chPort:
		case key = <-queryKey:
		case <-time.After(90 * time.Second):
			t.Fatalf("tally dev printed no ClickHouse address or query key:\n%s", output.String())
		}
	}

	waitUntil(t, 30*time.Second, "/readyz answers 200", func() bool {
		res, err := http.Get("http://" + opsAt + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	conn, err := chstore.Open(t.Context(), chstore.Config{Addr: "127.0.0.1:" + port, Database: "tally"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var minutes float64
	waitUntil(t, 60*time.Second, "demo usage in ClickHouse", func() bool {
		err := conn.QueryRow(t.Context(), "SELECT sumMerge(media_ms) / 60000 FROM usage_15m").Scan(&minutes)
		return err == nil && minutes > 0
	})
	var orgs uint64
	if err := conn.QueryRow(t.Context(), "SELECT count() FROM organizations FINAL").Scan(&orgs); err != nil || orgs < 10 {
		t.Fatalf("organizations = %d, %v: want the demo's dozens", orgs, err)
	}

	// The query service answers with the printed operator key.
	waitUntil(t, 30*time.Second, "the query service lists the demo's organizations", func() bool {
		req, _ := http.NewRequest(http.MethodGet, "http://"+queryAt+"/v1/organizations?reseller=acme-media", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var body struct {
			Total int `json:"total"`
		}
		return res.StatusCode == http.StatusOK && json.NewDecoder(res.Body).Decode(&body) == nil && body.Total > 0
	})

	// Ctrl-C: everything stops, ClickHouse included.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("tally dev exited with %v:\n%s", err, output.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("tally dev did not stop within 60s of SIGINT")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := conn.Ping(ctx); err == nil {
		t.Fatal("ClickHouse still answers after tally dev stopped")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", limit, what)
}
