package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tallyhq/tally/alerts"
	"github.com/tallyhq/tally/alertspec"
)

// demoWebhookPath is where the dev webhook sink listens.
const demoWebhookPath = "/demo/webhook"

// demoWebhookSink receives the demo resellers' alerts in `tally dev`: it
// checks each delivery's signature and logs it, so whoever runs tally dev
// sees alerts reach a webhook without running a receiver of their own.
type demoWebhookSink struct {
	secret string
	log    *slog.Logger
}

func (s *demoWebhookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	if err := alertspec.VerifySignature(s.secret, r.Header.Get(alertspec.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
		s.log.Warn("webhook sink: bad signature", "err", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var a alertspec.Alert
	if err := json.Unmarshal(body, &a); err != nil {
		s.log.Warn("webhook sink: undecodable alert", "err", err)
		http.Error(w, "bad alert", http.StatusBadRequest)
		return
	}
	s.log.Info("webhook received", "rule", a.Rule, "reseller", a.ResellerID, "org", a.OrgID, "state", a.State, "title", a.Title)
	w.WriteHeader(http.StatusNoContent)
}

// serveDemoWebhookSink listens on a free loopback port and returns the
// sink's URL; the server stops when ctx ends.
func serveDemoWebhookSink(ctx context.Context, secret string, log *slog.Logger) (string, func() error, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("webhook sink: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(demoWebhookPath, &demoWebhookSink{secret: secret, log: log})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	run := func() error {
		go func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("webhook sink: %w", err)
		}
		return nil
	}
	return "http://" + ln.Addr().String() + demoWebhookPath, run, nil
}

// registerDemoWebhooks points one webhook per demo reseller at url. The ids
// are fixed, so a restart on the same data updates them instead of adding
// more.
func registerDemoWebhooks(ctx context.Context, conn driver.Conn, resellers []string, url, secret string) error {
	for _, r := range resellers {
		w := alerts.Webhook{ID: "demo-" + r, ResellerID: r, URL: url, Secret: secret, Enabled: true}
		if err := alerts.SaveWebhook(ctx, conn, w); err != nil {
			return fmt.Errorf("demo webhook for %s: %w", r, err)
		}
	}
	return nil
}

// randomSecret returns a fresh webhook signing secret.
func randomSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "whsec_" + hex.EncodeToString(b)
}
