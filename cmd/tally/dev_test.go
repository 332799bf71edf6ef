package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tallyhq/tally/alertspec"
	"github.com/tallyhq/tally/chstore"
)

// TestDevRunsEverything runs the real binary as the README's first command
// does: it must start NATS, ClickHouse and every stage, land demo traffic in
// ClickHouse, raise the demo's quota, spike and low-usage alerts into the
// notifications feed and a webhook, serve the dashboard, and stop everything
// (ClickHouse included) on Ctrl-C. The demo runs fast (catch-up in about 20
// s) and the rules every 5 s, so the alerts come within a minute.
func TestDevRunsEverything(t *testing.T) {
	hooks := newHookRecorder(t, "dev-test-secret")
	bin := filepath.Join(t.TempDir(), "tally")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dataDir := t.TempDir()
	listen := "127.0.0.1:" + strconv.Itoa(freePort(t))
	opsAt := "127.0.0.1:" + strconv.Itoa(freePort(t))
	queryAt := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cmd := exec.Command(bin, "dev", "--data-dir", dataDir, "--nats-port", "-1", "--listen", listen, "--ops-listen", opsAt, "--query-listen", queryAt,
		"--demo-speed", "1000", "--alerts-interval", "5s", "--demo-webhook", hooks.url, "--demo-webhook-secret", "dev-test-secret")
	cmd.Env = append(os.Environ(), "TALLY_LOG_LEVEL=warn")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	chPort, queryKey, resellerKey := make(chan string, 1), make(chan string, 1), make(chan string, 1)
	var output strings.Builder
	go func() {
		chRE := regexp.MustCompile(`clickhouse-client --host 127\.0\.0\.1 --port (\d+)`)
		keyRE := regexp.MustCompile(`Bearer (\S+), operator key`)
		resellerKeyRE := regexp.MustCompile(`sign in with (\S+)\s+\(reseller acme-media\)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			output.WriteString(sc.Text() + "\n")
			if m := chRE.FindStringSubmatch(sc.Text()); m != nil && len(chPort) == 0 {
				chPort <- m[1]
			}
			if m := keyRE.FindStringSubmatch(sc.Text()); m != nil {
				queryKey <- m[1]
			}
			if m := resellerKeyRE.FindStringSubmatch(sc.Text()); m != nil {
				resellerKey <- m[1]
			}
		}
	}()
	var port, key, rkey string
	for port == "" || key == "" || rkey == "" {
		select {
		case port = <-chPort:
		case key = <-queryKey:
		case rkey = <-resellerKey:
		case <-time.After(90 * time.Second):
			t.Fatalf("tally dev printed no ClickHouse address, operator key or reseller key:\n%s", output.String())
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

	// The demo's scenarios raise a quota alert (acme-media's Riverside
	// Broadcasting), a spike (acme-media's Lumen Podcast Network) and low
	// usage (globex-transcribe's Quanta Insights); each reaches the webhook,
	// signed, once, and the feed.
	waitUntil(t, 120*time.Second, "quota, spike and low-usage alerts at the webhook", func() bool {
		return hooks.has("quota", "riverside-broadcasting") && hooks.has("usage_spike", "lumen-podcast-network") &&
			hooks.has("low_usage", "quanta-insights")
	})
	hooks.checkOnce(t)
	feed := func(k, reseller string) []map[string]any {
		var body struct {
			Notifications []map[string]any `json:"notifications"`
		}
		getJSON(t, "http://"+queryAt+"/v1/notifications?limit=200&reseller="+reseller, k, &body)
		return body.Notifications
	}
	for _, want := range []struct{ key, reseller, rule, org string }{
		{rkey, "", "quota", "riverside-broadcasting"},
		{rkey, "", "usage_spike", "lumen-podcast-network"},
		{key, "globex-transcribe", "low_usage", "quanta-insights"},
	} {
		found := false
		for _, n := range feed(want.key, want.reseller) {
			if n["kind"] == "usage" && n["type"] == want.rule && n["org_id"] == want.org {
				found = true
			}
		}
		if !found {
			t.Errorf("notifications feed has no %s alert for %s", want.rule, want.org)
		}
	}
	// The reseller key signs in to the dashboard page, served at /.
	res, err := http.Get("http://" + queryAt + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(string(page)), "<!doctype html>") {
		t.Errorf("GET / = %d, want the dashboard page:\n%.300s", res.StatusCode, page)
	}
	var me map[string]any
	getJSON(t, "http://"+queryAt+"/v1/me", rkey, &me)
	if me["reseller_id"] != "acme-media" {
		t.Errorf("/v1/me with the printed reseller key = %v, want reseller acme-media", me)
	}

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

func getJSON(t *testing.T, url, key string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d: %s", url, res.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// hookRecorder is a webhook receiver that checks signatures and records
// the alerts it was sent.
type hookRecorder struct {
	url    string
	mu     sync.Mutex
	got    map[[2]string]int // rule, org -> deliveries
	byKey  map[string]int    // alert key|state -> deliveries
	badSig int
}

func newHookRecorder(t *testing.T, secret string) *hookRecorder {
	h := &hookRecorder{got: map[[2]string]int{}, byKey: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if err := alertspec.VerifySignature(secret, r.Header.Get(alertspec.HeaderSignature), body, time.Now(), time.Minute); err != nil {
			h.badSig++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var a alertspec.Alert
		if err := json.Unmarshal(body, &a); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.got[[2]string{a.Rule, a.OrgID}]++
		h.byKey[a.Key+"|"+a.State]++
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL + "/hook"
	return h
}

func (h *hookRecorder) has(rule, org string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got[[2]string{rule, org}] > 0
}

func (h *hookRecorder) checkOnce(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.badSig > 0 {
		t.Errorf("%d webhook deliveries with a bad signature", h.badSig)
	}
	for k, n := range h.byKey {
		if n != 1 {
			t.Errorf("alert %s delivered %d times, want once", k, n)
		}
	}
}
