package query

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gofiber/fiber/v2"
)

const (
	// invoicesSQL sums each organization's invoices in a time range.
	invoicesSQL = `SELECT org_id, currency,
    countIf(type = 'invoice.paid') AS paid,
    sumIf(amount_minor, type = 'invoice.paid') AS paid_minor,
    countIf(type = 'invoice.payment_failed') AS failed,
    sumIf(amount_minor, type = 'invoice.payment_failed') AS failed_minor
FROM events
WHERE reseller_id = ? AND type IN ('invoice.paid', 'invoice.payment_failed') AND time >= ? AND time < ?
GROUP BY org_id, currency
ORDER BY org_id, currency`
)

// activityReportQuery builds the query of activity.csv: jobs created in
// [from, to), oldest first.
func activityReportQuery(reseller string, from, to time.Time, orgs, statuses, models []string, limit int) (string, []any) {
	var b sqlBuilder
	b.where("reseller_id = ?", reseller)
	b.where("created_at >= ?", from)
	b.where("created_at < ?", to)
	b.in("org_id", orgs)
	b.in("status", statuses)
	b.in("model", models)
	b.args = append(b.args, limit)
	return `SELECT org_id, job_id, user_id, model, language, status, created_at, updated_at, media_ms, processing_ms, error_code
FROM jobs FINAL
WHERE ` + b.clause() + `
ORDER BY created_at, org_id, job_id
LIMIT ?`, b.args
}

// maxReportRows bounds activity.csv.
const maxReportRows = 1_000_000

