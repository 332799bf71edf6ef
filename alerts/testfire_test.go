package alerts

import (
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/tallyhq/tally/alertspec"
	"github.com/tallyhq/tally/stream"
)

// TestTestAlertDelivery: test alerts as the query service publishes them
// (alertspec.NewTestAlert + alertspec.Publish) reach webhooks: a rule's test
// alert the webhooks of that rule; a webhook's test alert (WebhookID) only
// that webhook, whatever its rules, even one saved after the reseller's
// webhook list was cached.
func TestTestAlertDelivery(t *testing.T) {
	spikes := &receiver{secret: "spike-secret-0123456789"}
	quota := &receiver{secret: "quota-secret-0123456789"}
	spikeSrv, quotaSrv := httptest.NewServer(spikes), httptest.NewServer(quota)
	t.Cleanup(spikeSrv.Close)
	t.Cleanup(quotaSrv.Close)

	h := newHarness(t, t0)
	if err := stream.Ensure(t.Context(), h.js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	h.cfg.Webhooks = WebhookConfig{Consumer: "test-webhooks", Timeout: 2 * time.Second, MaxAttempts: 3,
		BaseDelay: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond, CacheTTL: time.Hour}
	a := h.newAlerts(t)
	go func() { _ = a.runWebhooks(t.Context()) }()
	publish := func(rule, webhook string) *Alert {
		t.Helper()
		al, err := alertspec.NewTestAlert("r1", rule, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		al.WebhookID = webhook
		if err := alertspec.Publish(t.Context(), h.js, al); err != nil {
			t.Fatal(err)
		}
		return al
	}

	// The first alert caches r1's webhook list (empty) for an hour.
	first := publish(RuleQuota, "")
	waitConsumed(t, h)
	for _, w := range []Webhook{
		{ID: "w-spikes", ResellerID: "r1", URL: spikeSrv.URL, Secret: spikes.secret, Rules: []string{RuleSpike}, Enabled: true},
		{ID: "w-quota", ResellerID: "r1", URL: quotaSrv.URL, Secret: quota.secret, Rules: []string{RuleQuota}, Enabled: true},
	} {
		if err := SaveWebhook(t.Context(), h.ch.Conn, w); err != nil {
			t.Fatal(err)
		}
	}
	targeted := publish(RuleQuota, "w-spikes")
	waitAccepted(t, spikes, "w-spikes:"+targeted.Key+"/test")
	// The list is fresh now: a rule's test alert reaches that rule's webhook.
	spike := publish(RuleSpike, "")
	waitAccepted(t, spikes, "w-spikes:"+spike.Key+"/test")
	quotaTest := publish(RuleQuota, "")
	waitAccepted(t, quota, "w-quota:"+quotaTest.Key+"/test")
	if _, accepted, _ := quota.snapshot(); len(accepted) != 1 {
		t.Errorf("w-quota received %v, want only its rule's test alert", accepted)
	}
	if _, accepted, _ := spikes.snapshot(); slices.Contains(accepted, "w-spikes:"+first.Key+"/test") || len(accepted) != 2 {
		t.Errorf("w-spikes received %v", accepted)
	}
}

// waitConsumed waits until the webhook consumer has acknowledged every
// published alert.
func waitConsumed(t *testing.T, h *harness) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := h.js.Consumer(t.Context(), StreamName, h.cfg.Webhooks.Consumer)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Consumer > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook consumer did not catch up: %+v", info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitAccepted(t *testing.T, r *receiver, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, accepted, invalid := r.snapshot()
		if slices.Contains(accepted, id) {
			if invalid != 0 {
				t.Errorf("%d invalid signatures", invalid)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s not received after 10s: %v", id, accepted)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
