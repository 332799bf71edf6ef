package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// testNow is the clock of the rule tests; every example lies before it.
var testNow = time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)

type edit func(env, data map[string]any)

func set(path string, v any) edit {
	return func(env, data map[string]any) {
		if k, ok := strings.CutPrefix(path, "data."); ok {
			data[k] = v
			return
		}
		env[path] = v
	}
}

func del(path string) edit {
	return func(env, data map[string]any) {
		if k, ok := strings.CutPrefix(path, "data."); ok {
			delete(data, k)
			return
		}
		delete(env, path)
	}
}

// exampleMap returns the example of typ as maps (numbers kept exact).
func exampleMap(t testing.TB, typ string) (env, data map[string]any) {
	t.Helper()
	ex, ok := Example(typ)
	if !ok {
		t.Fatalf("no example for %s", typ)
	}
	dec := json.NewDecoder(bytes.NewReader(ex))
	dec.UseNumber()
	if err := dec.Decode(&env); err != nil {
		t.Fatal(err)
	}
	data, _ = env["data"].(map[string]any)
	return env, data
}

// encode writes env with specversion, id and type first (as publishers
// usually do, so data is read in the envelope's pass) or with data first
// (so it is read afterwards); both paths must report the same problems.
func encode(t testing.TB, env map[string]any, typeFirst bool) []byte {
	t.Helper()
	order := []string{"data"}
	if typeFirst {
		order = []string{"specversion", "id", "type"}
	}
	var b bytes.Buffer
	b.WriteByte('{')
	n := 0
	put := func(k string, v any) {
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	done := map[string]bool{}
	for _, k := range order {
		if v, ok := env[k]; ok {
			put(k, v)
			done[k] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if !done[k] {
			put(k, env[k])
		}
	}
	b.WriteByte('}')
	return b.Bytes()
}

func asValidationError(t testing.TB, err error) *ValidationError {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	return ve
}

func hasProblem(ve *ValidationError, field, reason string) bool {
	for _, p := range ve.Problems {
		if p.Field == field && strings.Contains(p.Reason, reason) {
			return true
		}
	}
	return false
}

type ruleCase struct {
	name   string
	typ    string // example the edits start from
	edits  []edit
	raw    string // used instead of typ+edits when set
	field  string
	reason string // substring
	n      int    // expected number of problems; 0 means 1
}

func ok(name, typ string, edits ...edit) ruleCase {
	return ruleCase{name: name, typ: typ, edits: edits, n: -1}
}

func bad(name, typ, field, reason string, edits ...edit) ruleCase {
	return ruleCase{name: name, typ: typ, edits: edits, field: field, reason: reason}
}

var (
	long65  = strings.Repeat("a", 65)
	long129 = strings.Repeat("a", 129)
	long201 = strings.Repeat("n", 201)
	// 200 characters, 400 bytes: lengths count characters.
	umlaut200 = strings.Repeat("ü", 200)
)

var ruleCases = []ruleCase{
	// envelope
	ok("valid job.completed", TypeJobCompleted),
	bad("specversion missing", TypeJobCompleted, "specversion", "required", del("specversion")),
	bad("specversion wrong", TypeJobCompleted, "specversion", `must be "1.0", got "0.3"`, set("specversion", "0.3")),
	bad("specversion number", TypeJobCompleted, "specversion", "must be a string, got number", set("specversion", 1.0)),
	bad("id missing", TypeJobCompleted, "id", "required", del("id")),
	bad("id empty", TypeJobCompleted, "id", "must not be empty", set("id", "")),
	bad("id with space", TypeJobCompleted, "id", "must match ^[A-Za-z0-9._:@/+=-]{1,128}$", set("id", "evt 1")),
	bad("id too long", TypeJobCompleted, "id", "at most 128 characters, got 129", set("id", long129)),
	ok("id with every allowed symbol", TypeJobCompleted, set("id", "a.b_c:d@e/f+g=h-1")),
	bad("type missing", TypeJobCompleted, "type", "required", del("type")),
	bad("type unknown", TypeJobCompleted, "type", `must be one of organization.created|`, set("type", "job.done")),
	bad("type null", TypeJobCompleted, "type", "must be a string, got null", set("type", nil)),
	bad("source missing", TypeJobCompleted, "source", "required", del("source")),
	bad("source empty", TypeJobCompleted, "source", "must not be empty", set("source", "")),
	bad("time missing", TypeJobCompleted, "time", "required", del("time")),
	bad("time without zone", TypeJobCompleted, "time", `RFC 3339 timestamp with time zone`, set("time", "2025-03-14T09:26:53")),
	bad("time with space", TypeJobCompleted, "time", `got "2025-03-14 09:26:53Z"`, set("time", "2025-03-14 09:26:53Z")),
	bad("time date only", TypeJobCompleted, "time", "RFC 3339", set("time", "2025-03-14")),
	bad("time invalid month", TypeJobCompleted, "time", "RFC 3339", set("time", "2025-13-14T09:26:53Z")),
	bad("time as unix number", TypeJobCompleted, "time", "must be a string (RFC 3339 timestamp), got number", set("time", 1741944413)),
	bad("time 2m in the future", TypeJobCompleted, "time", "must not be more than 1m0s in the future, is 2m0s ahead",
		set("time", "2025-03-15T00:02:00Z"), set("data.created_at", "2025-03-14T00:00:00Z")),
	ok("time 59s in the future", TypeJobCompleted, set("time", "2025-03-15T00:00:59Z")),
	ok("time with offset", TypeJobCompleted, set("time", "2025-03-14T10:26:53.123456789+01:00")),
	ok("time years ago", TypeJobCompleted, set("time", "2019-01-01T00:00:00Z"), set("data.created_at", "2019-01-01T00:00:00Z")),
	bad("time before 1970", TypeJobCompleted, "time", "between 1970-01-01 and 2105-12-31", set("time", "1969-12-31T23:59:59Z")),
	bad("resellerid missing on job", TypeJobCompleted, "resellerid", "required for job.completed", del("resellerid")),
	bad("resellerid empty on job", TypeJobCompleted, "resellerid", "required for job.completed", set("resellerid", "")),
	bad("resellerid with dot", TypeJobCompleted, "resellerid", "must match ^[A-Za-z0-9_-]{0,64}$", set("resellerid", "r.1")),
	bad("resellerid too long", TypeJobCompleted, "resellerid", "at most 64 characters", set("resellerid", long65)),
	bad("resellerid number", TypeJobCompleted, "resellerid", "must be a string, got number", set("resellerid", 7)),
	bad("orgid missing on job", TypeJobCompleted, "orgid", "required for job.completed", del("orgid")),
	bad("orgid missing on organization", TypeOrganizationCreated, "orgid", "required for organization.created", del("orgid")),
	bad("orgid with space", TypeUserAdded, "orgid", "must match", set("orgid", "org 1")),
	bad("resellerid missing on custom_model", TypeCustomModelCreated, "resellerid", "required for custom_model.created", del("resellerid")),
	ok("orgid missing on custom_model", TypeCustomModelCreated, del("orgid")),
	ok("resellerid and orgid missing on system.notice", TypeSystemNotice),
	ok("resellerid empty on system.notice", TypeSystemNotice, set("resellerid", "")),
	ok("orgid set on system.notice", TypeSystemNotice, set("resellerid", "r_acme"), set("orgid", "org_7f3a")),
	bad("unknown attribute typo", TypeJobCompleted, "reseller_id", `unknown attribute; did you mean "resellerid"?`, set("reseller_id", "r1")),
	bad("unknown attribute camel case", TypeJobCompleted, "orgId", `did you mean "orgid"?`, set("orgId", "o1")),
	bad("unknown extension attribute", TypeJobCompleted, "traceparent", "unknown attribute (allowed: specversion, id, type,", set("traceparent", "00-abc")),
	bad("datacontenttype not json", TypeJobCompleted, "datacontenttype", "must be one of application/json|", set("datacontenttype", "text/plain")),
	bad("subject empty", TypeJobCompleted, "subject", "must not be empty", set("subject", "")),
	bad("dataschema number", TypeJobCompleted, "dataschema", "must be a string, got number", set("dataschema", 1)),
	bad("data missing", TypeJobCompleted, "data", "required", del("data")),
	bad("data array", TypeJobCompleted, "data", "must be a JSON object, got array", set("data", []any{1})),
	bad("data null", TypeJobCompleted, "data", "must be a JSON object, got null", set("data", nil)),
	bad("data string", TypeJobCompleted, "data", "must be a JSON object, got string", set("data", "{}")),
	bad("unknown type skips data rules", TypeJobCompleted, "type", "must be one of", set("type", "job.finished"), set("data", map[string]any{"x": 1})),

	// organization.*
	ok("valid organization.updated", TypeOrganizationUpdated),
	bad("org name missing", TypeOrganizationCreated, "data.name", "required", del("data.name")),
	bad("org name empty", TypeOrganizationCreated, "data.name", "must not be empty", set("data.name", "")),
	bad("org name too long", TypeOrganizationCreated, "data.name", "at most 200 characters, got 201", set("data.name", long201)),
	ok("org name 200 multibyte characters", TypeOrganizationCreated, set("data.name", umlaut200)),
	bad("org plan with space", TypeOrganizationCreated, "data.plan", "must match ^[A-Za-z0-9._-]{1,64}$", set("data.plan", "pro plan")),
	bad("org plan too long", TypeOrganizationCreated, "data.plan", "at most 64 characters", set("data.plan", long65)),
	bad("org plan missing", TypeOrganizationUpdated, "data.plan", "required", del("data.plan")),
	bad("org status unknown", TypeOrganizationCreated, "data.status", `must be one of active|trial|suspended, got "deleted"`, set("data.status", "deleted")),
	bad("org status missing", TypeOrganizationCreated, "data.status", "required", del("data.status")),
	bad("org created_at missing", TypeOrganizationCreated, "data.created_at", "required", del("data.created_at")),
	bad("org created_at after event", TypeOrganizationCreated, "data.created_at", "must not be more than 1h0m0s after the event time", set("data.created_at", "2025-01-06T09:00:01Z")),
	ok("org created_at 1h after event", TypeOrganizationCreated, set("data.created_at", "2025-01-06T09:00:00Z")),
	bad("org unknown field", TypeOrganizationCreated, "data.plan_id", `unknown field for organization.created; did you mean "plan"?`, set("data.plan_id", "pro")),

	// subscription.changed
	bad("sub plan missing", TypeSubscriptionChanged, "data.plan", "required", del("data.plan")),
	bad("sub status unknown", TypeSubscriptionChanged, "data.status", "must be one of active|trialing|past_due|canceled|expired", set("data.status", "paused")),
	bad("sub quota negative", TypeSubscriptionChanged, "data.quota_minutes", "must be >= 0, got -1", set("data.quota_minutes", -1)),
	bad("sub quota missing", TypeSubscriptionChanged, "data.quota_minutes", "required", del("data.quota_minutes")),
	ok("sub quota zero", TypeSubscriptionChanged, set("data.quota_minutes", 0)),
	ok("sub quota written 10.0", TypeSubscriptionChanged, set("data.quota_minutes", json.Number("10.0"))),
	ok("sub quota written 1e3", TypeSubscriptionChanged, set("data.quota_minutes", json.Number("1e3"))),
	bad("sub quota fractional", TypeSubscriptionChanged, "data.quota_minutes", "must be an integer, got 1.5", set("data.quota_minutes", 1.5)),
	bad("sub quota overflows", TypeSubscriptionChanged, "data.quota_minutes", "integer out of range", set("data.quota_minutes", json.Number("99999999999999999999"))),
	bad("sub price as string", TypeSubscriptionChanged, "data.price_minor", "must be an integer, got string", set("data.price_minor", "14990")),
	bad("sub price negative", TypeSubscriptionChanged, "data.price_minor", "must be >= 0", set("data.price_minor", -100)),
	bad("sub currency lower case", TypeSubscriptionChanged, "data.currency", `must match ^[A-Z]{3}$, got "eur"`, set("data.currency", "eur")),
	bad("sub currency four letters", TypeSubscriptionChanged, "data.currency", "must match ^[A-Z]{3}$", set("data.currency", "EURO")),
	bad("sub currency missing", TypeSubscriptionChanged, "data.currency", "required", del("data.currency")),
	bad("sub period_start missing", TypeSubscriptionChanged, "data.period_start", "required", del("data.period_start")),
	bad("sub period_end missing", TypeSubscriptionChanged, "data.period_end", "required", del("data.period_end")),
	bad("sub period_end equals start", TypeSubscriptionChanged, "data.period_end", "must be after period_start", set("data.period_end", "2025-02-01T00:00:00Z")),
	bad("sub period_end before start", TypeSubscriptionChanged, "data.period_end", "must be after period_start 2025-02-01T00:00:00Z, got 2025-01-01T00:00:00Z", set("data.period_end", "2025-01-01T00:00:00Z")),

	// invoice.*
	ok("valid invoice.payment_failed", TypeInvoicePaymentFailed),
	ok("payment_failed without reason", TypeInvoicePaymentFailed, del("data.failure_reason")),
	bad("invoice_id missing", TypeInvoicePaid, "data.invoice_id", "required", del("data.invoice_id")),
	bad("invoice amount negative", TypeInvoicePaid, "data.amount_minor", "must be >= 0, got -1", set("data.amount_minor", -1)),
	bad("invoice amount missing", TypeInvoicePaymentFailed, "data.amount_minor", "required", del("data.amount_minor")),
	bad("invoice currency missing", TypeInvoicePaid, "data.currency", "required", del("data.currency")),
	bad("failure_reason on paid", TypeInvoicePaid, "data.failure_reason", "only allowed on invoice.payment_failed", set("data.failure_reason", "x")),

	// user.*
	ok("valid user.removed", TypeUserRemoved),
	ok("user without role", TypeUserAdded, del("data.role")),
	bad("user_id missing", TypeUserAdded, "data.user_id", "required", del("data.user_id")),
	bad("user_id with space", TypeUserRemoved, "data.user_id", "must match", set("data.user_id", "usr 1")),
	bad("user role empty", TypeUserAdded, "data.role", "must not be empty", set("data.role", "")),

	// job.*
	ok("valid job.created", TypeJobCreated),
	ok("valid job.started", TypeJobStarted),
	ok("valid job.failed", TypeJobFailed),
	ok("job.created without duration", TypeJobCreated, del("data.media_duration_seconds")),
	ok("job.failed without processing_ms", TypeJobFailed, del("data.processing_ms")),
	ok("job.completed processing_ms zero", TypeJobCompleted, set("data.processing_ms", 0)),
	ok("job.completed integer duration", TypeJobCompleted, set("data.media_duration_seconds", 60)),
	ok("job.completed duration exactly 7 days", TypeJobCompleted, set("data.media_duration_seconds", 604800)),
	bad("job_id missing", TypeJobStarted, "data.job_id", "required", del("data.job_id")),
	bad("job user_id missing", TypeJobCreated, "data.user_id", "required", del("data.user_id")),
	bad("job model empty", TypeJobCompleted, "data.model", "must not be empty", set("data.model", "")),
	bad("job model too long", TypeJobCompleted, "data.model", "at most 64 characters", set("data.model", long65)),
	bad("job language missing", TypeJobFailed, "data.language", "required", del("data.language")),
	bad("job language too long", TypeJobCreated, "data.language", "at most 64 characters", set("data.language", long65)),
	bad("job created_at missing", TypeJobCompleted, "data.created_at", "required", del("data.created_at")),
	bad("job created_at after event time + 1h", TypeJobCompleted, "data.created_at", "after the event time 2025-03-14T09:26:53Z", set("data.created_at", "2025-03-14T10:30:00Z")),
	bad("job created_at without zone", TypeJobStarted, "data.created_at", "RFC 3339 timestamp with time zone", set("data.created_at", "2025-03-14T09:20:11")),
	bad("completed duration missing", TypeJobCompleted, "data.media_duration_seconds", "required", del("data.media_duration_seconds")),
	bad("completed duration zero", TypeJobCompleted, "data.media_duration_seconds", "must be > 0, got 0", set("data.media_duration_seconds", 0)),
	bad("completed duration negative", TypeJobCompleted, "data.media_duration_seconds", "must be > 0, got -3", set("data.media_duration_seconds", -3)),
	bad("completed duration over 7 days", TypeJobCompleted, "data.media_duration_seconds", "must be <= 604800 (7 days), got 604801", set("data.media_duration_seconds", 604801)),
	bad("completed duration as string", TypeJobCompleted, "data.media_duration_seconds", "must be a number, got string", set("data.media_duration_seconds", "1834.52")),
	bad("completed duration null", TypeJobCompleted, "data.media_duration_seconds", "must be a number, got null", set("data.media_duration_seconds", nil)),
	bad("created duration zero", TypeJobCreated, "data.media_duration_seconds", "must be > 0", set("data.media_duration_seconds", 0)),
	bad("completed processing_ms missing", TypeJobCompleted, "data.processing_ms", "required", del("data.processing_ms")),
	bad("completed processing_ms negative", TypeJobCompleted, "data.processing_ms", "must be >= 0, got -1", set("data.processing_ms", -1)),
	bad("completed processing_ms fractional", TypeJobCompleted, "data.processing_ms", "must be an integer, got 1.5", set("data.processing_ms", 1.5)),
	bad("failed error_code missing", TypeJobFailed, "data.error_code", "required", del("data.error_code")),
	bad("failed error_code empty", TypeJobFailed, "data.error_code", "must not be empty", set("data.error_code", "")),
	bad("failed processing_ms negative", TypeJobFailed, "data.processing_ms", "must be >= 0, got -5", set("data.processing_ms", -5)),
	bad("error_code on completed", TypeJobCompleted, "data.error_code", "only allowed on job.failed", set("data.error_code", "x")),
	bad("error_message on started", TypeJobStarted, "data.error_message", "only allowed on job.failed", set("data.error_message", "x")),
	bad("job field typo", TypeJobCompleted, "data.media_duration_secs", "unknown field for job.completed", set("data.media_duration_secs", 1)),
	bad("job field camel case", TypeJobCompleted, "data.mediaDurationSeconds", `did you mean "media_duration_seconds"?`, set("data.mediaDurationSeconds", 1)),
	bad("job field transposed", TypeJobCompleted, "data.lagnuage", `did you mean "language"?`, set("data.lagnuage", "en")),
	bad("job unknown nested field", TypeJobCompleted, "data.meta", "unknown field for job.completed (allowed: job_id, user_id, model, language, created_at, media_duration_seconds, processing_ms)",
		set("data.meta", map[string]any{"a": []any{1, map[string]any{"b": nil}}})),

	// custom_model.*
	ok("valid custom_model.updated", TypeCustomModelUpdated),
	ok("custom model without shared", TypeCustomModelCreated, del("data.shared")),
	bad("model_id missing", TypeCustomModelCreated, "data.model_id", "required", del("data.model_id")),
	bad("custom model name missing", TypeCustomModelCreated, "data.name", "required", del("data.name")),
	bad("base_model missing", TypeCustomModelUpdated, "data.base_model", "required", del("data.base_model")),
	bad("custom model language missing", TypeCustomModelCreated, "data.language", "required", del("data.language")),
	bad("shared as string", TypeCustomModelCreated, "data.shared", "must be a boolean, got string", set("data.shared", "yes")),

	// system.notice
	ok("notice without link", TypeSystemNotice, del("data.link")),
	bad("notice_id missing", TypeSystemNotice, "data.notice_id", "required", del("data.notice_id")),
	bad("notice title missing", TypeSystemNotice, "data.title", "required", del("data.title")),
	bad("notice body missing", TypeSystemNotice, "data.body", "required", del("data.body")),
	bad("notice body empty", TypeSystemNotice, "data.body", "must not be empty", set("data.body", "")),
	bad("notice severity unknown", TypeSystemNotice, "data.severity", "must be one of info|warning|critical", set("data.severity", "urgent")),
	bad("notice severity missing", TypeSystemNotice, "data.severity", "required", del("data.severity")),
	bad("notice link not http", TypeSystemNotice, "data.link", "must match ^https?://", set("data.link", "ftp://example.com/x")),

	// JSON level (raw input)
	{name: "empty input", raw: "", field: "", reason: "invalid JSON at offset 0: unexpected end of input"},
	{name: "not an object", raw: `[1,2]`, field: "", reason: "event must be a JSON object, got array"},
	{name: "truncated", raw: `{"specversion":"1.0","id":"e1"`, field: "", reason: "invalid JSON at offset 30"},
	{name: "truncated inside data", raw: `{"type":"job.started","data":{"job_id":`, field: "data.job_id", reason: "unexpected end of input"},
	{name: "trailing data", raw: `{} x`, field: "", reason: "unexpected data after the event object"},
	{name: "unquoted key", raw: `{id:"e1"}`, field: "", reason: "expected string key"},
	{name: "invalid number", raw: `{"data":{"x":01}}`, field: "data", reason: "expected ',' or '}'"},
	{name: "invalid UTF-8", raw: "{\"id\":\"e\xff1\"}", field: "id", reason: "invalid UTF-8 in string"},
	{name: "control character", raw: "{\"id\":\"e\n1\"}", field: "id", reason: "control character in string"},
	{name: "bad escape", raw: `{"id":"e\x1"}`, field: "id", reason: `invalid escape "\\x"`},
	{name: "deep nesting", raw: `{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, field: "x", reason: "nesting too deep"},
	{name: "duplicate attribute", raw: `{"id":"e1","id":"e2"}`, field: "id", reason: "duplicate key", n: -2},
	{name: "duplicate data field", raw: `{"type":"user.added","data":{"user_id":"u1","user_id":"u2"}}`, field: "data.user_id", reason: "duplicate key", n: -2},
}

func TestDecodeRules(t *testing.T) {
	for _, tc := range ruleCases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.raw != "" || tc.typ == "" {
				checkRule(t, tc, []byte(tc.raw))
				return
			}
			for _, typeFirst := range []bool{true, false} {
				env, data := exampleMap(t, tc.typ)
				for _, e := range tc.edits {
					e(env, data)
				}
				raw := encode(t, env, typeFirst)
				checkRule(t, tc, raw)
			}
		})
	}
}

func checkRule(t *testing.T, tc ruleCase, raw []byte) {
	t.Helper()
	e, err := DecodeAt(raw, testNow)
	if tc.n == -1 {
		if err != nil {
			t.Fatalf("DecodeAt(%s): %v", raw, err)
		}
		if e == nil {
			t.Fatal("nil event without error")
		}
		return
	}
	if err == nil {
		t.Fatalf("DecodeAt(%s) accepted the event; want %s: %s", raw, tc.field, tc.reason)
	}
	ve := asValidationError(t, err)
	if !hasProblem(ve, tc.field, tc.reason) {
		t.Fatalf("want problem %q: ...%q...; got %v", tc.field, tc.reason, ve.Problems)
	}
	// Single-rule cases must report exactly that problem, nothing derived.
	if want := max(tc.n, 1); tc.raw == "" && len(ve.Problems) != want {
		t.Errorf("got %d problems, want %d: %v", len(ve.Problems), want, ve.Problems)
	}
	if e != nil {
		t.Error("event returned with an error")
	}
}

func TestValidationErrorText(t *testing.T) {
	env, data := exampleMap(t, TypeJobCompleted)
	env["id"] = "evt-1"
	env["time"] = "2025-03-14 09:26:53"
	delete(data, "media_duration_seconds")
	data["processing_ms"] = -5
	data["lang"] = "en"
	_, err := DecodeAt(encode(t, env, true), testNow)
	ve := asValidationError(t, err)
	if ve.Index != -1 || ve.EventID != "evt-1" || ve.EventType != TypeJobCompleted {
		t.Errorf("Index, EventID, EventType = %d, %q, %q", ve.Index, ve.EventID, ve.EventType)
	}
	want := []FieldError{
		{"time", `must be an RFC 3339 timestamp with time zone like 2006-01-02T15:04:05Z, got "2025-03-14 09:26:53"`},
		{"data.processing_ms", "must be >= 0, got -5"},
		{"data.lang", `unknown field for job.completed; did you mean "language"?`},
		{"data.media_duration_seconds", "required"},
	}
	for _, w := range want {
		if !hasProblem(ve, w.Field, w.Reason) {
			t.Errorf("missing problem %v in %v", w, ve.Problems)
		}
	}
	if len(ve.Problems) != len(want) {
		t.Errorf("got %d problems, want %d: %v", len(ve.Problems), len(want), ve.Problems)
	}
	msg := ve.Error()
	if !strings.HasPrefix(msg, `event "evt-1" (job.completed): `) {
		t.Errorf("Error() = %q", msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w.String()) {
			t.Errorf("Error() lacks %q: %s", w.String(), msg)
		}
	}
	ve.Index = 3
	if got := ve.Error(); !strings.HasPrefix(got, `event #3 "evt-1" (job.completed): `) {
		t.Errorf("Error() with index = %q", got)
	}
}

// The sample error in README.md is real output.
func TestReadmeErrorSample(t *testing.T) {
	env, data := exampleMap(t, TypeJobCompleted)
	env["id"] = "evt_01J9ZK3M"
	env["time"] = "2025-03-14 09:26:53"
	delete(data, "media_duration_seconds")
	data["processing_ms"] = -5
	_, err := DecodeAt(encode(t, env, true), testNow)
	ve := asValidationError(t, err)
	ve.Index = 3
	readme, rerr := os.ReadFile("README.md")
	if rerr != nil {
		t.Fatal(rerr)
	}
	if !strings.Contains(string(readme), "\n"+ve.Error()+"\n") {
		t.Errorf("README.md should show the error as Decode writes it:\n%s", ve.Error())
	}
}

func TestValidationErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		err  ValidationError
		want string
	}{
		{"contract example", ValidationError{Index: -1, EventID: "id-1", EventType: "job.completed",
			Problems: []FieldError{{"data.media_duration_seconds", "required"}, {"time", "x"}}},
			`event "id-1" (job.completed): data.media_duration_seconds: required; time: x`},
		{"index zero", ValidationError{Index: 0, EventID: "a", Problems: []FieldError{{"id", "r"}}}, `event #0 "a": id: r`},
		{"no id or type", ValidationError{Index: -1, Problems: []FieldError{{"", "invalid JSON"}}}, `event: invalid JSON`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestProblemsAreCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"type":"user.added","data":{`)
	for i := range 100 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"x` + strings.Repeat("y", i) + `":1`)
	}
	b.WriteString(`}}`)
	_, err := DecodeAt([]byte(b.String()), testNow)
	ve := asValidationError(t, err)
	if len(ve.Problems) != maxProblems+1 {
		t.Fatalf("got %d problems, want %d", len(ve.Problems), maxProblems+1)
	}
	if last := ve.Problems[maxProblems]; !strings.Contains(last.Reason, "more problems not shown") {
		t.Errorf("last problem = %v", last)
	}
}

func TestDecodeTooLarge(t *testing.T) {
	raw := make([]byte, MaxEventBytes+1)
	_, err := DecodeAt(raw, testNow)
	if ve := asValidationError(t, err); !hasProblem(ve, "", "more than the limit") {
		t.Errorf("got %v", ve.Problems)
	}
}

func TestDecodeUsesCurrentTime(t *testing.T) {
	env, data := exampleMap(t, TypeJobCompleted)
	future := time.Now().Add(3 * time.Hour).UTC().Format(time.RFC3339)
	env["time"] = future
	data["created_at"] = future
	if _, err := Decode(encode(t, env, true)); err == nil || !hasProblem(asValidationError(t, err), "time", "in the future") {
		t.Errorf("Decode(time now+3h) = %v, want a future-time error", err)
	}
	ex, _ := Example(TypeJobCompleted)
	if _, err := Decode(ex); err != nil {
		t.Errorf("Decode(example) = %v", err)
	}
}

func TestDecodeStrings(t *testing.T) {
	// Escapes, as encoding/json reads them; keys may be escaped too.
	raw := `{"specversion":"1.0","\u0069d":"e1","type":"system.notice","source":"/s\/p \"q\" \u00e9\ud83d\ude00\ud800x\t","time":"2025-03-14T09:00:00Z",` +
		`"data":{"notice_id":"n1","title":"caf\u00e9 ☕","body":"line1\nline2\\","severity":"info"}}`
	e, err := DecodeAt([]byte(raw), testNow)
	if err != nil {
		t.Fatal(err)
	}
	var want Event
	if err := json.Unmarshal([]byte(raw), &want); err != nil {
		t.Fatal(err)
	}
	if e.ID != want.ID || e.Source != want.Source {
		t.Errorf("ID, Source = %q, %q; want %q, %q", e.ID, e.Source, want.ID, want.Source)
	}
	d, err := e.SystemNoticeData()
	if err != nil {
		t.Fatal(err)
	}
	if d.Title != "café ☕" || d.Body != "line1\nline2\\" {
		t.Errorf("data = %+v", d)
	}
}

func TestDecodeDoesNotAliasInput(t *testing.T) {
	raw, _ := Example(TypeJobCompleted)
	raw = bytes.Clone(raw)
	e, err := DecodeAt(raw, testNow)
	if err != nil {
		t.Fatal(err)
	}
	id, data := e.ID, string(e.Data)
	for i := range raw {
		raw[i] = 'x'
	}
	if e.ID != id || string(e.Data) != data {
		t.Error("the event changed when the input buffer was overwritten")
	}
}

func TestValidateGoEvents(t *testing.T) {
	created := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	jobData := func(d JobData) json.RawMessage {
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	base := func() Event {
		return Event{
			SpecVersion: SpecVersion, ID: "e1", Type: TypeJobCompleted, Source: "/go",
			Time: created.Add(time.Minute), ResellerID: "r1", OrgID: "o1",
			Data: jobData(JobData{JobID: "j1", UserID: "u1", Model: "m", Language: "en", CreatedAt: created,
				MediaDurationSeconds: 12.5, ProcessingMS: 0}),
		}
	}
	tests := []struct {
		name   string
		edit   func(e *Event)
		field  string
		reason string
	}{
		{"valid, processing_ms 0 is sent", func(e *Event) {}, "", ""},
		{"zero time", func(e *Event) { e.Time = time.Time{} }, "time", "required"},
		{"empty id", func(e *Event) { e.ID = "" }, "id", "required"},
		{"bad specversion", func(e *Event) { e.SpecVersion = "0.3" }, "specversion", `must be "1.0"`},
		{"future", func(e *Event) { e.Time = testNow.Add(2 * time.Hour) }, "time", "in the future"},
		{"no data", func(e *Event) { e.Data = nil }, "data", "required"},
		{"data not JSON", func(e *Event) { e.Data = json.RawMessage(`{"job_id":`) }, "data.job_id", "invalid JSON at offset 10: unexpected end of input"},
		{"data trailing garbage", func(e *Event) { e.Data = append(bytes.Clone(e.Data), " }"...) }, "data", "unexpected data after the data object"},
		{"data zero created_at", func(e *Event) {
			e.Data = jobData(JobData{JobID: "j1", UserID: "u1", Model: "m", Language: "en", MediaDurationSeconds: 1})
		}, "data.created_at", "between 1970-01-01 and 2105-12-31"},
		{"missing org", func(e *Event) { e.OrgID = "" }, "orgid", "required for job.completed"},
		{"bad reseller", func(e *Event) { e.ResellerID = "r/1" }, "resellerid", "must match"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := base()
			tc.edit(&e)
			err := e.ValidateAt(testNow)
			if tc.field == "" && tc.reason == "" {
				if err != nil {
					t.Fatalf("ValidateAt: %v", err)
				}
				// What the Go publisher sends must decode to the same event.
				raw, err := json.Marshal(&e)
				if err != nil {
					t.Fatal(err)
				}
				got, err := DecodeAt(raw, testNow)
				if err != nil {
					t.Fatalf("DecodeAt(Marshal(e)): %v", err)
				}
				if !got.Time.Equal(e.Time) || got.ID != e.ID || !bytes.Equal(got.Data, e.Data) {
					t.Errorf("round trip: got %+v, want %+v", got, e)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateAt accepted; want %s: %s", tc.field, tc.reason)
			}
			if ve := asValidationError(t, err); !hasProblem(ve, tc.field, tc.reason) || ve.EventID != e.ID || ve.EventType != e.Type {
				t.Errorf("got %v (id %q, type %q)", ve.Problems, ve.EventID, ve.EventType)
			}
		})
	}
}

func TestValidToken(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"r1", true}, {"R_1-x", true}, {strings.Repeat("a", 64), true},
		{"", false}, {strings.Repeat("a", 65), false}, {"r.1", false}, {"r 1", false},
		{"r*", false}, {"r>", false}, {"ü", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := ValidToken(tc.in); got != tc.want {
				t.Errorf("ValidToken(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}
