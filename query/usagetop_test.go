package query

import (
	"encoding/json"
	"testing"
)

func TestRankFirst(t *testing.T) {
	many := rankFirstOrgs + 1
	cases := []struct {
		name    string
		groupBy []string
		top     int
		orgs    int
		filter  int // organizations in ?org
		want    bool
	}{
		{"organization with top", []string{"organization"}, 10, many, 0, true},
		{"organization second with top", []string{"model", "organization"}, 5, many, 0, true},
		{"few organizations", []string{"organization"}, 10, rankFirstOrgs, 0, false},
		{"filtered to few organizations", []string{"organization"}, 10, many, 20, false},
		{"filtered to many organizations", []string{"organization"}, 10, many, many, true},
		{"organization without top", []string{"organization"}, 0, many, 0, false},
		{"model with top", []string{"model", "language"}, 3, many, 0, false},
		{"no group-by", nil, 3, many, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := usageParams{groupBy: tc.groupBy, top: tc.top, orgs: make([]string, tc.filter)}
			if got := rankFirst(p, tc.orgs); got != tc.want {
				t.Errorf("rankFirst = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAggMinus(t *testing.T) {
	cases := []struct {
		name    string
		a, b    agg
		want    agg
		comment string
	}{
		{"difference", agg{mediaMS: 500, completed: 5, failed: 2, processingMS: 90, users: 7}, agg{mediaMS: 200, completed: 3, failed: 2, processingMS: 40, users: 3},
			agg{mediaMS: 300, completed: 2, processingMS: 50, usersUnknown: true}, ""},
		{"clamped at zero", agg{mediaMS: 100, completed: 1}, agg{mediaMS: 150, completed: 2, failed: 1},
			agg{usersUnknown: true}, "a query that saw fewer inserts"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.minus(tc.b); got != tc.want {
				t.Errorf("%+v minus %+v = %+v, want %+v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

// testUsageTop: ranking first (usageTop, which the fixture's few
// organizations do not trigger through the API) answers what reading
// every group's series and keeping the first top does, in every zone,
// granularity and group-by with organization; only others' distinct
// users, which the full read knows to be 0 in periods where no other
// group has a row, are null.
func testUsageTop(t *testing.T, env *apiEnv) {
	cases := []struct {
		name, tz, granularity, from, to string
		groupBy                         []string
		top                             int
		models                          []string
	}{
		{"month by organization top 1", "UTC", "month", "2026-09-01", "2026-12-01", []string{"organization"}, 1, nil},
		{"month by organization top 2 Kolkata", "Asia/Kolkata", "month", "2026-09-01", "2026-12-01", []string{"organization"}, 2, nil},
		{"month by organization top 1 New York", "America/New_York", "month", "2025-11-01", "2026-12-01", []string{"organization"}, 1, nil},
		{"day by organization top 1 Chatham", "Pacific/Chatham", "day", "2026-11-15", "2026-11-21", []string{"organization"}, 1, nil},
		{"week by organization and model top 2", "Europe/Amsterdam", "week", "2026-10-26", "2026-11-23", []string{"organization", "model"}, 2, nil},
		{"day by model and organization top 1 New York DST", "America/New_York", "day", "2026-10-30", "2026-11-03", []string{"model", "organization"}, 1, nil},
		{"hour by organization and language top 1 Kathmandu", "Asia/Kathmandu", "hour", "2026-11-19T12:00:00Z", "2026-11-20T12:00:00Z", []string{"organization", "language"}, 1, nil},
		{"day by organization top 1 filtered", "UTC", "day", "2026-11-01", "2026-11-21", []string{"organization"}, 1, []string{"nova-2", "whisper-large"}},
		{"more groups kept than exist", "UTC", "month", "2026-09-01", "2026-12-01", []string{"organization"}, 10, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			loc, err := loadZone(tc.tz)
			if err != nil {
				t.Fatal(err)
			}
			s := scope{reseller: "r1", loc: loc, tz: tc.tz}
			from, err := parseTime(tc.from, loc)
			if err != nil {
				t.Fatal(err)
			}
			to, err := parseTime(tc.to, loc)
			if err != nil {
				t.Fatal(err)
			}
			p := usageParams{
				metrics: usageMetrics, groupBy: tc.groupBy, granularity: tc.granularity, top: tc.top, models: tc.models,
				from: floorPeriod(from, tc.granularity, loc), to: floorPeriod(to, tc.granularity, loc),
			}
			gd, err := env.q.usageTop(t.Context(), s, p)
			if err != nil {
				t.Fatal(err)
			}
			got := renderUsage(s, p, gd)
			d, err := env.q.usageData(t.Context(), s, p)
			if err != nil {
				t.Fatal(err)
			}
			want := renderUsage(s, p, d)
			if len(want.Series) == 0 || (tc.top < 10 && !want.Series[len(want.Series)-1].Others) {
				t.Fatalf("fixture gives this case no others series: %d series", len(want.Series))
			}
			for _, r := range []*usageResponse{&got, &want} {
				for i := range r.Series {
					if r.Series[i].Others {
						r.Series[i].Totals["distinct_users"] = nil
						for _, pt := range r.Series[i].Points {
							pt["distinct_users"] = nil
						}
					}
				}
			}
			gj, _ := json.MarshalIndent(got, "", "  ")
			wj, _ := json.MarshalIndent(want, "", "  ")
			if string(gj) != string(wj) {
				t.Errorf("ranked first:\n%s\nall groups read:\n%s", gj, wj)
			}
		})
	}
}
