package chstore

import (
	"context"
	"io/fs"
	"log/slog"
	"strings"
	"testing/fstest"
)

// MigrateUpTo applies the embedded migrations whose file name sorts at or
// before last: a database as an older tally left it.
func MigrateUpTo(ctx context.Context, cfg Config, log *slog.Logger, last string) ([]Applied, error) {
	sub := fstest.MapFS{}
	err := fs.WalkDir(migrationFS, "migrations", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.TrimPrefix(path, "migrations/") > last {
			return err
		}
		b, err := fs.ReadFile(migrationFS, path)
		sub[path] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		return nil, err
	}
	return migrate(ctx, cfg, log, sub)
}
