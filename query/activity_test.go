package query

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestGuidedWindows(t *testing.T) {
	const day = 24 * time.Hour
	cases := []struct {
		name   string
		guided time.Duration
		want   []time.Duration
	}{
		{"everything", 0, []time.Duration{0}},
		{"within the first window", 30 * time.Minute, []time.Duration{30 * time.Minute, time.Hour, day, 7 * day, 35 * day, 0}},
		{"between windows", 36 * time.Hour, []time.Duration{36 * time.Hour, 7 * day, 35 * day, 0}},
		{"equal to a window", 7 * day, []time.Duration{7 * day, 35 * day, 0}},
		{"beyond the windows", 40 * day, []time.Duration{40 * day, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := guidedWindows(tc.guided); !slices.Equal(got, tc.want) {
				t.Errorf("guidedWindows(%s) = %v, want %v", tc.guided, got, tc.want)
			}
		})
	}
}

func TestActivityGuideBuild(t *testing.T) {
	since := time.Date(2026, 10, 16, 0, 0, 0, 0, time.UTC)
	upper := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	lastDay := time.Date(2026, 11, 19, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		g        activityGuide
		wantSQL  string
		wantArgs []any
	}{
		{
			name: "organizations",
			g:    activityGuide{reseller: "r1", orgs: []string{"o1", "o2"}, since: since, upper: upper},
			wantSQL: `SELECT day, sumMerge(jobs_created) AS jobs
FROM usage_org_1d
WHERE reseller_id = ?
  AND org_id IN (SELECT arrayJoin(?))
  AND day >= ?
  AND day <= ?
GROUP BY day
ORDER BY day DESC`,
			wantArgs: []any{"r1", []string{"o1", "o2"}, since, lastDay},
		},
		{
			name: "models and finished statuses",
			g: activityGuide{reseller: "r1", orgs: []string{"o1"}, models: []string{"m"},
				statuses: []string{"completed", "failed", "completed"}, since: since, upper: upper},
			wantSQL: `SELECT day, sumMerge(jobs_completed) + sumMerge(jobs_failed) AS jobs
FROM usage_1d
WHERE reseller_id = ?
  AND org_id IN (SELECT arrayJoin(?))
  AND model IN (SELECT arrayJoin(?))
  AND day >= ?
  AND day <= ?
GROUP BY day
ORDER BY day DESC`,
			wantArgs: []any{"r1", []string{"o1"}, []string{"m"}, since, lastDay},
		},
		{
			name: "the reseller's 15-minute buckets",
			g:    activityGuide{reseller: "r1", statuses: []string{"failed"}, since: since, upper: upper},
			wantSQL: `SELECT bucket, sumMerge(jobs_failed) AS jobs
FROM usage_reseller_15m
WHERE reseller_id = ?
  AND bucket >= ?
  AND bucket <= ?
GROUP BY bucket
ORDER BY bucket DESC`,
			wantArgs: []any{"r1", since, upper.Add(-15 * time.Minute)},
		},
		{
			name: "jobs in progress among the statuses count every created job",
			g:    activityGuide{reseller: "r1", orgs: []string{"o1"}, statuses: []string{"failed", "created", "processing"}, since: since, upper: upper},
			wantSQL: `SELECT day, sumMerge(jobs_created) AS jobs
FROM usage_org_1d
WHERE reseller_id = ?
  AND org_id IN (SELECT arrayJoin(?))
  AND day >= ?
  AND day <= ?
GROUP BY day
ORDER BY day DESC`,
			wantArgs: []any{"r1", []string{"o1"}, since, lastDay},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sql, args := tc.g.build()
			checkBuilt(t, sql, args, tc.wantSQL, tc.wantArgs)
		})
	}
}

