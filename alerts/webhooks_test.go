package alerts

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/alertspec"
	"github.com/tallyhq/tally/stream"
)

func TestBackoff(t *testing.T) {
	cases := []struct {
		name     string
		n        int
		min, max time.Duration
	}{
		{"first retry", 1, 500 * time.Millisecond, time.Second},
		{"third retry", 3, 2 * time.Second, 4 * time.Second},
		{"capped", 30, 30 * time.Second, time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for range 100 {
				if d := backoff(tc.n, time.Second, time.Minute); d < tc.min || d > tc.max {
					t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tc.n, d, tc.min, tc.max)
				}
			}
		})
	}
}

// receiver is a webhook endpoint that fails its first failFirst calls.
type receiver struct {
	mu        sync.Mutex
	secret    string
	failFirst int
	calls     int
	accepted  []string // delivery ids answered 200 with a valid signature
	invalid   int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.calls <= r.failFirst {
		http.Error(w, "not yet", http.StatusInternalServerError)
		return
	}
	if err := alertspec.VerifySignature(r.secret, req.Header.Get(HeaderSignature), body, time.Now(), time.Minute); err != nil {
		r.invalid++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	r.accepted = append(r.accepted, req.Header.Get(HeaderDeliveryID))
}

func (r *receiver) snapshot() (calls int, accepted []string, invalid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls, append([]string(nil), r.accepted...), r.invalid
}

func webhookHarness(t *testing.T, maxAttempts int) (*harness, *Alerts) {
	t.Helper()
	h := newHarness(t, t0)
	if err := stream.Ensure(t.Context(), h.js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	h.cfg.Webhooks = WebhookConfig{Consumer: "test-webhooks", Timeout: 2 * time.Second, MaxAttempts: maxAttempts,
		BaseDelay: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond, CacheTTL: 0}
	a := h.newAlerts(t)
	go func() { _ = a.runWebhooks(t.Context()) }()
	start, end := t0.Add(-10*24*time.Hour), t0.Add(20*24*time.Hour)
	insertEvents(t, h.ch, []ev{subscription("r1", "o1", "pro", "active", 100, 4900, start, end, start)})
	insertEvents(t, h.ch, completed("r1", "o1", t0.Add(-time.Hour), 85, 60000)) // quota 80% only
	return h, a
}

func deliveries(t *testing.T, h *harness) map[string]uint64 {
	t.Helper()
	rows, err := h.ch.Conn.Query(t.Context(), "SELECT outcome, count() FROM alert_deliveries GROUP BY outcome")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var o string
		var n uint64
		if err := rows.Scan(&o, &n); err != nil {
			t.Fatal(err)
		}
		out[o] = n
	}
	return out
}

// TestWebhookRetries: the receiver fails its first three calls; the alert
// reaches it exactly once, validly signed, after backoff retries.
func TestWebhookRetries(t *testing.T) {
	rcv := &receiver{secret: "s3cret", failFirst: 3}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	h, a := webhookHarness(t, 8)
	for _, w := range []Webhook{
		{ID: "w1", ResellerID: "r1", URL: srv.URL, Secret: "s3cret", Rules: []string{RuleQuota}, Enabled: true},
		{ID: "w-other", ResellerID: "r2", URL: srv.URL + "/other", Secret: "x", Enabled: true},
		{ID: "w-spikes", ResellerID: "r1", URL: srv.URL + "/spikes", Secret: "x", Rules: []string{RuleSpike}, Enabled: true},
	} {
		if err := SaveWebhook(t.Context(), h.ch.Conn, w); err != nil {
			t.Fatal(err)
		}
	}
	h.evaluate(t, a)
	wantID := "w1:" + AlertKey(RuleQuota, "r1", "o1", t0.Add(-10*24*time.Hour).Format(timeKey), "80") + "/firing"
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, accepted, _ := rcv.snapshot()
		if len(accepted) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery after 10s: %v", deliveries(t, h))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // any repeat would come by now
	calls, accepted, invalid := rcv.snapshot()
	if calls != 4 || invalid != 0 || len(accepted) != 1 || accepted[0] != wantID {
		t.Fatalf("calls %d, invalid %d, accepted %v; want 4 calls, one valid delivery %s", calls, invalid, accepted, wantID)
	}
	if got := deliveries(t, h); got["failed"] != 3 || got["delivered"] != 1 || len(got) != 2 {
		t.Fatalf("delivery log %v, want 3 failed and 1 delivered", got)
	}
}

// TestWebhookSurvivesRestart: the stage stops while a delivery waits for
// its retry (the receiver failed the first two calls); the next instance of
// the stage, on the same durable consumer, delivers the alert exactly once.
func TestWebhookSurvivesRestart(t *testing.T) {
	rcv := &receiver{secret: "s3cret", failFirst: 2}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	h := newHarness(t, t0)
	if err := stream.Ensure(t.Context(), h.js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	h.cfg.Webhooks = WebhookConfig{Consumer: "test-webhooks", Timeout: 2 * time.Second, MaxAttempts: 8,
		BaseDelay: 400 * time.Millisecond, MaxDelay: 800 * time.Millisecond, CacheTTL: 0}
	first := h.newAlerts(t)
	ctx, stop := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() { defer close(stopped); _ = first.runWebhooks(ctx) }()
	start, end := t0.Add(-10*24*time.Hour), t0.Add(20*24*time.Hour)
	insertEvents(t, h.ch, []ev{subscription("r1", "o1", "pro", "active", 100, 4900, start, end, start)})
	insertEvents(t, h.ch, completed("r1", "o1", t0.Add(-time.Hour), 85, 60000)) // quota 80% only
	if err := SaveWebhook(t.Context(), h.ch.Conn, Webhook{ID: "w1", ResellerID: "r1", URL: srv.URL, Secret: "s3cret", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	h.evaluate(t, first)
	waitFor(t, 10*time.Second, "the first failed call", func() bool { calls, _, _ := rcv.snapshot(); return calls >= 1 })
	stop()
	<-stopped
	calls, accepted, _ := rcv.snapshot()
	if len(accepted) != 0 {
		t.Fatalf("delivered before the restart (%d calls): the test did not stop the stage mid-retry", calls)
	}

	second := h.newAlerts(t)
	go func() { _ = second.runWebhooks(t.Context()) }()
	waitFor(t, 20*time.Second, "a delivery after the restart", func() bool { _, acc, _ := rcv.snapshot(); return len(acc) > 0 })
	time.Sleep(time.Second) // any repeat would come by now
	calls, accepted, invalid := rcv.snapshot()
	if calls != 3 || invalid != 0 || len(accepted) != 1 {
		t.Fatalf("calls %d, invalid %d, accepted %v; want 2 failed calls and one valid delivery", calls, invalid, accepted)
	}
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWebhookDeadLetter: a receiver that always fails gets MaxAttempts
// calls, then the alert goes to tally.dlq.webhook_failed.
func TestWebhookDeadLetter(t *testing.T) {
	rcv := &receiver{secret: "s3cret", failFirst: 1 << 30}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	h, a := webhookHarness(t, 3)
	if err := SaveWebhook(t.Context(), h.ch.Conn, Webhook{ID: "w1", ResellerID: "r1", URL: srv.URL, Secret: "s3cret", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	h.evaluate(t, a)
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := h.js.Stream(t.Context(), stream.DLQStream)
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.GetLastMsgForSubject(t.Context(), stream.DLQPrefix+WebhookDeadLetterCode)
		if err == nil {
			if m.Header.Get(HeaderWebhookID) != "w1" || m.Header.Get(stream.HeaderReason) == "" {
				t.Fatalf("dead letter headers %v", m.Header)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead letter after 10s: %v", deliveries(t, h))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if calls, _, _ := rcv.snapshot(); calls != 3 {
		t.Fatalf("%d calls, want 3", calls)
	}
	if got := deliveries(t, h); got["failed"] != 2 || got["dead"] != 1 {
		t.Fatalf("delivery log %v, want 2 failed and 1 dead", got)
	}
}
