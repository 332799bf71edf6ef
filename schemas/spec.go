package schemas

import (
	"strings"
	"time"
)

// The tables in this file are the single source of the event contract: the
// validator enforces them, and the JSON Schema files under v1/ and the field
// tables in README.md are generated from them (go test ./schemas -update).

// MaxFutureSkew is how far a job's or organization's created_at may lie
// after the event's time.
const MaxFutureSkew = time.Hour

// MaxClockSkew is how far an event's time may lie ahead of the validating
// clock. It is small on purpose: the projector trusts that a copy of an
// event published more than (dedup window - MaxClockSkew) after its event
// time may be a repeat and checks it, so an event first published while
// still in its own future must not get far ahead.
const MaxClockSkew = time.Minute

// MaxMediaDurationSeconds bounds data.media_duration_seconds (7 days).
const MaxMediaDurationSeconds = 7 * 24 * 60 * 60

// Timestamps must fit ClickHouse's DateTime, where the read models keep them.
var (
	minTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2106, 1, 1, 0, 0, 0, 0, time.UTC)
)

type kind uint8

const (
	kindString kind = iota
	kindInt
	kindFloat
	kindBool
	kindTime
	kindObject
)

func (k kind) String() string {
	switch k {
	case kindString:
		return "string"
	case kindInt:
		return "integer"
	case kindFloat:
		return "number"
	case kindBool:
		return "boolean"
	case kindTime:
		return "string (RFC 3339 timestamp)"
	default:
		return "object"
	}
}

// pattern is a regular expression for the JSON Schema and docs, with a
// hand-written matcher for the hot path (a test checks they agree).
type pattern struct {
	re    string
	match func(string) bool
}

var (
	patID       = &pattern{`^[A-Za-z0-9._:@/+=-]{1,128}$`, validID}
	patToken    = &pattern{`^[A-Za-z0-9_-]{1,64}$`, ValidToken}
	patTokenOpt = &pattern{`^[A-Za-z0-9_-]{0,64}$`, func(s string) bool { return s == "" || ValidToken(s) }}
	patPlan     = &pattern{`^[A-Za-z0-9._-]{1,64}$`, validPlan}
	patCurrency = &pattern{`^[A-Z]{3}$`, validCurrency}
	patLink     = &pattern{`^https?://[^\t\n\f\r ]+$`, validLink}
	// patTime is what time.Parse(time.RFC3339) accepts, minus the oddities
	// it tolerates; it documents the format for other languages.
	patTime = `^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$`
)

// fieldSpec describes one envelope attribute or data field.
type fieldSpec struct {
	name     string
	kind     kind
	required bool
	doc      string
	minLen   int // strings: 1 = must not be empty when present
	maxLen   int // strings: in characters (code points); 0 = unbounded
	enum     []string
	pat      *pattern
	// Numbers: lower bound min (exclusive if exclMin), optional upper bound.
	min     float64
	exclMin bool
	max     float64
	hasMax  bool
	maxNote string
	// forbidden, if set, rejects the field with this reason; it keeps a
	// field that belongs to a sibling type from reading as a typo.
	forbidden string
}

// typeSpec is the contract of one event type.
type typeSpec struct {
	typ string
	doc string
	// resellerRequired / orgRequired: whether the envelope's resellerid and
	// orgid must be set for this type.
	resellerRequired bool
	orgRequired      bool
	fields           []fieldSpec
	// createdAtNotAfterEvent: data.created_at must not be later than the
	// event time + MaxFutureSkew.
	createdAtNotAfterEvent bool
	// periodOrder: data.period_end must be after data.period_start.
	periodOrder bool
	notes       []string

	family       string // "job" for job.*; accessors check it
	createdAtIdx int    // index of data.created_at, -1 if none
}

// Envelope attribute indexes into envelopeFields.
const (
	envSpecVersion = iota
	envID
	envType
	envSource
	envTime
	envResellerID
	envOrgID
	envSubject
	envDataContentType
	envDataSchema
	envData
	envCount
)

