package query

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Activity statuses as the API names them; "in_progress" is a created or
// started job.
var activityStatuses = map[string][]string{
	"in_progress": {"created", "processing"},
	"completed":   {"completed"},
	"failed":      {"failed"},
}

func apiStatus(stored string) string {
	if stored == "created" || stored == "processing" {
		return "in_progress"
	}
	return stored
}

// cursor is the keyset position after the last job of a page.
type cursor struct {
	CreatedAt time.Time
	OrgID     string
	JobID     string
}

func (c cursor) encode() string {
	raw := strconv.FormatInt(c.CreatedAt.Unix(), 10) + "\x00" + c.OrgID + "\x00" + c.JobID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeCursor(s string) (*cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(string(raw), "\x00")
	if len(parts) != 3 {
		return nil, errors.New("malformed cursor")
	}
	sec, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return nil, err
	}
	return &cursor{CreatedAt: time.Unix(sec, 0).UTC(), OrgID: parts[1], JobID: parts[2]}, nil
}

type activityJob struct {
	OrgID        string    `json:"org_id"`
	OrgName      string    `json:"org_name"`
	JobID        string    `json:"job_id"`
	UserID       string    `json:"user_id"`
	Status       string    `json:"status"`
	Model        string    `json:"model"`
	Language     string    `json:"language"`
	MediaSeconds float64   `json:"media_duration_seconds"`
	ProcessingMS uint64    `json:"processing_ms"`
	ErrorCode    string    `json:"error_code,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
}

type activityResponse struct {
	Jobs       []activityJob `json:"jobs"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

func (q *Query) activity(c *fiber.Ctx) error {
	s := scopeOf(c)
	ctx := c.UserContext()
	limit, err := intParam(c, "limit", 50, 1, 500)
	if err != nil {
		return err
	}
	aq := activityQuery{reseller: s.reseller, orgs: listParam(c, "org"), models: listParam(c, "model"), limit: limit + 1}
	for _, st := range listParam(c, "status") {
		stored, ok := activityStatuses[st]
		if !ok {
			return badParam("status", "unknown status %q: want in_progress, completed or failed", st)
		}
		aq.statuses = append(aq.statuses, stored...)
	}
	if raw := c.Query("cursor"); raw != "" {
		if aq.after, err = decodeCursor(raw); err != nil {
			return badParam("cursor", "invalid cursor: pass next_cursor from the previous page")
		}
	}
	jobs, err := q.latestJobs(ctx, aq)
	if err != nil {
		return fmt.Errorf("activity: %w", err)
	}
	resp := activityResponse{Jobs: []activityJob{}}
	var orgIDs []string
	seen := map[string]bool{}
	for _, j := range jobs {
		j.Status = apiStatus(j.Status)
		j.CreatedAt = j.CreatedAt.In(s.loc)
		resp.Jobs = append(resp.Jobs, j)
		if !seen[j.OrgID] {
			seen[j.OrgID] = true
			orgIDs = append(orgIDs, j.OrgID)
		}
	}
	if len(resp.Jobs) > limit {
		resp.Jobs = resp.Jobs[:limit]
		last := resp.Jobs[limit-1]
		resp.NextCursor = cursor{CreatedAt: last.CreatedAt.UTC(), OrgID: last.OrgID, JobID: last.JobID}.encode()
	}
	names, err := q.orgNames(c.UserContext(), s.reseller, orgIDs)
	if err != nil {
		return err
	}
	for i := range resp.Jobs {
		resp.Jobs[i].OrgName = names[resp.Jobs[i].OrgID]
	}
	return c.JSON(resp)
}

// activityWindows: how far back from the cursor (or now) each attempt
// reads jobs; the first attempt that fills the page answers (every job
// outside its window is older than the page), the last reads everything.
var activityWindows = []time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 35 * 24 * time.Hour, 0}

// latestJobs is the page of jobs aq asks for, newest first, with stored
// statuses.
func (q *Query) latestJobs(ctx context.Context, aq activityQuery) ([]activityJob, error) {
	if len(aq.statuses) > 0 && !slices.ContainsFunc(aq.statuses, func(s string) bool { return slices.Contains(terminalStatuses, s) }) {
		jobs, ok, err := q.openLatestJobs(ctx, aq)
		if err != nil || ok {
			return jobs, err
		}
	}
	upper := q.now()
	if aq.after != nil {
		upper = aq.after.CreatedAt
	}
	windows := activityWindows
	if aq.guided() {
		w, err := q.guidedWindow(ctx, aq, upper)
		if err != nil {
			return nil, err
		}
		windows = guidedWindows(w)
	}
	for _, w := range windows {
		wq := aq
		if w > 0 {
			wq.since = upper.Add(-w)
		}
		jobs, err := q.scanJobs(ctx, wq)
		if err != nil || w == 0 || len(jobs) >= aq.limit {
			return jobs, err
		}
	}
	return nil, nil
}

