package query

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/testenv"
)

// TestMonthShiftEdges: monthly usage in zones from UTC-12 to UTC+14, with
// UTC month rows moved to local months through usage_month_edges, equals
// the same months summed from usage_15m alone, over jobs every 37 minutes
// within 18 hours of each UTC month start (so the edges' table holds some
// of them and the zones move some), projected through the pipeline.
func TestMonthShiftEdges(t *testing.T) {
	var f fixtureBuilder
	f.org("r1", "o1", "Edge One", "pro", "active", "2026-08-01T00:00:00Z")
	f.org("r1", "o2", "Edge Two", "starter", "active", "2026-08-01T00:00:00Z")
	n := 0
	for m := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC); m.Before(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)); m = m.AddDate(0, 1, 0) {
		for k := -29; k <= 29; k++ {
			at := m.Add(time.Duration(k) * 37 * time.Minute)
			n++
			end := at.Add(5 * time.Minute).Format(time.RFC3339)
			f.job("r1", []string{"o1", "o2"}[n%2], fmt.Sprintf("j%03d", n), fmt.Sprintf("u%d", n%7), []string{"nova-2", "whisper-large"}[n%3%2], "en",
				at.Format(time.RFC3339), end, []string{"completed", "completed", "failed"}[n%3], float64(60+n), int64(1000+n))
		}
	}
	ch := project(t, f.events)

	for _, tz := range []string{"Pacific/Kiritimati", "Asia/Kolkata", "Asia/Kathmandu", "Europe/Amsterdam", "America/New_York", "Etc/GMT+12"} {
		for _, groupBy := range [][]string{nil, {"organization"}, {"organization", "model"}} {
			t.Run(tz+"/"+strings.Join(groupBy, ","), func(t *testing.T) {
				loc, err := loadZone(tz)
				if err != nil {
					t.Fatal(err)
				}
				from := time.Date(2026, 8, 1, 0, 0, 0, 0, loc)
				to := time.Date(2026, 12, 1, 0, 0, 0, 0, loc)
				plain := usageQuery{reseller: "r1", from: from.UTC(), to: to.UTC(), granularity: "month", tz: tz, groupBy: groupBy, level: levelModel}
				shifted := plain
				shifted.level = levelOrg
				if len(groupBy) == 2 {
					shifted.level = levelModel
				}
				if shifted.shift = shiftMonths(from, to, loc); shifted.shift == nil || !nearMonthStarts(shifted.shift.zones) {
					t.Fatalf("shift %+v", shifted.shift)
				}
				sql, args := shifted.build()
				if !strings.Contains(sql, "FROM usage_month_edges") {
					t.Fatalf("shifted query does not read usage_month_edges:\n%s", sql)
				}
				got := testenv.Rows(t, ch.Conn, sql, args...)
				sql, args = plain.build()
				want := testenv.Rows(t, ch.Conn, sql, args...)
				if len(want) < 4 {
					t.Fatalf("only %d rows from usage_15m", len(want))
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("shifted through usage_month_edges:\n%s\nfrom usage_15m:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			})
		}
	}
}
