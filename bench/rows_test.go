package bench

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tallyhq/tally/projector"
	"github.com/tallyhq/tally/stream"
	"github.com/tallyhq/tally/testenv"
)

// TestRowsMatchProjector checks that the raw INSERT ceiling writes the same
// rows the projector writes for the same events, so the ceiling measures the
// same work: the projector projects a corpus into events, the bench's
// rowBatch inserts it into a plain copy, and every column but projected_at
// must agree.
func TestRowsMatchProjector(t *testing.T) {
	ctx := t.Context()
	url, _ := testenv.NATS(t)
	_, js := testenv.JetStream(t, url)
	ch := testenv.ClickHouse(t)
	if err := stream.Ensure(ctx, js, stream.Config{}); err != nil {
		t.Fatal(err)
	}

	c := newGenerator("mt", time.Now()).corpus(genBlock * 4)
	e := &env{cfg: DefaultConfig(), js: js, progress: testWriter{t}, began: time.Now()}
	p, err := newRawPublisher(url, 1024)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	if err := p.publish(c, 0, c.len()); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(ctx, c.len()); err != nil {
		t.Fatal(err)
	}

	pr, err := projector.New(projector.Config{BatchWait: 20 * time.Millisecond}, js, ch.Conn, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- pr.Run(pctx) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := checkUsage(ctx, ch.Conn, c.len()); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("projector did not project the corpus: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("projector: %v", err)
	}

	if err := ch.Conn.Exec(ctx, "CREATE TABLE events_plain AS events"); err != nil {
		t.Fatal(err)
	}
	e.cfg.InsertBatch = 100
	if _, err := e.insertCorpus(ctx, ch.Conn, "events_plain", c); err != nil {
		t.Fatal(err)
	}

	want := rowsByID(t, ch.Conn, "events")
	got := rowsByID(t, ch.Conn, "events_plain")
	if len(want) != c.len() || len(got) != c.len() {
		t.Fatalf("projector wrote %d rows, bench %d; want %d each", len(want), len(got), c.len())
	}
	cols := comparedColumns()
	for id, w := range want {
		g := got[id]
		for i := range cols {
			if g[i] != w[i] {
				t.Errorf("event %s column %s: bench %q, projector %q", id, cols[i], g[i], w[i])
			}
		}
	}
}

// comparedColumns is every column of events except projected_at.
func comparedColumns() []string {
	var cols []string
	for _, c := range strings.Split(eventColumns, ",") {
		if c = strings.TrimSpace(c); c != "projected_at" {
			cols = append(cols, c)
		}
	}
	return cols
}

func rowsByID(t *testing.T, conn driver.Conn, table string) map[string][]string {
	t.Helper()
	cols := comparedColumns()
	exprs := make([]string, len(cols))
	for i, c := range cols {
		exprs[i] = "toString(" + c + ")"
	}
	if !validIdent(table) {
		t.Fatalf("table %q", table)
	}
	rows, err := conn.Query(t.Context(), "SELECT id, ["+strings.Join(exprs, ", ")+"] FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var id string
		var vals []string
		if err := rows.Scan(&id, &vals); err != nil {
			t.Fatal(err)
		}
		out[id] = vals
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
