// Package chstore connects to ClickHouse over the native protocol and applies
// tally's embedded migrations (migrations/NNNN_name.sql).
//
// Everything here works on ClickHouse 18.16 and on current releases; see
// DESIGN.md "ClickHouse versions".
package chstore

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Defaults applied by Config.WithDefaults.
const (
	DefaultDatabase    = "tally"
	DefaultUsername    = "default"
	DefaultDialTimeout = 10 * time.Second
	// DefaultMaxConns bounds a process's open connections; as many are
	// kept idle, so that bursts of queries (the query stage runs a
	// request's queries at once) do not dial and close connections.
	DefaultMaxConns = 16
)

var identRe = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// ValidIdentifier reports whether s may be used unquoted as a ClickHouse
// database or table name in SQL text: ^[a-zA-Z_][a-zA-Z0-9_]*$.
func ValidIdentifier(s string) bool { return identRe.MatchString(s) }

// Config describes a ClickHouse connection.
type Config struct {
	// Addr is host:port of the native protocol (usually port 9000).
	Addr string
	// Database is the database tally uses. Default "tally".
	Database string
	// Username defaults to "default".
	Username string
	// Password may be empty.
	Password string
	// DialTimeout defaults to 10s.
	DialTimeout time.Duration
	// MaxOpenConns defaults to DefaultMaxConns, MaxIdleConns to
	// MaxOpenConns.
	MaxOpenConns int
	MaxIdleConns int
	// ConnMaxLifetime: 0 leaves clickhouse-go's default (1h).
	ConnMaxLifetime time.Duration
}

// WithDefaults returns c with empty fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Database == "" {
		c.Database = DefaultDatabase
	}
	if c.Username == "" {
		c.Username = DefaultUsername
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.MaxOpenConns == 0 {
		c.MaxOpenConns = DefaultMaxConns
	}
	if c.MaxIdleConns == 0 {
		c.MaxIdleConns = c.MaxOpenConns
	}
	return c
}

// Validate checks the configuration after defaults are applied.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var problems []string
	if c.Addr == "" {
		problems = append(problems, "addr is required (host:port of the native protocol)")
	} else if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" {
		problems = append(problems, fmt.Sprintf("addr %q is not host:port", c.Addr))
	}
	if !ValidIdentifier(c.Database) {
		problems = append(problems, fmt.Sprintf("database %q must match %s", c.Database, identRe))
	}
	if c.DialTimeout < 0 {
		problems = append(problems, "dial timeout must not be negative")
	}
	if c.MaxOpenConns < 0 || c.MaxIdleConns < 0 {
		problems = append(problems, "connection limits must not be negative")
	}
	if c.MaxOpenConns > 0 && c.MaxIdleConns > c.MaxOpenConns {
		problems = append(problems, "max idle conns must not exceed max open conns")
	}
	if len(problems) > 0 {
		return fmt.Errorf("clickhouse config: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Open connects to cfg.Database over the native protocol and pings. The
// database must exist (Migrate creates it).
func Open(ctx context.Context, cfg Config) (driver.Conn, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return open(ctx, cfg, cfg.Database)
}

// open connects to database (empty: the server's default database).
func open(ctx context.Context, cfg Config, database string) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Protocol: clickhouse.Native,
		Addr:     []string{cfg.Addr},
		Auth: clickhouse.Auth{
			Database: database,
			Username: cfg.Username,
			Password: cfg.Password,
		},
		ClientInfo: clickhouse.ClientInfo{
			Products: []struct{ Name, Version string }{{Name: "tally", Version: "1"}},
		},
		DialTimeout:     cfg.DialTimeout,
		MaxOpenConns:    cfg.MaxOpenConns,
		MaxIdleConns:    cfg.MaxIdleConns,
		ConnMaxLifetime: cfg.ConnMaxLifetime,
	})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", cfg.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ping clickhouse %s (database %q): %w", cfg.Addr, database, err)
	}
	return conn, nil
}