// csvAttachment sets the headers of a CSV download named
// <report>_<reseller>_<from>_<to>.csv (dates local to tz, to inclusive).
func csvAttachment(c *fiber.Ctx, report, reseller string, from, to time.Time) {
	last := to.Add(-time.Second)
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="%s_%s_%s_%s.csv"`,
		report, reseller, from.Format(time.DateOnly), last.Format(time.DateOnly)))
}

// reportRange parses from/to of a report: default this month so far;
// dates are local midnights in tz.
func (q *Query) reportRange(c *fiber.Ctx, s scope) (time.Time, time.Time, error) {
	now := q.now()
	from := startOfMonth(now, s.loc)
	to := nextPeriod(floorPeriod(now, "day", s.loc), "day", s.loc)
	var err error
	if raw := c.Query("from"); raw != "" {
		if from, err = parseTime(raw, s.loc); err != nil {
			return from, to, badParam("from", "from %q: want RFC 3339 or a date (YYYY-MM-DD)", raw)
		}
	}
	if raw := c.Query("to"); raw != "" {
		if to, err = parseTime(raw, s.loc); err != nil {
			return from, to, badParam("to", "to %q: want RFC 3339 or a date (YYYY-MM-DD)", raw)
		}
	}
	if !from.Before(to) {
		return from, to, badParam("from", "from must be before to")
	}
	return from.In(s.loc), to.In(s.loc), nil
}

// usageReport is /v1/usage as CSV: one row per group and period, every metric.
func (q *Query) usageReport(c *fiber.Ctx) error {
	s := scopeOf(c)
	p, err := q.parseUsage(c, s)
	if err != nil {
		return err
	}
	p.metrics = usageMetrics
	resp, err := q.runUsage(c.UserContext(), s, p)
	if err != nil {
		return err
	}
	csvAttachment(c, "usage", s.reseller, p.from.In(s.loc), p.to.In(s.loc))
	w := csv.NewWriter(c.Response().BodyWriter())
	header := append([]string{"period_start"}, p.groupBy...)
	header = append(header, usageMetrics...)
	if err := w.Write(header); err != nil {
		return err
	}
	for _, se := range resp.Series {
		for _, pt := range se.Points {
			rec := []string{pt["period"].(time.Time).Format(time.RFC3339)}
			for _, d := range p.groupBy {
				rec = append(rec, se.Group[d])
			}
			for _, m := range usageMetrics {
				rec = append(rec, csvValue(pt[m]))
			}
			if err := w.Write(rec); err != nil {
				return err
			}
		}
	}
	w.Flush()
	return w.Error()
}

func csvValue(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case uint64:
		return strconv.FormatUint(v, 10)
	}
	return fmt.Sprint(v)
}

// financialReport: one row per organization (and invoice currency) with
// its subscription and the invoices of the range. Needs revenue access.
func (q *Query) financialReport(c *fiber.Ctx) error {
	s := scopeOf(c)
	if !s.revenue {
		return errNoRevenue
	}
	from, to, err := q.reportRange(c, s)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	orgs, err := q.orgSummaries(ctx, s.reseller, from, to)
	if err != nil {
		return err
	}
	subs, err := q.subscriptions(ctx, subsSQL, s.reseller)
	if err != nil {
		return err
	}
	type inv struct {
		currency                string
		paid, paidMinor, failed uint64
		failedMinor             int64
	}
	invoices := map[string][]inv{}
	rows, err := q.conn.Query(ctx, invoicesSQL, s.reseller, from.UTC(), to.UTC())
	if err != nil {
		return fmt.Errorf("invoices: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var org string
		var i inv
		var paidMinor int64
		if err := rows.Scan(&org, &i.currency, &i.paid, &paidMinor, &i.failed, &i.failedMinor); err != nil {
			return fmt.Errorf("invoices: %w", err)
		}
		i.paidMinor = uint64(max(paidMinor, 0))
		invoices[org] = append(invoices[org], i)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("invoices: %w", err)
	}
	csvAttachment(c, "financial", s.reseller, from, to)
	w := csv.NewWriter(c.Response().BodyWriter())
	_ = w.Write([]string{"org_id", "org_name", "org_status", "plan", "subscription_status", "mrr_minor", "subscription_currency",
		"quota_minutes", "period_start", "period_end", "usage_minutes", "invoice_currency", "invoices_paid", "paid_minor",
		"payments_failed", "failed_minor"})
	for _, o := range orgs {
		sub := subs[o.ID]
		base := []string{o.ID, o.Name, o.Status, sub.Plan, sub.Status, strconv.FormatInt(sub.PriceMinor, 10), sub.Currency,
			strconv.FormatUint(sub.QuotaMinutes, 10), csvTime(sub.PeriodStart), csvTime(sub.PeriodEnd), csvValue(o.UsageMinutes)}
		invs := invoices[o.ID]
		if len(invs) == 0 {
			invs = []inv{{}}
		}
		for _, i := range invs {
			rec := append(append([]string{}, base...), i.currency, strconv.FormatUint(i.paid, 10), strconv.FormatUint(i.paidMinor, 10),
				strconv.FormatUint(i.failed, 10), strconv.FormatInt(i.failedMinor, 10))
			if err := w.Write(rec); err != nil {
				return err
			}
		}
	}
	w.Flush()
	return w.Error()
}

func csvTime(t time.Time) string {
	if t.IsZero() || t.Unix() <= 0 {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// activityReport: the jobs created in the range, oldest first, written to
// the response as ClickHouse returns them.
func (q *Query) activityReport(c *fiber.Ctx) error {
	s := scopeOf(c)
	from, to, err := q.reportRange(c, s)
	if err != nil {
		return err
	}
	orgs, models := listParam(c, "org"), listParam(c, "model")
	var statuses []string
	for _, st := range listParam(c, "status") {
		stored, ok := activityStatuses[st]
		if !ok {
			return badParam("status", "unknown status %q: want in_progress, completed or failed", st)
		}
		statuses = append(statuses, stored...)
	}
	sql, args := activityReportQuery(s.reseller, from.UTC(), to.UTC(), orgs, statuses, models, maxReportRows)
	// The rows outlive the handler: they are read while the body streams,
	// after the request's own context (and its timeout) has ended.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.UserContext()), q.cfg.RequestTimeout)
	rows, err := q.conn.Query(ctx, sql, args...)
	if err != nil {
		cancel()
		return fmt.Errorf("activity report: %w", err)
	}
	csvAttachment(c, "activity", s.reseller, from, to)
	loc := s.loc
	c.Context().SetBodyStreamWriter(func(bw *bufio.Writer) {
		defer cancel()
		defer rows.Close()
		if err := writeActivityCSV(bw, rows, loc); err != nil {
			// The status line is gone; the client sees a truncated file.
			q.log.Warn("activity report: stream ended early", "reseller", s.reseller, "err", err)
		}
	})
	return nil
}

// streamFlushRows is how many CSV rows go out per chunk of a streamed report.
const streamFlushRows = 2000

// writeActivityCSV writes the activity report's rows as CSV to bw, flushing
// a chunk to the client every streamFlushRows rows.
func writeActivityCSV(bw *bufio.Writer, rows driver.Rows, loc *time.Location) error {
	w := csv.NewWriter(bw)
	if err := w.Write([]string{"created_at", "org_id", "job_id", "user_id", "status", "model", "language", "media_duration_seconds",
		"processing_ms", "error_code", "updated_at"}); err != nil {
		return err
	}
	for n := 1; rows.Next(); n++ {
		var (
			org, job, user, model, lang, status, code string
			created, updated                          time.Time
			media, proc                               uint64
		)
		if err := rows.Scan(&org, &job, &user, &model, &lang, &status, &created, &updated, &media, &proc, &code); err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		if err := w.Write([]string{created.In(loc).Format(time.RFC3339), org, job, user, apiStatus(status), model, lang,
			strconv.FormatFloat(float64(media)/1000, 'f', -1, 64), strconv.FormatUint(proc, 10), code, updated.In(loc).Format(time.RFC3339)}); err != nil {
			return err
		}
		if n%streamFlushRows == 0 {
			w.Flush()
			if err := errors.Join(w.Error(), bw.Flush()); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	w.Flush()
	return errors.Join(w.Error(), bw.Flush())
}
