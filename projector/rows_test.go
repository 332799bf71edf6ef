package projector

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/schemas"
)

func TestMapEvent(t *testing.T) {
	at := time.Date(2025, 3, 9, 14, 7, 30, 123_000_000, time.UTC)
	created := time.Date(2025, 3, 9, 14, 0, 0, 0, time.UTC)
	projected := time.Date(2025, 3, 9, 14, 8, 0, 500_000_000, time.UTC)
	ev := func(typ, reseller, org, data string) *schemas.Event {
		return &schemas.Event{SpecVersion: "1.0", ID: "id-1", Type: typ, Source: "platform/api", Time: at,
			ResellerID: reseller, OrgID: org, Subject: "sub", Data: json.RawMessage(data)}
	}
	// base is the row every event shares; each case changes what it maps.
	base := func(typ, reseller, org, data string) row {
		return row{ID: "id-1", Type: typ, Source: "platform/api", ResellerID: reseller, OrgID: org, Subject: "sub", Data: []byte(data),
			rowNumbers: rowNumbers{Time: at.Unix(), TimeMS: uint64(at.UnixMilli()), StreamSeq: 42, ProjectedAt: projected.Unix()}}
	}
	tests := []struct {
		name string
		typ  string
		org  string
		data string
		want func(r row) row
	}{
		{"organization.created", schemas.TypeOrganizationCreated, "o1",
			`{"name":"Acme","plan":"pro","status":"trial","created_at":"2025-03-09T14:00:00.9Z"}`,
			func(r row) row {
				r.Name, r.Plan, r.Status, r.CreatedAt = "Acme", "pro", "trial", created.Unix()
				return r
			}},
		{"organization.updated", schemas.TypeOrganizationUpdated, "o1",
			`{"name":"Acme BV","plan":"enterprise","status":"active","created_at":"2025-03-09T14:00:00Z"}`,
			func(r row) row {
				r.Name, r.Plan, r.Status, r.CreatedAt = "Acme BV", "enterprise", "active", created.Unix()
				return r
			}},
		{"subscription.changed", schemas.TypeSubscriptionChanged, "o1",
			`{"plan":"pro","status":"active","quota_minutes":6000,"price_minor":4900,"currency":"EUR","period_start":"2025-03-01T00:00:00Z","period_end":"2025-04-01T00:00:00Z"}`,
			func(r row) row {
				r.Plan, r.Status, r.QuotaMinutes, r.AmountMinor, r.Currency = "pro", "active", 6000, 4900, "EUR"
				r.PeriodStart, r.PeriodEnd = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC).Unix(), time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC).Unix()
				return r
			}},
		{"invoice.paid", schemas.TypeInvoicePaid, "o1",
			`{"invoice_id":"inv-7","amount_minor":12345,"currency":"USD"}`,
			func(r row) row { r.RefID, r.AmountMinor, r.Currency = "inv-7", 12345, "USD"; return r }},
		{"invoice.payment_failed", schemas.TypeInvoicePaymentFailed, "o1",
			`{"invoice_id":"inv-8","amount_minor":500,"currency":"USD","failure_reason":"card_declined"}`,
			func(r row) row {
				r.RefID, r.AmountMinor, r.Currency, r.ErrorCode = "inv-8", 500, "USD", "card_declined"
				return r
			}},
		{"user.added", schemas.TypeUserAdded, "o1", `{"user_id":"u1","role":"admin"}`,
			func(r row) row { r.UserID, r.Role = "u1", "admin"; return r }},
		{"user.removed", schemas.TypeUserRemoved, "o1", `{"user_id":"u1"}`,
			func(r row) row { r.UserID = "u1"; return r }},
		{"job.created", schemas.TypeJobCreated, "o1",
			`{"job_id":"j1","user_id":"u1","model":"general","language":"nl","created_at":"2025-03-09T14:00:00Z"}`,
			func(r row) row {
				r.JobID, r.UserID, r.Model, r.Language, r.CreatedAt = "j1", "u1", "general", "nl", created.Unix()
				return r
			}},
		{"job.started", schemas.TypeJobStarted, "o1",
			`{"job_id":"j1","user_id":"u1","model":"general","language":"nl","created_at":"2025-03-09T14:00:00Z","media_duration_seconds":61.5}`,
			func(r row) row {
				r.JobID, r.UserID, r.Model, r.Language, r.CreatedAt, r.MediaMS = "j1", "u1", "general", "nl", created.Unix(), 61500
				return r
			}},
		{"job.completed rounds media to ms", schemas.TypeJobCompleted, "o1",
			`{"job_id":"j1","user_id":"u1","model":"general","language":"nl","created_at":"2025-03-09T14:00:00Z","media_duration_seconds":12.3456,"processing_ms":2500}`,
			func(r row) row {
				r.JobID, r.UserID, r.Model, r.Language, r.CreatedAt = "j1", "u1", "general", "nl", created.Unix()
				r.MediaMS, r.ProcessingMS = 12346, 2500
				return r
			}},
		{"job.failed", schemas.TypeJobFailed, "o1",
			`{"job_id":"j1","user_id":"u1","model":"general","language":"nl","created_at":"2025-03-09T14:00:00Z","processing_ms":800,"error_code":"media_unreadable","error_message":"bad"}`,
			func(r row) row {
				r.JobID, r.UserID, r.Model, r.Language, r.CreatedAt = "j1", "u1", "general", "nl", created.Unix()
				r.ProcessingMS, r.ErrorCode = 800, "media_unreadable"
				return r
			}},
		{"custom_model.created shared", schemas.TypeCustomModelCreated, "o1",
			`{"model_id":"cm1","name":"Legal NL","base_model":"legal","language":"nl","shared":true}`,
			func(r row) row {
				r.RefID, r.Name, r.Model, r.Language, r.Status = "cm1", "Legal NL", "legal", "nl", "shared"
				return r
			}},
		{"custom_model.updated not shared, no org", schemas.TypeCustomModelUpdated, "",
			`{"model_id":"cm1","name":"Legal NL","base_model":"legal","language":"nl","shared":false}`,
			func(r row) row { r.RefID, r.Name, r.Model, r.Language = "cm1", "Legal NL", "legal", "nl"; return r }},
		{"system.notice", schemas.TypeSystemNotice, "",
			`{"notice_id":"n1","title":"Maintenance","body":"Tonight 22:00","severity":"warning","link":"https://status.example.com"}`,
			func(r row) row { r.RefID, r.Name, r.Severity = "n1", "Maintenance", "warning"; return r }},
	}
	covered := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			covered[tc.typ] = true
			got, err := mapEvent(ev(tc.typ, "r1", tc.org, tc.data), 42, projected)
			if err != nil {
				t.Fatalf("mapEvent: %v", err)
			}
			want := tc.want(base(tc.typ, "r1", tc.org, tc.data))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("row mismatch\n got %+v\nwant %+v", got, want)
			}
		})
	}
	for _, typ := range schemas.Types {
		if !covered[typ] {
			t.Errorf("event type %s has no mapping test", typ)
		}
	}
}

