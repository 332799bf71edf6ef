package bench

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/testenv"
)

// TestQueriesOnCurrentClickHouse checks the bench's SQL (the plain copy of
// events, its INSERT and the read-model queries it waits on) on ClickHouse
// 18.16 and on current ClickHouse (chDB), with the same results.
func TestQueriesOnCurrentClickHouse(t *testing.T) {
	ch := testenv.ClickHouse(t)
	g := newGenerator("qc", time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC))
	var rows rowBatch
	var jobIDs []string
	for i := 0; i < genBlock+3; i++ {
		ev := g.event(i)
		body := appendBody(nil, &ev)
		rows.add(&ev, body, uint64(i+1), g.base)
		if ev.typ == "job.created" && len(jobIDs) < 2 {
			jobIDs = append(jobIDs, ev.jobID)
		}
	}
	jobIDs = append(jobIDs, "job-not-there")
	insert := literalInsert(t, "events", &rows)
	setup := []string{"CREATE TABLE events_plain AS events", insert, strings.Replace(insert, "INSERT INTO events ", "INSERT INTO events_plain ", 1)}

	res := testenv.CompareWithChDB(t, ch, setup, []testenv.NamedQuery{
		{Name: "usage total", SQL: usageTotalQuery},
		{Name: "events count", SQL: eventsCountQuery},
		{Name: "plain count", SQL: "SELECT count() FROM events_plain"},
		{Name: "visible jobs", SQL: visibleJobsQuery + " ORDER BY job_id", Args: []any{jobIDs}},
	})
	n := genBlock + 3
	if got := res["usage total"].Rows; len(got) != 1 || got[0][0] != strconv.FormatUint(usageCount(n), 10) {
		t.Errorf("usage total = %v, want %d", got, usageCount(n))
	}
	if got := res["visible jobs"].Rows; len(got) != 2 {
		t.Errorf("visible jobs = %v, want the 2 generated jobs but not the missing one", got)
	}
}

// literalInsert renders the rows as one INSERT with literal values.
func literalInsert(t *testing.T, table string, b *rowBatch) string {
	t.Helper()
	query, err := insertInto(table)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	sb.WriteString(query)
	sb.WriteString(" VALUES ")
	for i := 0; i < b.len(); i++ {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("(")
		for k, v := range b.row(i) {
			if k > 0 {
				sb.WriteString(", ")
			}
			lit, err := testenv.Literal(v)
			if err != nil {
				t.Fatal(err)
			}
			sb.WriteString(lit)
		}
		sb.WriteString(")")
	}
	return sb.String()
}

// row returns row i in eventColumns order.
func (b *rowBatch) row(i int) []any {
	return []any{
		b.id[i], b.typ[i], b.source[i], b.time[i], b.timeMS[i], b.reseller[i], b.org[i], b.subject[i], b.data[i],
		b.streamSeq[i], b.projectedAt[i], b.name[i], b.plan[i], b.status[i], b.createdAt[i], b.userID[i], b.role[i], b.jobID[i], b.model[i], b.language[i],
		b.mediaMS[i], b.procMS[i], b.errorCode[i], b.quota[i], b.amount[i], b.currency[i], b.periodStart[i], b.periodEnd[i],
		b.ref[i], b.severity[i],
	}
}