var envelopeFields = [envCount]fieldSpec{
	envSpecVersion: {name: "specversion", kind: kindString, required: true, enum: []string{SpecVersion},
		doc: "CloudEvents version."},
	envID: {name: "id", kind: kindString, required: true, minLen: 1, maxLen: 128, pat: patID,
		doc: "Unique event id chosen by the publisher; the idempotency key (events with the same id are the same event)."},
	envType: {name: "type", kind: kindString, required: true, enum: Types,
		doc: "Event type; decides the shape of data."},
	envSource: {name: "source", kind: kindString, required: true, minLen: 1, maxLen: 512,
		doc: "URI-reference of the publishing system, e.g. `/platform/jobs`."},
	envTime: {name: "time", kind: kindTime, required: true,
		doc: "When it happened. At most 1m in the future of tally's clock; any age in the past."},
	envResellerID: {name: "resellerid", kind: kindString, maxLen: 64, pat: patTokenOpt,
		doc: "Reseller (tenant). Required on every type except system.notice, where empty means all resellers."},
	envOrgID: {name: "orgid", kind: kindString, maxLen: 64, pat: patTokenOpt,
		doc: "Organization. Required on organization.*, subscription.*, invoice.*, user.* and job.*; optional on custom_model.* and system.notice."},
	envSubject: {name: "subject", kind: kindString, minLen: 1, maxLen: 256,
		doc: "Optional CloudEvents subject (e.g. the job id); informational."},
	envDataContentType: {name: "datacontenttype", kind: kindString, enum: []string{"application/json", "application/json; charset=utf-8"},
		doc: "Optional; data is always JSON."},
	envDataSchema: {name: "dataschema", kind: kindString, minLen: 1, maxLen: 512,
		doc: "Optional URI of the data's schema; informational."},
	envData: {name: "data", kind: kindObject, required: true,
		doc: "The type's data object (see below)."},
}

// Field constructors keep the tables short.

func str(name string, req bool, minLen, maxLen int, doc string) fieldSpec {
	return fieldSpec{name: name, kind: kindString, required: req, minLen: minLen, maxLen: maxLen, doc: doc}
}

func idField(name string, doc string) fieldSpec {
	return fieldSpec{name: name, kind: kindString, required: true, minLen: 1, maxLen: 128, pat: patID, doc: doc}
}

func enumField(name string, req bool, doc string, values ...string) fieldSpec {
	return fieldSpec{name: name, kind: kindString, required: req, enum: values, doc: doc}
}

func intField(name string, req bool, doc string) fieldSpec {
	return fieldSpec{name: name, kind: kindInt, required: req, doc: doc}
}

func timeField(name string, req bool, doc string) fieldSpec {
	return fieldSpec{name: name, kind: kindTime, required: req, doc: doc}
}

func planField(doc string) fieldSpec {
	return fieldSpec{name: "plan", kind: kindString, required: true, minLen: 1, maxLen: 64, pat: patPlan, doc: doc}
}

func currencyField() fieldSpec {
	return fieldSpec{name: "currency", kind: kindString, required: true, pat: patCurrency,
		doc: "ISO 4217 currency code, upper case (`EUR`, `USD`)."}
}

func forbid(f fieldSpec, reason string) fieldSpec {
	f.required = false
	f.forbidden = reason
	return f
}

func require(f fieldSpec) fieldSpec {
	f.required = true
	return f
}

// Data field indexes; every type of a family lists its fields in this order.
const (
	orgName = iota
	orgPlan
	orgStatus
	orgCreatedAt
)

const (
	subPlan = iota
	subStatus
	subQuotaMinutes
	subPriceMinor
	subCurrency
	subPeriodStart
	subPeriodEnd
)

const (
	invInvoiceID = iota
	invAmountMinor
	invCurrency
	invFailureReason
)

const (
	userUserID = iota
	userRole
)

const (
	jobJobID = iota
	jobUserID
	jobModel
	jobLanguage
	jobCreatedAt
	jobMediaDurationSeconds
	jobProcessingMS
	jobErrorCode
	jobErrorMessage
)

const (
	cmModelID = iota
	cmName
	cmBaseModel
	cmLanguage
	cmShared
)

const (
	noticeNoticeID = iota
	noticeTitle
	noticeBody
	noticeSeverity
	noticeLink
)

// maxDataFields is the most fields any data type has.
const maxDataFields = 9

