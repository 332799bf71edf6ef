package projector

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tallyhq/tally/schemas"
)

// row is one row of the events table. Columns that do not apply to an
// event's type keep their zero value. DateTime columns hold Unix seconds
// (no pointers for the garbage collector to follow, a third of a
// time.Time's size).
type row struct {
	ID          string
	Type        string
	Source      string
	Time        int64
	TimeMS      uint64
	ResellerID  string
	OrgID       string
	Subject     string
	Data        []byte // the event's data JSON
	StreamSeq   uint64
	ProjectedAt int64

	Name         string
	Plan         string
	Status       string
	CreatedAt    int64
	UserID       string
	Role         string
	JobID        string
	Model        string
	Language     string
	MediaMS      uint64
	ProcessingMS uint64
	ErrorCode    string
	QuotaMinutes uint64
	AmountMinor  int64
	Currency     string
	PeriodStart  int64
	PeriodEnd    int64
	RefID        string
	Severity     string
}

// maxDateTime is the last second a ClickHouse DateTime (UInt32) can hold.
const maxDateTime = math.MaxUint32

// mapError says why a valid event cannot become a row of the events table.
type mapError struct {
	Field  string
	Reason string
}

func (e *mapError) Error() string { return e.Field + ": " + e.Reason }

// mapEvent turns a validated event into its events row. It fails with a
// *mapError (naming the field) when a value does not fit its column, e.g. a
// time outside the DateTime range.
func mapEvent(e *schemas.Event, streamSeq uint64, projectedAt time.Time) (row, error) {
	r := row{
		ID:          e.ID,
		Type:        e.Type,
		Source:      e.Source,
		ResellerID:  e.ResellerID,
		OrgID:       e.OrgID,
		Subject:     e.Subject,
		Data:        e.Data,
		StreamSeq:   streamSeq,
		ProjectedAt: projectedAt.Unix(),
	}
	var err error
	if r.Time, err = dateTime("time", e.Time); err != nil {
		return row{}, err
	}
	r.TimeMS = uint64(e.Time.UnixMilli())

	switch e.Type {
	case schemas.TypeOrganizationCreated, schemas.TypeOrganizationUpdated:
		d, err := e.OrganizationData()
		if err != nil {
			return row{}, dataError(err)
		}
		r.Name, r.Plan, r.Status = d.Name, d.Plan, d.Status
		if r.CreatedAt, err = dateTime("data.created_at", d.CreatedAt); err != nil {
			return row{}, err
		}
	case schemas.TypeSubscriptionChanged:
		d, err := e.SubscriptionData()
		if err != nil {
			return row{}, dataError(err)
		}
		r.Plan, r.Status, r.Currency = d.Plan, d.Status, d.Currency
		r.AmountMinor = d.PriceMinor
		if r.QuotaMinutes, err = unsigned("data.quota_minutes", d.QuotaMinutes); err != nil {
			return row{}, err
		}
		if r.PeriodStart, err = dateTime("data.period_start", d.PeriodStart); err != nil {
			return row{}, err
		}
		if r.PeriodEnd, err = dateTime("data.period_end", d.PeriodEnd); err != nil {
			return row{}, err
		}
	case schemas.TypeInvoicePaid, schemas.TypeInvoicePaymentFailed:
		d, err := e.InvoiceData()
		if err != nil {
			return row{}, dataError(err)
		}
		r.RefID, r.AmountMinor, r.Currency, r.ErrorCode = d.InvoiceID, d.AmountMinor, d.Currency, d.FailureReason
	case schemas.TypeUserAdded, schemas.TypeUserRemoved:
		d, err := e.UserData()
		if err != nil {
			return row{}, dataError(err)
		}
		r.UserID, r.Role = d.UserID, d.Role
	case schemas.TypeJobCreated, schemas.TypeJobStarted, schemas.TypeJobCompleted, schemas.TypeJobFailed:
		d, err := e.JobData()
		if err != nil {
			return row{}, dataError(err)
		}
		r.JobID, r.UserID, r.Model, r.Language, r.ErrorCode = d.JobID, d.UserID, d.Model, d.Language, d.ErrorCode
		if r.CreatedAt, err = dateTime("data.created_at", d.CreatedAt); err != nil {
			return row{}, err
		}
		if r.MediaMS, err = millis("data.media_duration_seconds", d.MediaDurationSeconds); err != nil {
			return row{}, err
		}
		if r.ProcessingMS, err = unsigned("data.processing_ms", d.ProcessingMS); err != nil {
			return row{}, err
		}
	case schemas.TypeCustomModelCreated, schemas.TypeCustomModelUpdated:
		d, err := e.CustomModelData()
		if err != nil {
			return row{}, dataError(err)
		}
		r.RefID, r.Name, r.Model, r.Language = d.ModelID, d.Name, d.BaseModel, d.Language
		if d.Shared {
			r.Status = "shared"
		}
	case schemas.TypeSystemNotice:
		d, err := e.SystemNoticeData()
		if err != nil {
			return row{}, dataError(err)
		}
		r.RefID, r.Name, r.Severity = d.NoticeID, d.Title, d.Severity
	default:
		return row{}, &mapError{Field: "type", Reason: fmt.Sprintf("no projection for type %q", e.Type)}
	}
	r.compact()
	return r, nil
}

