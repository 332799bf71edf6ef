package projector

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unsafe"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tallyhq/tally/schemas"
)

// row is one row of the events table, as mapEvent builds it. Columns that
// do not apply to an event's type keep their zero value. A batch keeps its
// rows packed (see packedRow).
type row struct {
	ID         string
	Type       string
	Source     string
	ResellerID string
	OrgID      string
	Subject    string
	Data       []byte // the event's data JSON

	Name      string
	Plan      string
	Status    string
	UserID    string
	Role      string
	JobID     string
	Model     string
	Language  string
	ErrorCode string
	Currency  string
	RefID     string
	Severity  string

	rowNumbers
}

// rowNumbers are a row's columns that are not strings. DateTime columns
// hold Unix seconds.
type rowNumbers struct {
	Time         int64
	TimeMS       uint64
	StreamSeq    uint64
	ProjectedAt  int64
	CreatedAt    int64
	MediaMS      uint64
	ProcessingMS uint64
	QuotaMinutes uint64
	AmountMinor  int64
	PeriodStart  int64
	PeriodEnd    int64
}

// textField names a string column of a row.
type textField uint8

const (
	fID textField = iota
	fType
	fSource
	fResellerID
	fOrgID
	fSubject
	fData
	fName
	fPlan
	fStatus
	fUserID
	fRole
	fJobID
	fModel
	fLanguage
	fErrorCode
	fCurrency
	fRefID
	fSeverity
	numTextFields
)

// texts returns r's strings by textField; Data is viewed, not copied.
func (r *row) texts() [numTextFields]string {
	return [numTextFields]string{
		fID: r.ID, fType: r.Type, fSource: r.Source, fResellerID: r.ResellerID, fOrgID: r.OrgID,
		fSubject: r.Subject, fData: unsafe.String(unsafe.SliceData(r.Data), len(r.Data)),
		fName: r.Name, fPlan: r.Plan, fStatus: r.Status, fUserID: r.UserID, fRole: r.Role, fJobID: r.JobID,
		fModel: r.Model, fLanguage: r.Language, fErrorCode: r.ErrorCode, fCurrency: r.Currency,
		fRefID: r.RefID, fSeverity: r.Severity,
	}
}

// packedRow is a row as a batch holds it: its strings are one piece of the
// batch's arena, one after the other in textField order, and ends[f] is
// where field f ends in that piece. It holds no pointers, so the garbage
// collector need not scan a batch's rows.
type packedRow struct {
	text span
	ends [numTextFields]uint32
	rowNumbers
}

// pack copies r's strings into a and returns r packed.
func (a *arena) pack(r *row) packedRow {
	t := r.texts()
	n := 0
	for _, s := range t {
		n += len(s)
	}
	p := packedRow{rowNumbers: r.rowNumbers}
	var b []byte
	p.text, b = a.alloc(n)
	off := 0
	for f, s := range t {
		off += copy(b[off:], s)
		p.ends[f] = uint32(off)
	}
	return p
}

// field returns field f of p, valid until a's next reset (see arena.str).
func (a *arena) field(p *packedRow, f textField) string {
	start := uint32(0)
	if f > 0 {
		start = p.ends[f-1]
	}
	t := p.text
	return a.str(span{chunk: t.chunk, off: t.off + start, n: p.ends[f] - start})
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
		ID:         e.ID,
		Type:       e.Type,
		Source:     e.Source,
		ResellerID: e.ResellerID,
		OrgID:      e.OrgID,
		Subject:    e.Subject,
		Data:       e.Data,
		rowNumbers: rowNumbers{StreamSeq: streamSeq, ProjectedAt: projectedAt.Unix()},
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
	return r, nil
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
// append the values of packed rows to it.
type column struct {
	name     string
	dateTime bool // values are Unix seconds ([]int64) for a DateTime column
	values   func(rs []packedRow, a *arena, buf *colBuffers) any
}

// colBuffers holds one reusable slice per Go type, filled per column.
type colBuffers struct {
	strs []string
	u64  []uint64
	i64  []int64
}

func strCol(name string, f textField) column {
	return column{name, false, func(rs []packedRow, a *arena, b *colBuffers) any {
		b.strs = b.strs[:0]
		for i := range rs {
			b.strs = append(b.strs, a.field(&rs[i], f))
		}
		return b.strs
	}}
}

// dateTimeCol appends Unix seconds to a DateTime column.
func dateTimeCol(name string, f func(*rowNumbers) int64) column {
	c := i64Col(name, f)
	c.dateTime = true
	return c
}

func u64Col(name string, f func(*rowNumbers) uint64) column {
	return column{name, false, func(rs []packedRow, _ *arena, b *colBuffers) any {
		b.u64 = b.u64[:0]
		for i := range rs {
			b.u64 = append(b.u64, f(&rs[i].rowNumbers))
		}
		return b.u64
	}}
}

func i64Col(name string, f func(*rowNumbers) int64) column {
	return column{name, false, func(rs []packedRow, _ *arena, b *colBuffers) any {
		b.i64 = b.i64[:0]
		for i := range rs {
			b.i64 = append(b.i64, f(&rs[i].rowNumbers))
		}
		return b.i64
	}}
}

// eventColumns lists every column the projector writes, in INSERT order.
var eventColumns = []column{
	strCol("id", fID),
	strCol("type", fType),
	strCol("source", fSource),
	dateTimeCol("time", func(r *rowNumbers) int64 { return r.Time }),
	u64Col("time_ms", func(r *rowNumbers) uint64 { return r.TimeMS }),
	strCol("reseller_id", fResellerID),
	strCol("org_id", fOrgID),
	strCol("subject", fSubject),
	strCol("data", fData), // a string: the driver copies [][]byte values one allocation each
	u64Col("stream_seq", func(r *rowNumbers) uint64 { return r.StreamSeq }),
	dateTimeCol("projected_at", func(r *rowNumbers) int64 { return r.ProjectedAt }),
	strCol("name", fName),
	strCol("plan", fPlan),
	strCol("status", fStatus),
	dateTimeCol("created_at", func(r *rowNumbers) int64 { return r.CreatedAt }),
	strCol("user_id", fUserID),
	strCol("role", fRole),
	strCol("job_id", fJobID),
	strCol("model", fModel),
	strCol("language", fLanguage),
	u64Col("media_ms", func(r *rowNumbers) uint64 { return r.MediaMS }),
	u64Col("processing_ms", func(r *rowNumbers) uint64 { return r.ProcessingMS }),
	strCol("error_code", fErrorCode),
	u64Col("quota_minutes", func(r *rowNumbers) uint64 { return r.QuotaMinutes }),
	i64Col("amount_minor", func(r *rowNumbers) int64 { return r.AmountMinor }),
	strCol("currency", fCurrency),
	dateTimeCol("period_start", func(r *rowNumbers) int64 { return r.PeriodStart }),
	dateTimeCol("period_end", func(r *rowNumbers) int64 { return r.PeriodEnd }),
	strCol("ref_id", fRefID),
	strCol("severity", fSeverity),
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

// appendRows appends rs, packed in a, column by column to a prepared
// INSERT of eventColumns.
func appendRows(b driver.Batch, rs []packedRow, a *arena, buf *colBuffers) error {
	defer buf.release()
	for i, c := range eventColumns {
		if err := b.Column(i).Append(c.values(rs, a, buf)); err != nil {
			return fmt.Errorf("append column %s: %w", c.name, err)
		}
	}
	return nil
}

// release drops the buffers' references to row data (the driver copied it).
func (b *colBuffers) release() {
	clear(b.strs)
}
