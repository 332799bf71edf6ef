package bench

import (
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tallyhq/tally/testenv"
)

// TestDataset generates a tiny dataset and checks its counts, that a second
// run reuses it, and that jobs and usage_15m are exactly what the
// materialized views make of the same jobs' events.
func TestDataset(t *testing.T) {
	ch := testenv.ClickHouse(t)
	cfg := DatasetConfig{Orgs: 60, Resellers: 4, Jobs: 6000, Months: 2, End: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	log := slog.New(slog.DiscardHandler)
	ds, err := PrepareDataset(t.Context(), ch.Config, cfg, log, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Conn.Close()
	if ds.Reused {
		t.Fatal("fresh database reported as reused")
	}

	counts := []struct {
		name, sql string
		want      uint64
	}{
		{"jobs", `SELECT count() FROM jobs FINAL`, uint64(cfg.Jobs)},
		{"organizations", `SELECT count() FROM organizations FINAL`, uint64(cfg.Orgs)},
		{"subscriptions", `SELECT count() FROM subscriptions FINAL`, uint64(cfg.Orgs)},
		{"resellers", `SELECT uniqExact(reseller_id) FROM organizations`, uint64(cfg.Resellers)},
		{"jobs of unknown organizations", `SELECT count() FROM jobs WHERE (reseller_id, org_id) NOT IN (SELECT reseller_id, org_id FROM organizations)`, 0},
		{"jobs outside the span", `SELECT count() FROM jobs WHERE created_at < toDateTime(?) OR created_at >= toDateTime(?)`, 0},
		{"jobs of unknown users", `SELECT count() FROM jobs WHERE (org_id, user_id) NOT IN (SELECT org_id, user_id FROM org_users)`, 0},
	}
	for _, c := range counts {
		t.Run(c.name, func(t *testing.T) {
			var args []any
			if c.name == "jobs outside the span" {
				args = []any{uint32(cfg.Start().Unix()), uint32(cfg.End.Unix())}
			}
			var got uint64
			if err := ds.Conn.QueryRow(t.Context(), c.sql, args...).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("%d, want %d", got, c.want)
			}
		})
	}
	var statuses uint64
	if err := ds.Conn.QueryRow(t.Context(), `SELECT uniqExact(status) FROM jobs`).Scan(&statuses); err != nil || statuses < 2 {
		t.Errorf("job statuses: %d (%v), want completed and failed ones at least", statuses, err)
	}

	again, err := PrepareDataset(t.Context(), ch.Config, cfg, log, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	again.Conn.Close()
	if !again.Reused || again.JobRows != ds.JobRows {
		t.Errorf("second run: reused %v, %d job rows, want reused with %d", again.Reused, again.JobRows, ds.JobRows)
	}

	// The same jobs as events, projected by the materialized views.
	mv := testenv.ClickHouse(t)
	projectJobs(t, ds.Conn, mv.Conn)
	const usageSQL = `SELECT reseller_id, org_id, toUInt32(bucket), model, language, sumMerge(jobs_created), sumMerge(jobs_completed),
    sumMerge(jobs_failed), sumMerge(media_ms), sumMerge(processing_ms), uniqExactMerge(users)
FROM usage_15m GROUP BY reseller_id, org_id, bucket, model, language ORDER BY reseller_id, org_id, bucket, model, language`
	const jobsSQL = `SELECT reseller_id, org_id, job_id, user_id, model, language, status, toUInt32(created_at), toUInt32(updated_at),
    media_ms, processing_ms, error_code, version
FROM jobs FINAL ORDER BY reseller_id, org_id, job_id`
	const openSQL = `SELECT reseller_id, org_id, job_id, toUInt32(created_at), model, sum(open) AS s
FROM jobs_open GROUP BY reseller_id, org_id, job_id, created_at, model HAVING s != 0 ORDER BY reseller_id, org_id, job_id`
	const userMonthsSQL = `SELECT reseller_id, toUInt32(month), org_id, user_id, toUInt32(minMerge(first_at)), toUInt32(maxMerge(last_at))
FROM org_user_months GROUP BY reseller_id, month, org_id, user_id ORDER BY reseller_id, month, org_id, user_id`
	const userDaysSQL = `SELECT reseller_id, toUInt32(day), org_id, user_id, model, language, toUInt32(minMerge(first_at)), toUInt32(maxMerge(last_at))
FROM org_user_days GROUP BY reseller_id, day, org_id, user_id, model, language ORDER BY reseller_id, day, org_id, user_id, model, language`
	for name, sql := range map[string]string{"usage_15m": usageSQL, "jobs": jobsSQL, "org_user_months": userMonthsSQL,
		"org_user_days": userDaysSQL,
		"usage_1d":      strings.NewReplacer("FROM usage_15m", "FROM usage_1d", "bucket", "day").Replace(usageSQL),
		"jobs_by_org":   strings.Replace(jobsSQL, "FROM jobs FINAL", "FROM jobs_by_org FINAL", 1), "jobs_open": openSQL} {
		got, want := testenv.Rows(t, ds.Conn, sql), testenv.Rows(t, mv.Conn, sql)
		if len(want) == 0 && name != "jobs_open" {
			t.Fatalf("%s: views produced nothing", name)
		}
		if !reflect.DeepEqual(got, want) {
			n := 0
			for i := range min(len(got), len(want)) {
				if got[i] != want[i] && n < 5 {
					n++
					t.Errorf("%s row %d: generated %s, views %s", name, i, got[i], want[i])
				}
			}
			t.Errorf("%s: %d generated rows, %d from the views", name, len(got), len(want))
		}
	}
}

// projectJobs writes each job of src as the job events that lead to its
// state into dst's events table.
func projectJobs(t *testing.T, src, dst driver.Conn) {
	t.Helper()
	rows, err := src.Query(t.Context(), `SELECT reseller_id, org_id, job_id, user_id, model, language, status, created_at, updated_at,
    media_ms, processing_ms, error_code FROM jobs FINAL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	b, err := dst.PrepareBatch(t.Context(), `INSERT INTO events (id, type, source, time, time_ms, reseller_id, org_id, data, job_id, user_id,
    model, language, created_at, media_ms, processing_ms, error_code)`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var (
			reseller, org, job, user, model, lang, status, code string
			created, updated                                    time.Time
			media, proc                                         uint64
		)
		if err := rows.Scan(&reseller, &org, &job, &user, &model, &lang, &status, &created, &updated, &media, &proc, &code); err != nil {
			t.Fatal(err)
		}
		add := func(typ string, at time.Time, proc uint64, code string) {
			if err := b.Append(job+"/"+typ, typ, "test", at, uint64(at.UnixMilli()), reseller, org, "{}", job, user, model, lang,
				created, media, proc, code); err != nil {
				t.Fatal(err)
			}
		}
		add("job.created", created, 0, "")
		switch status {
		case "processing":
			add("job.started", updated, 0, "")
		case "completed", "failed":
			add("job."+status, updated, proc, code)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}
