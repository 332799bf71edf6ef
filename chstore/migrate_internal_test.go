package chstore

import (
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want []string
	}{
		{"one", "SELECT 1;", []string{"SELECT 1"}},
		{"no final semicolon", "SELECT 1", []string{"SELECT 1"}},
		{"two with comments", "-- first\nCREATE TABLE a (x UInt8)\nENGINE = Memory;\n\n-- second\n-- more\nSELECT 2;  \n",
			[]string{"CREATE TABLE a (x UInt8)\nENGINE = Memory", "SELECT 2"}},
		{"semicolon inside a line", "SELECT ';' AS s, 1\nFROM t;", []string{"SELECT ';' AS s, 1\nFROM t"}},
		{"comment-only chunk", "SELECT 1;\n-- trailing comment;\n-- nothing else\n", []string{"SELECT 1"}},
		{"inline comment kept", "SELECT 1 -- one\n, 2;", []string{"SELECT 1 -- one\n, 2"}},
		{"CRLF", "SELECT 1;\r\nSELECT 2;\r\n", []string{"SELECT 1", "SELECT 2"}},
		{"empty", "\n-- only\n\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SplitStatements(tt.sql); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SplitStatements(%q) = %q, want %q", tt.sql, got, tt.want)
			}
		})
	}
}

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name      string
		fs        fstest.MapFS
		wantFiles []string
		wantErr   string
	}{
		{"ordered by number", fstest.MapFS{
			"m/0010_b.sql": file("SELECT 10;"),
			"m/0002_a.sql": file("SELECT 2;"),
			"m/README.md":  file("not sql"),
		}, []string{"0002_a.sql", "0010_b.sql"}, ""},
		{"bad name", fstest.MapFS{"m/first.sql": file("SELECT 1;")}, nil, "first.sql: name must look like"},
		{"duplicate version", fstest.MapFS{
			"m/0001_a.sql": file("SELECT 1;"),
			"m/01_b.sql":   file("SELECT 1;"),
		}, nil, "share version 1"},
		{"version zero", fstest.MapFS{"m/0000_a.sql": file("SELECT 1;")}, nil, "bad version"},
		{"no statements", fstest.MapFS{"m/0001_a.sql": file("-- nothing\n")}, nil, "no statements"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := loadMigrations(tt.fs, "m")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("loadMigrations error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadMigrations: %v", err)
			}
			var files []string
			for _, m := range ms {
				files = append(files, m.File)
			}
			if !reflect.DeepEqual(files, tt.wantFiles) {
				t.Errorf("files = %v, want %v", files, tt.wantFiles)
			}
		})
	}
}

func TestEmbeddedMigrations(t *testing.T) {
	ms := Migrations()
	if len(ms) == 0 {
		t.Fatal("no embedded migrations")
	}
	for i, m := range ms {
		if i > 0 && m.Version <= ms[i-1].Version {
			t.Errorf("%s: version %d not after %d", m.File, m.Version, ms[i-1].Version)
		}
		if len(m.Statements) == 0 || len(m.Checksum) != 64 || m.Name == "" {
			t.Errorf("%s: incomplete %+v", m.File, m)
		}
		for j, s := range m.Statements {
			if strings.HasSuffix(s, ";") || strings.HasPrefix(s, "--") {
				t.Errorf("%s statement %d not trimmed: %q", m.File, j+1, s)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"minimal", Config{Addr: "127.0.0.1:9000"}, ""},
		{"full", Config{Addr: "ch:9000", Database: "tally_prod", Username: "u", Password: "p", MaxOpenConns: 10, MaxIdleConns: 5}, ""},
		{"no addr", Config{}, "addr is required"},
		{"addr without port", Config{Addr: "localhost"}, "not host:port"},
		{"bad database", Config{Addr: "h:1", Database: "tally; DROP"}, "must match"},
		{"database starting with digit", Config{Addr: "h:1", Database: "1x"}, "must match"},
		{"negative timeout", Config{Addr: "h:1", DialTimeout: -1}, "dial timeout"},
		{"idle above open", Config{Addr: "h:1", MaxOpenConns: 2, MaxIdleConns: 3}, "max idle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate error = %v, want %q", err, tt.wantErr)
			}
		})
	}
	if got := (Config{}).WithDefaults(); got.Database != "tally" || got.Username != "default" || got.DialTimeout == 0 ||
		got.MaxOpenConns != DefaultMaxConns || got.MaxIdleConns != DefaultMaxConns {
		t.Errorf("WithDefaults() = %+v", got)
	}
	if got := (Config{MaxOpenConns: 4}).WithDefaults(); got.MaxIdleConns != 4 {
		t.Errorf("WithDefaults() with 4 open connections keeps %d idle, want 4", got.MaxIdleConns)
	}
}
