package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures a NATS server run inside the tally process
// (dev mode, tests).
type EmbeddedConfig struct {
	// Host to listen on; "" means 127.0.0.1.
	Host string
	// Port to listen on; -1 picks a free port, 0 means NATS's default 4222.
	Port int
	// StoreDir is where JetStream keeps its files. Required.
	StoreDir string
	// SyncAlways fsyncs every write before acknowledging it
	// (sync_interval: always). Slower, but an acknowledged event survives a
	// machine crash.
	SyncAlways bool
	// ServerName names the server in logs and stream info; "" lets NATS pick.
	ServerName string
	// Logger receives the server's log lines; nil discards them.
	Logger *slog.Logger
	// ReadyTimeout bounds the wait for the server to accept connections;
	// 0 means 10s.
	ReadyTimeout time.Duration
}

// StartEmbedded starts a NATS server with JetStream and returns it once it
// accepts connections. Connect with s.ClientURL(); stop with s.Shutdown()
// then s.WaitForShutdown().
func StartEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("embedded nats: store dir required")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	opts := &server.Options{
		ServerName: cfg.ServerName,
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		SyncAlways: cfg.SyncAlways,
		NoSigs:     true,
		NoLog:      cfg.Logger == nil,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if cfg.Logger != nil {
		s.SetLoggerV2(&natsLogger{log: cfg.Logger.With("component", "nats")}, false, false, false)
	}
	s.Start()
	if !s.ReadyForConnections(cfg.ReadyTimeout) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("embedded nats: not ready for connections after %s", cfg.ReadyTimeout)
	}
	if !s.JetStreamEnabled() {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, errors.New("embedded nats: jetstream did not start (see server log)")
	}
	return s, nil
}

// natsLogger adapts slog to the NATS server's logger interface.
type natsLogger struct{ log *slog.Logger }

func (l *natsLogger) logf(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if l.log.Enabled(ctx, level) {
		l.log.Log(ctx, level, fmt.Sprintf(format, v...))
	}
}

func (l *natsLogger) Noticef(format string, v ...any) { l.logf(slog.LevelInfo, format, v) }
func (l *natsLogger) Warnf(format string, v ...any)   { l.logf(slog.LevelWarn, format, v) }
func (l *natsLogger) Fatalf(format string, v ...any)  { l.logf(slog.LevelError, format, v) }
func (l *natsLogger) Errorf(format string, v ...any)  { l.logf(slog.LevelError, format, v) }
func (l *natsLogger) Debugf(format string, v ...any)  { l.logf(slog.LevelDebug, format, v) }
func (l *natsLogger) Tracef(format string, v ...any)  { l.logf(slog.LevelDebug-4, format, v) }