// TestLatestJobsGuided checks on a real ClickHouse that a page of an
// organization's activity is the same whichever window the guide picks:
// the newest jobs of an unbounded scan, for every filter, cursor and page
// size, including jobs the guide's day counts place on the wrong day.
func TestLatestJobsGuided(t *testing.T) {
	var f fixtureBuilder
	// busy: 30 jobs on the 19th, 10 on the 18th, 2 on the 1st.
	for i := range 30 {
		at := time.Date(2026, 11, 19, 0, 10+i*40, 0, 0, time.UTC)
		outcome := "completed"
		if i%4 == 0 {
			outcome = "failed"
		}
		f.job("r1", "busy", fmt.Sprintf("b19-%02d", i), "u1", []string{"nova-2", "whisper-large"}[i%2], "en",
			at.Format(time.RFC3339), at.Add(5*time.Minute).Format(time.RFC3339), outcome, 60, 1000)
	}
	for i := range 10 {
		at := time.Date(2026, 11, 18, 8, i*30, 0, 0, time.UTC)
		f.job("r1", "busy", fmt.Sprintf("b18-%02d", i), "u1", "nova-2", "en",
			at.Format(time.RFC3339), at.Add(time.Minute).Format(time.RFC3339), "completed", 60, 1000)
	}
	f.job("r1", "busy", "b01-a", "u1", "nova-2", "en", "2026-11-01T10:00:00Z", "2026-11-01T10:01:00Z", "completed", 60, 1000)
	f.job("r1", "busy", "b01-b", "u1", "nova-2", "en", "2026-11-01T11:00:00Z", "", "", 60, 0)
	// late: created before midnight, finished after it: the guide counts
	// the finished jobs a day later than they were created.
	for i := range 4 {
		at := time.Date(2026, 11, 15+i, 23, 50, 0, 0, time.UTC)
		f.job("r1", "late", fmt.Sprintf("l%d", i), "u2", "nova-2", "de",
			at.Format(time.RFC3339), at.Add(20*time.Minute).Format(time.RFC3339), []string{"completed", "failed"}[i%2], 60, 1000)
	}
	// old: its jobs are older than the guide's span.
	f.job("r1", "old", "o1", "u3", "nova-2", "en", "2026-08-01T10:00:00Z", "2026-08-01T10:05:00Z", "completed", 60, 1000)
	f.job("r1", "old", "o2", "u3", "nova-2", "en", "2026-08-02T10:00:00Z", "2026-08-02T10:05:00Z", "failed", 60, 1000)
	// Another reseller's organization of the same name.
	f.job("r2", "busy", "x1", "u9", "nova-2", "en", "2026-11-19T10:00:00Z", "2026-11-19T10:05:00Z", "completed", 60, 1000)
	ch := project(t, f.events)
	q, err := New(Config{Now: func() time.Time { return fixedNow }}, ch.Conn, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}

	windows := map[string]time.Duration{}
	for _, orgs := range [][]string{{"busy"}, {"late"}, {"old"}, {"busy", "late", "old"}, {"none"}, nil} {
		for _, statuses := range [][]string{nil, {"completed"}, {"failed"}, {"completed", "failed"}, {"created", "processing"}, {"created", "processing", "failed"}} {
			for _, models := range [][]string{nil, {"nova-2"}} {
				for _, limit := range []int{1, 2, 5, 13, 25, 41} {
					aq := activityQuery{reseller: "r1", orgs: orgs, statuses: statuses, models: models, limit: limit}
					name := fmt.Sprintf("orgs %v statuses %v models %v limit %d", orgs, statuses, models, limit)
					want, err := q.scanJobs(t.Context(), aq)
					if err != nil {
						t.Fatalf("%s: unbounded scan: %v", name, err)
					}
					// The page and the one after its cursor.
					for page := 0; page < 2; page++ {
						got, err := q.latestJobs(t.Context(), aq)
						if err != nil {
							t.Fatalf("%s page %d: %v", name, page, err)
						}
						if fmt.Sprint(got) != fmt.Sprint(want) {
							t.Errorf("%s page %d:\n got %v\nwant %v", name, page, got, want)
						}
						if page == 0 && aq.guided() {
							w, err := q.guidedWindow(t.Context(), aq, fixedNow)
							if err != nil {
								t.Fatal(err)
							}
							windows[name] = w
						}
						if len(want) < limit {
							break
						}
						last := want[len(want)-1]
						aq.after = &cursor{CreatedAt: last.CreatedAt, OrgID: last.OrgID, JobID: last.JobID}
						if want, err = q.scanJobs(t.Context(), aq); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
		}
	}
	// The guide must have chosen windows, not only "everything", or the
	// comparisons above prove little.
	const day = 24 * time.Hour
	for name, want := range map[string]time.Duration{
		"orgs [busy] statuses [] models [] limit 5":                 fixedNow.Sub(time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC)),
		"orgs [busy] statuses [] models [] limit 25":                fixedNow.Sub(time.Date(2026, 11, 18, 0, 0, 0, 0, time.UTC)),
		"orgs [busy] statuses [] models [] limit 41":                0,
		"orgs [busy] statuses [failed] models [] limit 5":           fixedNow.Sub(time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC)),
		"orgs [late] statuses [completed] models [] limit 1":        fixedNow.Sub(time.Date(2026, 11, 18, 0, 0, 0, 0, time.UTC)),
		"orgs [busy] statuses [] models [] limit 13":                fixedNow.Sub(time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC)),
		"orgs [old] statuses [] models [] limit 1":                  0,
		"orgs [busy] statuses [] models [nova-2] limit 41":          0,
		"orgs [busy late old] statuses [] models [] limit 25":       fixedNow.Sub(time.Date(2026, 11, 18, 0, 0, 0, 0, time.UTC)),
		"orgs [] statuses [failed] models [] limit 2":               20*time.Hour - 15*time.Minute,
		"orgs [] statuses [completed failed] models [] limit 41":    0,
		"orgs [none] statuses [] models [] limit 1":                 0,
		"orgs [busy] statuses [completed failed] models [] limit 2": 1*day + 12*time.Hour,
	} {
		if got, ok := windows[name]; !ok || got != want {
			t.Errorf("guided window of %s = %s (recorded %t), want %s", name, got, ok, want)
		}
	}
}
