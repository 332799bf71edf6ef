// Package ops serves the operational endpoints every tally process exposes:
// /healthz (the process is alive), /readyz (its dependencies answer) and
// /metrics (Prometheus).
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports whether one dependency is usable; nil means ready.
type Check func(ctx context.Context) error

// Config configures the ops server.
type Config struct {
	// Listen is the address to serve on, e.g. ":9090". Empty disables the server.
	Listen string
	// CheckTimeout bounds each readiness check.
	CheckTimeout time.Duration
}

// Validate reports a configuration error.
func (c Config) Validate() error {
	if c.Listen == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("ops listen address %q: %w", c.Listen, err)
	}
	return nil
}

// Server serves /healthz, /readyz and /metrics.
type Server struct {
	cfg    Config
	log    *slog.Logger
	gather prometheus.Gatherer
	checks map[string]Check
}

// New returns a server that gathers metrics from g and runs checks for /readyz.
func New(cfg Config, log *slog.Logger, g prometheus.Gatherer, checks map[string]Check) *Server {
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = 2 * time.Second
	}
	return &Server{cfg: cfg, log: log, gather: g, checks: checks}
}

// Handler returns the HTTP handler with the three endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		code, body := s.ready(r.Context())
		writeJSON(w, code, body)
	})
	mux.Handle("/metrics", promhttp.HandlerFor(s.gather, promhttp.HandlerOpts{}))
	return mux
}

// ready runs every check and reports each result by name.
func (s *Server) ready(ctx context.Context) (int, map[string]any) {
	names := make([]string, 0, len(s.checks))
	for n := range s.checks {
		names = append(names, n)
	}
	sort.Strings(names)
	results := make(map[string]string, len(names))
	code := http.StatusOK
	for _, n := range names {
		cctx, cancel := context.WithTimeout(ctx, s.cfg.CheckTimeout)
		err := s.checks[n](cctx)
		cancel()
		if err != nil {
			results[n] = err.Error()
			code = http.StatusServiceUnavailable
			continue
		}
		results[n] = "ok"
	}
	status := "ready"
	if code != http.StatusOK {
		status = "not ready"
	}
	return code, map[string]any{"status": status, "checks": results}
}

// Run serves until ctx ends, then shuts down gracefully. With an empty
// Listen address it only waits for ctx.
func (s *Server) Run(ctx context.Context) error {
	if s.cfg.Listen == "" {
		<-ctx.Done()
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("ops listen %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("ops endpoints listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("ops server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("ops shutdown: %w", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