// activityGuideSpan is how far back guidedWindow counts; when it holds
// fewer jobs than a page, everything is scanned.
const activityGuideSpan = 35 * 24 * time.Hour

// guidedWindow is how far back from upper the whole days (or buckets) of
// activityGuide hold a page of aq's jobs and a quarter more; 0 (everything)
// when its span holds fewer. Most benchmark organizations have fewer than a
// page of jobs a week, and most resellers fewer than a page of failed jobs
// an hour: widening the windows took them two to four scans, one after
// the other.
func (q *Query) guidedWindow(ctx context.Context, aq activityQuery, upper time.Time) (time.Duration, error) {
	g := activityGuide{reseller: aq.reseller, orgs: aq.orgs, models: aq.models, statuses: aq.statuses,
		upper: upper}
	g.since = upper.Add(-activityGuideSpan).Truncate(g.width())
	sql, args := g.build()
	rows, err := q.conn.Query(ctx, sql, args...)
	if err != nil {
		return 0, fmt.Errorf("activity guide: %w", err)
	}
	defer rows.Close()
	need := uint64(aq.limit + aq.limit/4)
	var n uint64
	for rows.Next() {
		var start time.Time
		var jobs uint64
		if err := rows.Scan(&start, &jobs); err != nil {
			return 0, fmt.Errorf("activity guide: %w", err)
		}
		if n += jobs; n >= need {
			return upper.Sub(start), nil
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("activity guide: %w", err)
	}
	return 0, nil
}

// guidedWindows are the windows tried after a guided one: it, the wider
// of activityWindows, and everything.
func guidedWindows(guided time.Duration) []time.Duration {
	if guided == 0 {
		return []time.Duration{0}
	}
	out := []time.Duration{guided}
	for _, w := range activityWindows {
		if w == 0 || w > guided {
			out = append(out, w)
		}
	}
	return out
}

// openLatestJobs answers an in-progress filter from jobs_open: the
// candidates' latest states are read by organization and job id. ok is
// false when a candidate turns out finished (the generic path answers).
func (q *Query) openLatestJobs(ctx context.Context, aq activityQuery) ([]activityJob, bool, error) {
	sql, args := aq.openJobs()
	rows, err := q.conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	type key struct{ org, job string }
	want := map[key]bool{}
	dq := activityQuery{reseller: aq.reseller, statuses: aq.statuses, models: aq.models, after: aq.after, limit: 2 * aq.limit}
	orgs := map[string]bool{}
	for rows.Next() {
		var k key
		var created time.Time
		if err := rows.Scan(&k.org, &k.job, &created); err != nil {
			return nil, false, err
		}
		want[k] = true
		if !orgs[k.org] {
			orgs[k.org] = true
			dq.orgs = append(dq.orgs, k.org)
		}
		dq.jobIDs = append(dq.jobIDs, k.job)
		if dq.since.IsZero() || created.Before(dq.since) {
			dq.since = created
		}
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	if len(want) == 0 {
		return nil, true, nil
	}
	all, err := q.scanJobs(ctx, dq)
	if err != nil {
		return nil, false, err
	}
	var jobs []activityJob
	for _, j := range all {
		if want[key{j.OrgID, j.JobID}] {
			jobs = append(jobs, j)
		}
	}
	return jobs, len(jobs) == len(want), nil
}

func (q *Query) scanJobs(ctx context.Context, aq activityQuery) ([]activityJob, error) {
	sql, args := aq.build()
	rows, err := q.conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []activityJob
	for rows.Next() {
		var j activityJob
		var media uint64
		if err := rows.Scan(&j.OrgID, &j.JobID, &j.UserID, &j.Model, &j.Language, &j.Status, &j.CreatedAt, &media, &j.ProcessingMS, &j.ErrorCode); err != nil {
			return nil, err
		}
		j.MediaSeconds = float64(media) / 1000
		out = append(out, j)
	}
	return out, rows.Err()
}

func (q *Query) orgNames(ctx context.Context, reseller string, ids []string) (map[string]string, error) {
	names := map[string]string{}
	if len(ids) == 0 {
		return names, nil
	}
	rows, err := q.conn.Query(ctx, orgNamesSQL, reseller, ids)
	if err != nil {
		return nil, fmt.Errorf("organization names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("organization names: %w", err)
		}
		names[id] = name
	}
	return names, rows.Err()
}
