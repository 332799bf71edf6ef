package ops

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "tally_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)

	tests := []struct {
		name     string
		checks   map[string]Check
		path     string
		wantCode int
		wantBody string
	}{
		{"healthz always ok", map[string]Check{"nats": failing}, "/healthz", 200, `"status":"ok"`},
		{"ready when all checks pass", map[string]Check{"nats": passing, "clickhouse": passing}, "/readyz", 200, `"clickhouse":"ok"`},
		{"not ready names the failing check", map[string]Check{"nats": passing, "clickhouse": failing}, "/readyz", 503, `"clickhouse":"connection refused"`},
		{"metrics exposes registered series", nil, "/metrics", 200, "tally_test_total 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Config{}, slog.New(slog.DiscardHandler), reg, tt.checks)
			srv := httptest.NewServer(s.Handler())
			defer srv.Close()
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tt.wantCode, body)
			}
			if !strings.Contains(string(body), tt.wantBody) {
				t.Fatalf("body %s lacks %s", body, tt.wantBody)
			}
			if tt.path == "/readyz" && !json.Valid(body) {
				t.Fatalf("invalid JSON: %s", body)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		listen string
		ok     bool
	}{{"", true}, {":9090", true}, {"127.0.0.1:0", true}, {"9090", false}} {
		err := Config{Listen: tt.listen}.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("Validate(%q) = %v, want ok=%v", tt.listen, err, tt.ok)
		}
	}
}

func passing(context.Context) error { return nil }
func failing(context.Context) error { return errors.New("connection refused") }