var (
	orgFields = []fieldSpec{
		orgName:      str("name", true, 1, 200, "Display name of the organization."),
		orgPlan:      planField("Plan id, e.g. `starter`, `pro`, `enterprise`."),
		orgStatus:    enumField("status", true, "Account status.", OrgStatusActive, OrgStatusTrial, OrgStatusSuspended),
		orgCreatedAt: timeField("created_at", true, "When the organization was created; not after the event time + 1h."),
	}

	subFields = []fieldSpec{
		subPlan:         planField("Plan id after the change."),
		subStatus:       enumField("status", true, "Subscription status.", SubStatusActive, SubStatusTrialing, SubStatusPastDue, SubStatusCanceled, SubStatusExpired),
		subQuotaMinutes: intField("quota_minutes", true, "Transcription minutes included per period (0 = none)."),
		subPriceMinor:   intField("price_minor", true, "Recurring price per period (MRR) in minor units (cents)."),
		subCurrency:     currencyField(),
		subPeriodStart:  timeField("period_start", true, "Start of the current billing period."),
		subPeriodEnd:    timeField("period_end", true, "End of the current billing period; after period_start."),
	}

	invFailureReasonField = str("failure_reason", false, 0, 200, "Why the payment failed (processor's code or text).")

	invPaidFields = []fieldSpec{
		invInvoiceID:     idField("invoice_id", "Invoice id."),
		invAmountMinor:   intField("amount_minor", true, "Invoice amount in minor units (cents)."),
		invCurrency:      currencyField(),
		invFailureReason: forbid(invFailureReasonField, "only allowed on invoice.payment_failed"),
	}

	invFailedFields = []fieldSpec{
		invInvoiceID:     idField("invoice_id", "Invoice id."),
		invAmountMinor:   intField("amount_minor", true, "Amount that failed to be collected, in minor units (cents)."),
		invCurrency:      currencyField(),
		invFailureReason: invFailureReasonField,
	}

	userFields = []fieldSpec{
		userUserID: idField("user_id", "User id (unique within the platform)."),
		userRole:   str("role", false, 1, 64, "Role in the organization, e.g. `admin`, `member`."),
	}

	mediaField = fieldSpec{name: "media_duration_seconds", kind: kindFloat, min: 0, exclMin: true,
		max: MaxMediaDurationSeconds, hasMax: true, maxNote: "7 days",
		doc: "Length of the audio/video in seconds (fractions allowed). Usage = media minutes of completed jobs."}
	processingField = intField("processing_ms", false, "Processing (wall-clock) time in milliseconds.")
	errorCodeField  = str("error_code", false, 1, 128, "Machine-readable failure code, e.g. `media_unreadable`.")
	errorMsgField   = str("error_message", false, 0, 2000, "Human-readable failure detail.")

	jobFields = func(typ string) []fieldSpec {
		f := []fieldSpec{
			jobJobID:                idField("job_id", "Job id."),
			jobUserID:               idField("user_id", "User who submitted the job."),
			jobModel:                str("model", true, 1, 64, "Transcription model, e.g. `whisper-large-v3` or a custom model id."),
			jobLanguage:             str("language", true, 1, 64, "Language code, e.g. `en`, `de-CH`, `auto`."),
			jobCreatedAt:            timeField("created_at", true, "When the job was created; not after the event time + 1h."),
			jobMediaDurationSeconds: mediaField,
			jobProcessingMS:         processingField,
			jobErrorCode:            forbid(errorCodeField, "only allowed on job.failed"),
			jobErrorMessage:         forbid(errorMsgField, "only allowed on job.failed"),
		}
		switch typ {
		case TypeJobCompleted:
			f[jobMediaDurationSeconds] = require(mediaField)
			f[jobProcessingMS] = require(processingField)
		case TypeJobFailed:
			f[jobErrorCode] = require(errorCodeField)
			f[jobErrorMessage] = errorMsgField
		}
		return f
	}

	cmFields = []fieldSpec{
		cmModelID:   idField("model_id", "Custom model id (what job.*.model carries when a job uses it)."),
		cmName:      str("name", true, 1, 200, "Display name."),
		cmBaseModel: str("base_model", true, 1, 64, "Model it was trained from."),
		cmLanguage:  str("language", true, 1, 64, "Language code."),
		cmShared:    {name: "shared", kind: kindBool, doc: "Shared with other organizations of the reseller (default false)."},
	}

	noticeFields = []fieldSpec{
		noticeNoticeID: idField("notice_id", "Notice id."),
		noticeTitle:    str("title", true, 1, 200, "Short title."),
		noticeBody:     str("body", true, 1, 10000, "Text of the announcement (plain text)."),
		noticeSeverity: enumField("severity", true, "How prominently to show it.", SeverityInfo, SeverityWarning, SeverityCritical),
		noticeLink:     {name: "link", kind: kindString, maxLen: 2048, pat: patLink, doc: "Optional http(s) URL with details."},
	}
)

