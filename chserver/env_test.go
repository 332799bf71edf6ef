package chserver

import (
	"slices"
	"testing"
)

func TestServerEnv(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		want    []string
	}{
		{"adds upstream's jemalloc configuration", []string{"PATH=/usr/bin"}, []string{"PATH=/usr/bin", "MALLOC_CONF=" + MallocConf}},
		{"keeps the caller's", []string{"MALLOC_CONF=narenas:1", "PATH=/usr/bin"}, []string{"MALLOC_CONF=narenas:1", "PATH=/usr/bin"}},
		{"empty environment", nil, []string{"MALLOC_CONF=" + MallocConf}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			environ := slices.Clone(tc.environ)
			if got := serverEnv(environ); !slices.Equal(got, tc.want) {
				t.Errorf("serverEnv = %q, want %q", got, tc.want)
			}
			if !slices.Equal(environ, tc.environ) {
				t.Errorf("serverEnv changed its argument to %q", environ)
			}
		})
	}
}