// compact copies the row's strings into one allocation. They were
// substrings of the decoded message and of its data, which a batch would
// otherwise keep alive until it is acked.
func (r *row) compact() {
	fields := [...]*string{&r.ID, &r.Type, &r.Source, &r.ResellerID, &r.OrgID, &r.Subject, &r.Name, &r.Plan, &r.Status,
		&r.UserID, &r.Role, &r.JobID, &r.Model, &r.Language, &r.ErrorCode, &r.Currency, &r.RefID, &r.Severity}
	n := 0
	for _, f := range fields {
		n += len(*f)
	}
	var b strings.Builder
	b.Grow(n)
	for _, f := range fields {
		b.WriteString(*f)
	}
	all, off := b.String(), 0
	for _, f := range fields {
		*f = all[off : off+len(*f)]
		off += len(*f)
	}
}

// dataError names the first field the typed data accessor complained about.
func dataError(err error) error {
	field := "data"
	var ve *schemas.ValidationError
	if errors.As(err, &ve) && len(ve.Problems) > 0 && ve.Problems[0].Field != "" {
		field = ve.Problems[0].Field
	}
	return &mapError{Field: field, Reason: err.Error()}
}

// dateTime converts t to Unix seconds for a DateTime column; the zero time
// becomes 0 (the epoch).
func dateTime(field string, t time.Time) (int64, error) {
	if t.IsZero() {
		return 0, nil
	}
	if s := t.Unix(); s >= 0 && s <= maxDateTime {
		return s, nil
	}
	return 0, &mapError{Field: field, Reason: fmt.Sprintf("%s is outside the DateTime range 1970-01-01..2106-02-07", t.UTC().Format(time.RFC3339))}
}

func unsigned(field string, v int64) (uint64, error) {
	if v < 0 {
		return 0, &mapError{Field: field, Reason: fmt.Sprintf("must be >= 0, got %d", v)}
	}
	return uint64(v), nil
}

// millis converts seconds to whole milliseconds, rounding half away from zero.
func millis(field string, seconds float64) (uint64, error) {
	ms := math.Round(seconds * 1000)
	if math.IsNaN(ms) || ms < 0 || ms >= math.MaxInt64 {
		return 0, &mapError{Field: field, Reason: fmt.Sprintf("%v seconds does not fit in milliseconds", seconds)}
	}
	return uint64(ms), nil
}

// column is one column of the projector's INSERT: its name and how to
// append the batch's values to it.
type column struct {
	name     string
	dateTime bool // values are Unix seconds ([]int64) for a DateTime column
	values   func(rs []row, buf *colBuffers) any
}

// colBuffers holds one reusable slice per Go type, filled per column.
type colBuffers struct {
	bytes [][]byte
	strs  []string
	u64   []uint64
	i64   []int64
}

func strCol(name string, f func(*row) string) column {
	return column{name, false, func(rs []row, b *colBuffers) any {
		b.strs = b.strs[:0]
		for i := range rs {
			b.strs = append(b.strs, f(&rs[i]))
		}
		return b.strs
	}}
}

