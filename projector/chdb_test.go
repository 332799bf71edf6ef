package projector

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/schemas"
	"github.com/tallyhq/tally/testenv"
)

// TestSQLOnCurrentClickHouse runs the projector's SQL on ClickHouse 18.16
// and on current ClickHouse (chDB): the INSERT's column list (with a row of
// every event type), the duplicate lookup and the high-water mark query.
func TestSQLOnCurrentClickHouse(t *testing.T) {
	ch := testenv.ClickHouse(t)
	now := time.Now()
	events := generate(genConfig{Seed: 9, Resellers: 1, Orgs: 12, Jobs: 20, Now: now})
	seen := map[string]bool{}
	var setup []string
	var ids []string
	for i, e := range events {
		if seen[e.Type] {
			continue
		}
		seen[e.Type] = true
		r, err := mapEvent(e, uint64(100+i), now)
		if err != nil {
			t.Fatal(err)
		}
		setup = append(setup, insertValues(t, r))
		ids = append(ids, r.ID)
	}
	if len(seen) != len(schemas.Types) {
		t.Fatalf("generated %d event types, want all %d", len(seen), len(schemas.Types))
	}
	testenv.CompareWithChDB(t, ch, setup, []testenv.NamedQuery{
		{Name: "lookup one", SQL: existingIDsSQL, Args: []any{[]string{ids[0], "no-such-id"}}},
		{Name: "lookup none", SQL: existingIDsSQL, Args: []any{[]string{"no-such-id"}}},
		{Name: "high-water mark", SQL: maxStreamSeqSQL},
		{Name: "rows as inserted", SQL: "SELECT * FROM events ORDER BY id"},
	})
}

// insertValues renders r as the projector's INSERT with literal values.
func insertValues(t testing.TB, r row) string {
	t.Helper()
	vals := make([]string, len(eventColumns))
	var (
		buf colBuffers
		a   arena
	)
	rs := []packedRow{a.pack(&r)}
	for i, c := range eventColumns {
		var v any
		switch col := c.values(rs, &a, &buf).(type) {
		case []string:
			v = col[0]
		case []time.Time:
			v = col[0]
		case []uint64:
			v = col[0]
		case []int64:
			v = col[0]
			if c.dateTime {
				v = time.Unix(col[0], 0)
			}
		default:
			t.Fatalf("column %s: unexpected %T", c.name, col)
		}
		lit, err := testenv.Literal(v)
		if err != nil {
			t.Fatalf("column %s: %v", c.name, err)
		}
		vals[i] = lit
	}
	return fmt.Sprintf("%s VALUES (%s)", insertEventsSQL, strings.Join(vals, ", "))
}
