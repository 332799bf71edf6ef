package main

import (
	"io"
	"log/slog"
	"runtime/debug"
	"testing"
)

func TestProjectorGCTuning(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// debug settings are process-wide: restore them.
	limit0, pct0 := debug.SetMemoryLimit(-1), debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetMemoryLimit(limit0); debug.SetGCPercent(pct0) })

	tests := []struct {
		name      string
		mib       int
		env       map[string]string
		wantLimit int64
		wantPct   int
		wantErr   bool
	}{
		{name: "default", mib: defaultProjectorMemLimitMiB, wantLimit: 200 << 20, wantPct: projectorGCPercent},
		{name: "zero keeps Go defaults", mib: 0, wantLimit: 1 << 40, wantPct: 100},
		{name: "GOMEMLIMIT in the environment wins", mib: 200, env: map[string]string{"GOMEMLIMIT": "1GiB"}, wantLimit: 1 << 40, wantPct: projectorGCPercent},
		{name: "GOGC in the environment wins", mib: 150, env: map[string]string{"GOGC": "100"}, wantLimit: 150 << 20, wantPct: 100},
		{name: "negative", mib: -1, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(1 << 40)
			debug.SetGCPercent(100)
			o := projectorOptions{memLimit: tc.mib}
			err := o.tuneGC(log, func(k string) string { return tc.env[k] })
			if tc.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := debug.SetMemoryLimit(-1); got != tc.wantLimit {
				t.Errorf("memory limit %d, want %d", got, tc.wantLimit)
			}
			if got := debug.SetGCPercent(100); got != tc.wantPct {
				t.Errorf("GC percent %d, want %d", got, tc.wantPct)
			}
		})
	}
}