func bytesCol(name string, f func(*row) []byte) column {
	return column{name, false, func(rs []row, b *colBuffers) any {
		b.bytes = b.bytes[:0]
		for i := range rs {
			b.bytes = append(b.bytes, f(&rs[i]))
		}
		return b.bytes
	}}
}

// dateTimeCol appends Unix seconds to a DateTime column.
func dateTimeCol(name string, f func(*row) int64) column {
	c := i64Col(name, f)
	c.dateTime = true
	return c
}

func u64Col(name string, f func(*row) uint64) column {
	return column{name, false, func(rs []row, b *colBuffers) any {
		b.u64 = b.u64[:0]
		for i := range rs {
			b.u64 = append(b.u64, f(&rs[i]))
		}
		return b.u64
	}}
}

func i64Col(name string, f func(*row) int64) column {
	return column{name, false, func(rs []row, b *colBuffers) any {
		b.i64 = b.i64[:0]
		for i := range rs {
			b.i64 = append(b.i64, f(&rs[i]))
		}
		return b.i64
	}}
}

// eventColumns lists every column the projector writes, in INSERT order.
var eventColumns = []column{
	strCol("id", func(r *row) string { return r.ID }),
	strCol("type", func(r *row) string { return r.Type }),
	strCol("source", func(r *row) string { return r.Source }),
	dateTimeCol("time", func(r *row) int64 { return r.Time }),
	u64Col("time_ms", func(r *row) uint64 { return r.TimeMS }),
	strCol("reseller_id", func(r *row) string { return r.ResellerID }),
	strCol("org_id", func(r *row) string { return r.OrgID }),
	strCol("subject", func(r *row) string { return r.Subject }),
	bytesCol("data", func(r *row) []byte { return r.Data }),
	u64Col("stream_seq", func(r *row) uint64 { return r.StreamSeq }),
	dateTimeCol("projected_at", func(r *row) int64 { return r.ProjectedAt }),
	strCol("name", func(r *row) string { return r.Name }),
	strCol("plan", func(r *row) string { return r.Plan }),
	strCol("status", func(r *row) string { return r.Status }),
	dateTimeCol("created_at", func(r *row) int64 { return r.CreatedAt }),
	strCol("user_id", func(r *row) string { return r.UserID }),
	strCol("role", func(r *row) string { return r.Role }),
	strCol("job_id", func(r *row) string { return r.JobID }),
	strCol("model", func(r *row) string { return r.Model }),
	strCol("language", func(r *row) string { return r.Language }),
	u64Col("media_ms", func(r *row) uint64 { return r.MediaMS }),
	u64Col("processing_ms", func(r *row) uint64 { return r.ProcessingMS }),
	strCol("error_code", func(r *row) string { return r.ErrorCode }),
	u64Col("quota_minutes", func(r *row) uint64 { return r.QuotaMinutes }),
	i64Col("amount_minor", func(r *row) int64 { return r.AmountMinor }),
	strCol("currency", func(r *row) string { return r.Currency }),
	dateTimeCol("period_start", func(r *row) int64 { return r.PeriodStart }),
	dateTimeCol("period_end", func(r *row) int64 { return r.PeriodEnd }),
	strCol("ref_id", func(r *row) string { return r.RefID }),
	strCol("severity", func(r *row) string { return r.Severity }),
}

// insertEventsSQL is the projector's only INSERT, naming every column (the
// native protocol needs the list on ClickHouse 18.16).
var insertEventsSQL = buildInsert("events", eventColumns)

func buildInsert(table string, cols []column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	return "INSERT INTO " + table + " (" + strings.Join(names, ", ") + ")"
}

// appendRows appends rs column by column to a prepared INSERT of
// eventColumns.
func appendRows(b driver.Batch, rs []row, buf *colBuffers) error {
	defer buf.release()
	for i, c := range eventColumns {
		if err := b.Column(i).Append(c.values(rs, buf)); err != nil {
			return fmt.Errorf("append column %s: %w", c.name, err)
		}
	}
	return nil
}

// release drops the buffers' references to row data (the driver copied it).
func (b *colBuffers) release() {
	clear(b.bytes)
	clear(b.strs)
}
