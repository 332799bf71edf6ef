package query

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// fakeRows yields n activity rows, or fails after failAt rows.
type fakeRows struct {
	driver.Rows
	n, i, failAt int
}

func (r *fakeRows) Next() bool { r.i++; return r.i <= r.n }
func (r *fakeRows) Err() error {
	if r.failAt > 0 && r.i > r.failAt {
		return errors.New("connection reset")
	}
	return nil
}
func (r *fakeRows) Scan(dest ...any) error {
	if r.failAt > 0 && r.i > r.failAt {
		return errors.New("connection reset")
	}
	at := time.Date(2026, 11, 1, 0, 0, r.i, 0, time.UTC)
	*dest[0].(*string), *dest[1].(*string), *dest[2].(*string) = "o1", fmt.Sprintf("job-%d", r.i), "u, \"quoted\""
	*dest[3].(*string), *dest[4].(*string), *dest[5].(*string) = "nova-2", "en", "completed"
	*dest[6].(*time.Time), *dest[7].(*time.Time) = at, at.Add(time.Minute)
	*dest[8].(*uint64), *dest[9].(*uint64) = 61500, 900
	*dest[10].(*string) = ""
	return nil
}

// countingWriter counts the writes that reach the connection.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) { w.writes++; return w.Buffer.Write(p) }

func TestWriteActivityCSV(t *testing.T) {
	cases := []struct {
		name       string
		rows       int
		failAt     int
		wantErr    bool
		wantChunks int // writes reaching the connection, at least
	}{
		{"empty", 0, 0, false, 1},
		{"one chunk", 10, 0, false, 1},
		{"streamed in chunks", 2*streamFlushRows + 5, 0, false, 3},
		{"ends early on error", 2*streamFlushRows + 5, streamFlushRows + 1, true, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out countingWriter
			bw := bufio.NewWriterSize(&out, 1<<20) // larger than the report: only explicit flushes write
			err := writeActivityCSV(bw, &fakeRows{n: tc.rows, failAt: tc.failAt}, time.UTC)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if out.writes < tc.wantChunks {
				t.Errorf("%d writes reached the client, want at least %d", out.writes, tc.wantChunks)
			}
			recs, perr := csv.NewReader(bytes.NewReader(out.Bytes())).ReadAll()
			if perr != nil {
				t.Fatalf("output is not CSV: %v", perr)
			}
			want := tc.rows
			if tc.wantErr {
				want = streamFlushRows // what was flushed before the failure
			}
			if len(recs) != want+1 {
				t.Fatalf("%d records, want header + %d", len(recs), want)
			}
			if tc.rows > 0 {
				wantRow := []string{"2026-11-01T00:00:01Z", "o1", "job-1", "u, \"quoted\"", "completed", "nova-2", "en", "61.5", "900", "", "2026-11-01T00:01:01Z"}
				if !reflect.DeepEqual(recs[1], wantRow) {
					t.Errorf("first row %q, want %q", recs[1], wantRow)
				}
			}
		})
	}
}
