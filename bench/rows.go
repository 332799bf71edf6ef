package bench

import (
	"bytes"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// eventColumns names every column of `events` in the order rowBatch
// appends them (clickhouse-go needs the list on ClickHouse 18.16).
const eventColumns = `id, type, source, time, time_ms, reseller_id, org_id, subject, data,
    stream_seq, projected_at, name, plan, status, created_at, user_id, role, job_id, model, language,
    media_ms, processing_ms, error_code, quota_minutes, amount_minor, currency, period_start, period_end,
    ref_id, severity`

// insertInto returns the INSERT of eventColumns into table, which must be
// a valid identifier.
func insertInto(table string) (string, error) {
	if !validIdent(table) {
		return "", fmt.Errorf("table name %q", table)
	}
	return "INSERT INTO " + table + " (" + eventColumns + ")", nil
}

var dataKey = []byte(`"data":`)

var epoch = time.Unix(0, 0).UTC()

// rowBatch holds rows of `events` column by column, the way the projector
// appends them (one Column(i).Append per column), so the raw ceiling pays
// the same client-side encoding.
type rowBatch struct {
	// strings: id, type, source, reseller_id, org_id, subject, data, name,
	// plan, status, user_id, role, job_id, model, language, error_code,
	// currency, ref_id, severity
	id, typ, source, reseller, org, subject, data, name, plan, status,
	userID, role, jobID, model, language, errorCode, currency, ref, severity []string
	time, projectedAt, createdAt, periodStart, periodEnd []time.Time
	timeMS, streamSeq, mediaMS, procMS, quota            []uint64
	amount                                               []int64
}

func (b *rowBatch) reset() {
	*b = rowBatch{
		id: b.id[:0], typ: b.typ[:0], source: b.source[:0], reseller: b.reseller[:0], org: b.org[:0],
		subject: b.subject[:0], data: b.data[:0], name: b.name[:0], plan: b.plan[:0], status: b.status[:0],
		userID: b.userID[:0], role: b.role[:0], jobID: b.jobID[:0], model: b.model[:0], language: b.language[:0],
		errorCode: b.errorCode[:0], currency: b.currency[:0], ref: b.ref[:0], severity: b.severity[:0],
		time: b.time[:0], projectedAt: b.projectedAt[:0], createdAt: b.createdAt[:0],
		periodStart: b.periodStart[:0], periodEnd: b.periodEnd[:0],
		timeMS: b.timeMS[:0], streamSeq: b.streamSeq[:0], mediaMS: b.mediaMS[:0], procMS: b.procMS[:0],
		quota: b.quota[:0], amount: b.amount[:0],
	}
}

func (b *rowBatch) len() int { return len(b.id) }

// add appends the `events` row of event e with body body, mapped as the
// projector maps it (plan.md, "events column mapping").
func (b *rowBatch) add(e *genEvent, body []byte, seq uint64, projected time.Time) {
	data := ""
	if i := bytes.Index(body, dataKey); i >= 0 {
		data = string(body[i+len(dataKey) : len(body)-1])
	}
	source := "/platform/accounts"
	if e.jobID != "" {
		source = "/platform/jobs"
	}
	b.id = append(b.id, e.id)
	b.typ = append(b.typ, e.typ)
	b.source = append(b.source, source)
	b.time = append(b.time, e.time.Truncate(time.Second))
	b.timeMS = append(b.timeMS, uint64(e.time.UnixMilli()))
	b.reseller = append(b.reseller, e.reseller)
	b.org = append(b.org, e.org)
	b.subject = append(b.subject, "")
	b.data = append(b.data, data)
	b.streamSeq = append(b.streamSeq, seq)
	b.projectedAt = append(b.projectedAt, projected.UTC().Truncate(time.Second))
	b.name = append(b.name, e.name)
	b.plan = append(b.plan, e.plan)
	b.status = append(b.status, e.status)
	b.createdAt = append(b.createdAt, zeroOr(e.createdAt))
	b.userID = append(b.userID, e.userID)
	b.role = append(b.role, e.role)
	b.jobID = append(b.jobID, e.jobID)
	b.model = append(b.model, e.model)
	b.language = append(b.language, e.language)
	b.mediaMS = append(b.mediaMS, e.mediaMS)
	b.procMS = append(b.procMS, e.procMS)
	b.errorCode = append(b.errorCode, e.errorCode)
	b.quota = append(b.quota, e.quota)
	b.amount = append(b.amount, e.amount)
	b.currency = append(b.currency, e.currency)
	b.periodStart = append(b.periodStart, zeroOr(e.periodFrom))
	b.periodEnd = append(b.periodEnd, zeroOr(e.periodTo))
	b.ref = append(b.ref, e.ref)
	b.severity = append(b.severity, "")
}

// appendTo appends every column to a batch prepared with insertInto.
func (b *rowBatch) appendTo(batch driver.Batch) error {
	cols := []any{
		b.id, b.typ, b.source, b.time, b.timeMS, b.reseller, b.org, b.subject, b.data,
		b.streamSeq, b.projectedAt, b.name, b.plan, b.status, b.createdAt, b.userID, b.role, b.jobID, b.model, b.language,
		b.mediaMS, b.procMS, b.errorCode, b.quota, b.amount, b.currency, b.periodStart, b.periodEnd,
		b.ref, b.severity,
	}
	for i, c := range cols {
		if err := batch.Column(i).Append(c); err != nil {
			return fmt.Errorf("append column %d: %w", i, err)
		}
	}
	return nil
}

// zeroOr maps the zero time to the Unix epoch, ClickHouse's zero DateTime.
func zeroOr(t time.Time) time.Time {
	if t.IsZero() {
		return epoch
	}
	return t
}