var typeSpecs = func() map[string]*typeSpec {
	tenant := func(ts *typeSpec) *typeSpec {
		ts.resellerRequired, ts.orgRequired = true, true
		return ts
	}
	specs := []*typeSpec{
		tenant(&typeSpec{typ: TypeOrganizationCreated, fields: orgFields, createdAtNotAfterEvent: true,
			doc: "An organization was created. data is its full state."}),
		tenant(&typeSpec{typ: TypeOrganizationUpdated, fields: orgFields, createdAtNotAfterEvent: true,
			doc: "An organization changed (name, plan or status). data is its full state after the change."}),
		tenant(&typeSpec{typ: TypeSubscriptionChanged, fields: subFields, periodOrder: true,
			doc:   "The organization's subscription changed (new, plan change, renewal, cancellation). data is the subscription after the change.",
			notes: []string{"`period_end` must be after `period_start`."}}),
		tenant(&typeSpec{typ: TypeInvoicePaid, fields: invPaidFields,
			doc: "An invoice was paid."}),
		tenant(&typeSpec{typ: TypeInvoicePaymentFailed, fields: invFailedFields,
			doc: "Collecting an invoice failed."}),
		tenant(&typeSpec{typ: TypeUserAdded, fields: userFields,
			doc: "A user joined the organization."}),
		tenant(&typeSpec{typ: TypeUserRemoved, fields: userFields,
			doc: "A user left the organization."}),
		tenant(&typeSpec{typ: TypeJobCreated, fields: jobFields(TypeJobCreated), createdAtNotAfterEvent: true,
			doc: "A transcription job was submitted. data is a snapshot of the job."}),
		tenant(&typeSpec{typ: TypeJobStarted, fields: jobFields(TypeJobStarted), createdAtNotAfterEvent: true,
			doc: "Processing of a job started. data is a snapshot of the job."}),
		tenant(&typeSpec{typ: TypeJobCompleted, fields: jobFields(TypeJobCompleted), createdAtNotAfterEvent: true,
			doc: "A job finished successfully; its media duration counts as usage. data is a snapshot of the job."}),
		tenant(&typeSpec{typ: TypeJobFailed, fields: jobFields(TypeJobFailed), createdAtNotAfterEvent: true,
			doc: "A job failed. data is a snapshot of the job."}),
		{typ: TypeCustomModelCreated, fields: cmFields, resellerRequired: true,
			doc: "A custom model was created. orgid is the owning organization; omit it for a reseller-wide model."},
		{typ: TypeCustomModelUpdated, fields: cmFields, resellerRequired: true,
			doc: "A custom model changed (e.g. became shared). data is its full state."},
		{typ: TypeSystemNotice, fields: noticeFields,
			doc: "A platform announcement shown as a notification. Empty resellerid addresses every reseller; orgid narrows it to one organization."},
	}
	m := make(map[string]*typeSpec, len(specs))
	for _, s := range specs {
		if len(s.fields) > maxDataFields {
			panic("schemas: maxDataFields too small for " + s.typ)
		}
		s.family = s.typ[:strings.IndexByte(s.typ, '.')]
		s.createdAtIdx = -1
		for i, f := range s.fields {
			if f.name == "created_at" {
				s.createdAtIdx = i
			}
		}
		m[s.typ] = s
	}
	for _, t := range Types {
		if m[t] == nil {
			panic("schemas: no spec for " + t)
		}
	}
	return m
}()

func validID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			switch c {
			case '.', '_', ':', '@', '/', '+', '=', '-':
			default:
				return false
			}
		}
	}
	return true
}

func validPlan(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func validCurrency(s string) bool {
	return len(s) == 3 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' && s[2] >= 'A' && s[2] <= 'Z'
}

func validLink(s string) bool {
	var rest string
	switch {
	case len(s) > 7 && s[:7] == "http://":
		rest = s[7:]
	case len(s) > 8 && s[:8] == "https://":
		rest = s[8:]
	default:
		return false
	}
	for _, r := range rest {
		switch r {
		case ' ', '\t', '\n', '\r', '\f':
			return false
		}
	}
	return true
}
