package chstore

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// MigrationsTable records applied migrations inside the tally database.
const MigrationsTable = "schema_migrations"

const (
	createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime
) ENGINE = MergeTree ORDER BY version`
	selectApplied   = `SELECT version, name, checksum FROM schema_migrations ORDER BY version`
	insertMigration = `INSERT INTO schema_migrations (version, name, checksum, applied_at)`
)

// Migration is one embedded migration file.
type Migration struct {
	Version    uint32   // from the file name's numeric prefix
	Name       string   // file name without prefix and extension, e.g. "events"
	File       string   // file name, e.g. "0001_events.sql"
	SQL        string   // the whole file
	Statements []string // SQL split into statements, without trailing ';'
	Checksum   string   // hex SHA-256 of SQL
}

// Applied is one migration applied by Migrate.
type Applied struct {
	Version    uint32
	Name       string
	File       string
	Statements int
	Took       time.Duration
}

var fileRe = regexp.MustCompile(`^([0-9]+)_([a-z0-9_]+)\.sql$`)

// Migrations lists the embedded migrations in version order. It panics if
// the embedded files are malformed (a build-time defect the tests catch).
func Migrations() []Migration {
	ms, err := loadMigrations(migrationFS, "migrations")
	if err != nil {
		panic(err)
	}
	return ms
}

func loadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []Migration
	seen := map[uint32]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		m := fileRe.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration %s: name must look like 0001_name.sql", e.Name())
		}
		v, err := strconv.ParseUint(m[1], 10, 32)
		if err != nil || v == 0 {
			return nil, fmt.Errorf("migration %s: bad version %q", e.Name(), m[1])
		}
		if other, dup := seen[uint32(v)]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", other, e.Name(), v)
		}
		seen[uint32(v)] = e.Name()
		raw, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		stmts := SplitStatements(string(raw))
		if len(stmts) == 0 {
			return nil, fmt.Errorf("migration %s has no statements", e.Name())
		}
		sum := sha256.Sum256(raw)
		ms = append(ms, Migration{
			Version:    uint32(v),
			Name:       m[2],
			File:       e.Name(),
			SQL:        string(raw),
			Statements: stmts,
			Checksum:   hex.EncodeToString(sum[:]),
		})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// SplitStatements splits a migration file into statements. A statement ends
// at a ';' that ends a line (trailing spaces allowed); the ';' is dropped.
// Leading blank and "--" comment lines of each statement are dropped, and
// chunks that hold only comments are ignored.
func SplitStatements(sql string) []string {
	var (
		out []string
		cur []string
	)
	flush := func() {
		for len(cur) > 0 {
			l := strings.TrimSpace(cur[0])
			if l != "" && !strings.HasPrefix(l, "--") {
				break
			}
			cur = cur[1:]
		}
		if s := strings.TrimSpace(strings.Join(cur, "\n")); s != "" {
			out = append(out, s)
		}
		cur = cur[:0]
	}
	for _, line := range strings.Split(strings.ReplaceAll(sql, "\r\n", "\n"), "\n") {
		trimmed := strings.TrimRight(line, " \t")
		if strings.HasSuffix(trimmed, ";") && !strings.HasPrefix(strings.TrimSpace(trimmed), "--") {
			cur = append(cur, strings.TrimSuffix(trimmed, ";"))
			flush()
			continue
		}
		cur = append(cur, line)
	}
	flush()
	return out
}

// Migrate creates cfg.Database if missing and applies the embedded
// migrations that are not yet recorded in schema_migrations, in version
// order, recording each after all its statements succeeded. Running it again
// is a no-op (it returns no Applied). An applied migration whose file has
// changed since is an error naming the file.
//
// A migration that failed half-way is re-run from its first statement next
// time, so every statement must be safe to repeat (IF NOT EXISTS). Run
// Migrate from one process at a time: ClickHouse has no locks to serialize
// concurrent runs.
func Migrate(ctx context.Context, cfg Config, log *slog.Logger) ([]Applied, error) {
	return migrate(ctx, cfg, log, migrationFS)
}

// migrate applies the migrations under "migrations" in fsys.
func migrate(ctx context.Context, cfg Config, log *slog.Logger, fsys fs.FS) ([]Applied, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	ms, err := loadMigrations(fsys, "migrations")
	if err != nil {
		return nil, err
	}

	boot, err := open(ctx, cfg, "")
	if err != nil {
		return nil, err
	}
	// The name was validated against ^[a-zA-Z_][a-zA-Z0-9_]*$.
	err = boot.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+cfg.Database)
	boot.Close()
	if err != nil {
		return nil, fmt.Errorf("create database %s: %w", cfg.Database, err)
	}

	conn, err := open(ctx, cfg, cfg.Database)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.Exec(ctx, createMigrationsTable); err != nil {
		return nil, fmt.Errorf("create %s: %w", MigrationsTable, err)
	}
	done, err := appliedChecksums(ctx, conn)
	if err != nil {
		return nil, err
	}

	var applied []Applied
	for _, m := range ms {
		if sums, ok := done[m.Version]; ok {
			for _, sum := range sums {
				if sum != m.Checksum {
					return applied, fmt.Errorf("migration %s was changed after it was applied (checksum %s, recorded %s): add a new migration instead", m.File, short(m.Checksum), short(sum))
				}
			}
			continue
		}
		began := time.Now()
		for i, stmt := range m.Statements {
			if err := conn.Exec(ctx, stmt); err != nil {
				return applied, fmt.Errorf("migration %s statement %d: %w", m.File, i+1, err)
			}
		}
		if err := record(ctx, conn, m); err != nil {
			return applied, err
		}
		a := Applied{Version: m.Version, Name: m.Name, File: m.File, Statements: len(m.Statements), Took: time.Since(began)}
		log.Info("migration applied", "database", cfg.Database, "file", a.File, "statements", a.Statements, "took", a.Took.Round(time.Millisecond))
		applied = append(applied, a)
	}
	return applied, nil
}

// appliedChecksums maps each recorded version to its recorded checksums
// (normally one; a concurrent run may have recorded a version twice).
func appliedChecksums(ctx context.Context, conn driver.Conn) (map[uint32][]string, error) {
	rows, err := conn.Query(ctx, selectApplied)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", MigrationsTable, err)
	}
	defer rows.Close()
	done := map[uint32][]string{}
	for rows.Next() {
		var (
			version        uint32
			name, checksum string
		)
		if err := rows.Scan(&version, &name, &checksum); err != nil {
			return nil, fmt.Errorf("scan %s: %w", MigrationsTable, err)
		}
		done[version] = append(done[version], checksum)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", MigrationsTable, err)
	}
	return done, nil
}

func record(ctx context.Context, conn driver.Conn, m Migration) error {
	batch, err := conn.PrepareBatch(ctx, insertMigration)
	if err != nil {
		return fmt.Errorf("record migration %s: %w", m.File, err)
	}
	if err := batch.Append(m.Version, m.Name, m.Checksum, time.Now().UTC().Truncate(time.Second)); err != nil {
		_ = batch.Abort()
		return fmt.Errorf("record migration %s: %w", m.File, err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("record migration %s: %w", m.File, err)
	}
	return nil
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}
