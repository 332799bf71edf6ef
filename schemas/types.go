// Package schemas defines tally's event envelope and the data of every event
// type the platform publishes, with validation that names the event, the
// field and the reason. The JSON Schema files beside this file describe the
// same contract for publishers in other languages.
package schemas

import (
	"encoding/json"
	"time"
)

// SpecVersion is the CloudEvents version of the envelope.
const SpecVersion = "1.0"

// SchemaVersion is the version of tally's event schema. Changes within a
// version are additive (new optional fields, new types); a breaking change
// gets a new version and new JSON Schema files.
const SchemaVersion = "v1"

// Event types. The type is also part of the NATS subject an event travels on.
const (
	TypeOrganizationCreated  = "organization.created"
	TypeOrganizationUpdated  = "organization.updated"
	TypeSubscriptionChanged  = "subscription.changed"
	TypeInvoicePaid          = "invoice.paid"
	TypeInvoicePaymentFailed = "invoice.payment_failed"
	TypeUserAdded            = "user.added"
	TypeUserRemoved          = "user.removed"
	TypeJobCreated           = "job.created"
	TypeJobStarted           = "job.started"
	TypeJobCompleted         = "job.completed"
	TypeJobFailed            = "job.failed"
	TypeCustomModelCreated   = "custom_model.created"
	TypeCustomModelUpdated   = "custom_model.updated"
	TypeSystemNotice         = "system.notice"
)

// Types lists every event type tally accepts, in documentation order.
var Types = []string{
	TypeOrganizationCreated, TypeOrganizationUpdated,
	TypeSubscriptionChanged,
	TypeInvoicePaid, TypeInvoicePaymentFailed,
	TypeUserAdded, TypeUserRemoved,
	TypeJobCreated, TypeJobStarted, TypeJobCompleted, TypeJobFailed,
	TypeCustomModelCreated, TypeCustomModelUpdated,
	TypeSystemNotice,
}

// Event is the CloudEvents 1.0 envelope every tally event shares.
// README.md in this directory documents every attribute and rule; Decode
// and Validate enforce them.
//
// The tenant travels in two CloudEvents extension attributes, resellerid and
// orgid: CloudEvents allows only lower-case letters and digits in attribute
// names, so reseller_id would not be a valid CloudEvent.
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Type            string          `json:"type"`
	Source          string          `json:"source"`
	Time            time.Time       `json:"time"`
	ResellerID      string          `json:"resellerid,omitempty"`
	OrgID           string          `json:"orgid,omitempty"`
	Subject         string          `json:"subject,omitempty"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	DataSchema      string          `json:"dataschema,omitempty"`
	Data            json.RawMessage `json:"data"`

	// parsed keeps the data values Decode validated, so the typed data
	// accessors need not parse Data again; parsedFrom is Data's first byte
	// then, so a replaced Data is parsed anew.
	parsed     *[maxDataFields]value
	parsedFrom *byte
}

// Organization status values.
const (
	OrgStatusActive    = "active"
	OrgStatusTrial     = "trial"
	OrgStatusSuspended = "suspended"
)

// OrganizationData is the data of organization.created and
// organization.updated: the organization's full current state. All fields
// are required; name is 1–200 characters, plan matches ^[A-Za-z0-9._-]{1,64}$.
type OrganizationData struct {
	Name      string    `json:"name"`
	Plan      string    `json:"plan"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
}

// Subscription status values.
const (
	SubStatusActive   = "active"
	SubStatusTrialing = "trialing"
	SubStatusPastDue  = "past_due"
	SubStatusCanceled = "canceled"
	SubStatusExpired  = "expired"
)

// SubscriptionData is the data of subscription.changed: the organization's
// subscription as it is after the change. All fields are required; numbers
// are >= 0 and PeriodEnd is after PeriodStart.
type SubscriptionData struct {
	Plan         string    `json:"plan"`
	Status       string    `json:"status"`
	QuotaMinutes int64     `json:"quota_minutes"`
	PriceMinor   int64     `json:"price_minor"` // MRR in minor units (cents)
	Currency     string    `json:"currency"`    // ISO 4217, upper case
	PeriodStart  time.Time `json:"period_start"`
	PeriodEnd    time.Time `json:"period_end"`
}

// InvoiceData is the data of invoice.paid and invoice.payment_failed.
// InvoiceID, AmountMinor (>= 0) and Currency are required.
type InvoiceData struct {
	InvoiceID     string `json:"invoice_id"`
	AmountMinor   int64  `json:"amount_minor"`
	Currency      string `json:"currency"`
	FailureReason string `json:"failure_reason,omitempty"` // payment_failed only
}

// UserData is the data of user.added and user.removed. UserID is required.
type UserData struct {
	UserID string `json:"user_id"`
	Role   string `json:"role,omitempty"`
}

// Job status values as the read models store them.
const (
	JobStatusCreated    = "created"
	JobStatusProcessing = "processing"
	JobStatusCompleted  = "completed"
	JobStatusFailed     = "failed"
)

// JobData is the data of every job.* event: a snapshot of the job, so each
// event can be projected on its own whatever order events arrive in.
// job_id, user_id, model, language and created_at are required on every
// job.* type; created_at may not be later than the event time + 1h.
type JobData struct {
	JobID     string    `json:"job_id"`
	UserID    string    `json:"user_id"`
	Model     string    `json:"model"`
	Language  string    `json:"language"`
	CreatedAt time.Time `json:"created_at"`
	// MediaDurationSeconds is the length of the audio/video, > 0 and at
	// most 7 days; required on job.completed, optional elsewhere.
	MediaDurationSeconds float64 `json:"media_duration_seconds,omitempty"`
	// ProcessingMS is the processing time in milliseconds, >= 0; required
	// on job.completed. Not omitempty: 0 is a value a completed job may
	// carry, and an omitted key on job.completed is rejected as missing.
	ProcessingMS int64  `json:"processing_ms"`
	ErrorCode    string `json:"error_code,omitempty"`    // required on job.failed, rejected elsewhere
	ErrorMessage string `json:"error_message,omitempty"` // job.failed only, rejected elsewhere
}

// CustomModelData is the data of custom_model.created and custom_model.updated.
// All fields but Shared are required.
type CustomModelData struct {
	ModelID   string `json:"model_id"`
	Name      string `json:"name"`
	BaseModel string `json:"base_model"`
	Language  string `json:"language"`
	Shared    bool   `json:"shared"`
}

// Notice severities.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// SystemNoticeData is the data of system.notice. An empty resellerid on the
// envelope addresses every reseller. All fields but Link are required.
type SystemNoticeData struct {
	NoticeID string `json:"notice_id"`
	Title    string `json:"title"`
	Body     string `json:"body"`
	Severity string `json:"severity"`
	Link     string `json:"link,omitempty"`
}