func TestMapEventUnprojectable(t *testing.T) {
	ok := time.Date(2025, 3, 9, 14, 7, 30, 0, time.UTC)
	tests := []struct {
		name  string
		typ   string
		time  time.Time
		data  string
		field string
	}{
		{"event time before 1970", schemas.TypeUserAdded, time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), `{"user_id":"u1"}`, "time"},
		{"job created_at after 2106", schemas.TypeJobCreated, ok,
			`{"job_id":"j1","user_id":"u1","model":"m","language":"en","created_at":"2200-01-01T00:00:00Z"}`, "data.created_at"},
		{"negative processing time", schemas.TypeJobFailed, ok,
			`{"job_id":"j1","user_id":"u1","model":"m","language":"en","created_at":"2025-01-01T00:00:00Z","processing_ms":-1,"error_code":"x"}`, "data.processing_ms"},
		{"media duration overflows", schemas.TypeJobCompleted, ok,
			`{"job_id":"j1","user_id":"u1","model":"m","language":"en","created_at":"2025-01-01T00:00:00Z","media_duration_seconds":1e300,"processing_ms":1}`, "data.media_duration_seconds"},
		{"negative quota", schemas.TypeSubscriptionChanged, ok,
			`{"plan":"p","status":"active","quota_minutes":-5,"price_minor":1,"currency":"EUR","period_start":"2025-03-01T00:00:00Z","period_end":"2025-04-01T00:00:00Z"}`, "data.quota_minutes"},
		{"data of the wrong shape", schemas.TypeUserAdded, ok, `{"user_id":7}`, "data.user_id"},
		{"unknown type", "job.exploded", ok, `{}`, "type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &schemas.Event{SpecVersion: "1.0", ID: "id-1", Type: tc.typ, Source: "s", Time: tc.time, ResellerID: "r1", OrgID: "o1", Data: json.RawMessage(tc.data)}
			_, err := mapEvent(e, 1, ok)
			var me *mapError
			if !errors.As(err, &me) {
				t.Fatalf("mapEvent error = %v, want a *mapError", err)
			}
			if me.Field != tc.field {
				t.Errorf("field = %q, want %q (error %v)", me.Field, tc.field, err)
			}
		})
	}
}

func TestInsertEventsSQL(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"events insert names every column in order", insertEventsSQL,
			"INSERT INTO events (id, type, source, time, time_ms, reseller_id, org_id, subject, data, stream_seq, projected_at, " +
				"name, plan, status, created_at, user_id, role, job_id, model, language, media_ms, processing_ms, error_code, " +
				"quota_minutes, amount_minor, currency, period_start, period_end, ref_id, severity)"},
		{"builder", buildInsert("t", []column{{name: "a"}, {name: "b"}}), "INSERT INTO t (a, b)"},
		{"duplicate lookup binds one array", existingIDsSQL, "SELECT id FROM event_ids WHERE id IN (SELECT arrayJoin(?))"},
		{"projected high-water mark", maxStreamSeqSQL, "SELECT max(stream_seq) FROM events"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got  %s\nwant %s", tc.got, tc.want)
			}
			if strings.Count(tc.got, "?") > 1 {
				t.Errorf("more than one placeholder in %s", tc.got)
			}
		})
	}
}
