package schemas

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// compileSchemas compiles every embedded schema file; the envelope refers
// to the type files by their $id.
func compileSchemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	names := append([]string{"envelope"}, Types...)
	for _, name := range names {
		raw, ok := JSONSchema(name)
		if !ok {
			t.Fatalf("JSONSchema(%q) missing", name)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := c.AddResource(schemaBaseURL+name+".json", doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	m := map[string]*jsonschema.Schema{}
	for _, name := range names {
		s, err := c.Compile(schemaBaseURL + name + ".json")
		if err != nil {
			t.Fatalf("compile %s: %v", name, err)
		}
		m[name] = s
	}
	return m
}

func schemaValidate(t *testing.T, s *jsonschema.Schema, raw []byte) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

func TestExamples(t *testing.T) {
	schemas := compileSchemas(t)
	files, err := filepath.Glob("examples/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(Types) {
		t.Errorf("examples/ holds %d files, want one per type (%d)", len(files), len(Types))
	}
	for _, typ := range Types {
		t.Run(typ, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("examples", typ+".json"))
			if err != nil {
				t.Fatal(err)
			}
			e, err := DecodeAt(raw, testNow)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if e.Type != typ {
				t.Errorf("type = %q", e.Type)
			}
			if err := schemaValidate(t, schemas[typ], raw); err != nil {
				t.Errorf("v1/%s.json rejects the example: %v", typ, err)
			}
			if err := schemaValidate(t, schemas["envelope"], raw); err != nil {
				t.Errorf("v1/envelope.json rejects the example: %v", err)
			}
			if _, err := typedData(e); err != nil {
				t.Errorf("typed accessor: %v", err)
			}
			// Re-encoding the decoded event must give an equal event.
			again, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			e2, err := DecodeAt(again, testNow)
			if err != nil {
				t.Fatalf("Decode(Marshal(event)): %v", err)
			}
			var d1, d2 bytes.Buffer
			_ = json.Compact(&d1, e.Data)
			_ = json.Compact(&d2, e2.Data)
			if !e2.Time.Equal(e.Time) || e2.ID != e.ID || d1.String() != d2.String() {
				t.Errorf("round trip differs: %s %s %s\nvs %s %s %s", e2.ID, e2.Time, d2.String(), e.ID, e.Time, d1.String())
			}
		})
	}
}

// typedData calls the accessor of e's type and returns its result.
func typedData(e *Event) (any, error) {
	switch typeSpecs[e.Type].family {
	case "organization":
		return e.OrganizationData()
	case "subscription":
		return e.SubscriptionData()
	case "invoice":
		return e.InvoiceData()
	case "user":
		return e.UserData()
	case "job":
		return e.JobData()
	case "custom_model":
		return e.CustomModelData()
	default:
		return e.SystemNoticeData()
	}
}

// Rules the JSON Schema files cannot express; every other rule case must be
// decided the same way by Decode and by the schema files.
var notInJSONSchema = map[string]bool{
	"time 2m in the future":                true,
	"time before 1970":                     true,
	"org created_at after event":           true,
	"job created_at after event time + 1h": true,
	"sub period_end equals start":          true,
	"sub period_end before start":          true,
	"sub quota overflows":                  true,
}

func TestRulesAgreeWithJSONSchema(t *testing.T) {
	schemas := compileSchemas(t)
	for _, tc := range ruleCases {
		if tc.raw != "" || tc.typ == "" || notInJSONSchema[tc.name] {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			env, data := exampleMap(t, tc.typ)
			for _, e := range tc.edits {
				e(env, data)
			}
			raw := encode(t, env, true)
			_, decErr := DecodeAt(raw, testNow)
			for _, name := range []string{tc.typ, "envelope"} {
				if name == tc.typ && env["type"] != tc.typ {
					continue // the type file only describes its own type
				}
				schErr := schemaValidate(t, schemas[name], raw)
				if (decErr == nil) != (schErr == nil) {
					t.Errorf("Decode: %v\nv1/%s.json: %v", decErr, name, schErr)
				}
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	decode := func(t *testing.T, typ string) *Event {
		ex, _ := Example(typ)
		e, err := DecodeAt(ex, testNow)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	ts := func(s string) time.Time { return mustTime(t, s) }
	tests := []struct {
		typ  string
		get  func(e *Event) (any, error)
		want any
	}{
		{TypeJobCompleted, func(e *Event) (any, error) { return e.JobData() }, &JobData{
			JobID: "job_8c1e2b", UserID: "usr_42", Model: "whisper-large-v3", Language: "en",
			CreatedAt: ts("2025-03-14T09:20:11Z"), MediaDurationSeconds: 1834.52, ProcessingMS: 95210}},
		{TypeJobFailed, func(e *Event) (any, error) { return e.JobData() }, &JobData{
			JobID: "job_d41f07", UserID: "usr_42", Model: "whisper-large-v3", Language: "de",
			CreatedAt: ts("2025-03-14T11:01:58Z"), ProcessingMS: 2310, ErrorCode: "media_unreadable",
			ErrorMessage: "no audio stream found in uploaded file"}},
		{TypeOrganizationUpdated, func(e *Event) (any, error) { return e.OrganizationData() }, &OrganizationData{
			Name: "Acme Transcripts GmbH", Plan: "enterprise", Status: "active", CreatedAt: ts("2025-01-06T08:00:00Z")}},
		{TypeSubscriptionChanged, func(e *Event) (any, error) { return e.SubscriptionData() }, &SubscriptionData{
			Plan: "enterprise", Status: "active", QuotaMinutes: 50000, PriceMinor: 149900, Currency: "EUR",
			PeriodStart: ts("2025-02-01T00:00:00Z"), PeriodEnd: ts("2025-03-01T00:00:00Z")}},
		{TypeInvoicePaymentFailed, func(e *Event) (any, error) { return e.InvoiceData() }, &InvoiceData{
			InvoiceID: "inv_2025_03_0043", AmountMinor: 4900, Currency: "USD", FailureReason: "card_declined"}},
		{TypeUserAdded, func(e *Event) (any, error) { return e.UserData() }, &UserData{UserID: "usr_42", Role: "admin"}},
		{TypeCustomModelUpdated, func(e *Event) (any, error) { return e.CustomModelData() }, &CustomModelData{
			ModelID: "cm_legal_de_v1", Name: "Legal German", BaseModel: "whisper-large-v3", Language: "de", Shared: true}},
		{TypeSystemNotice, func(e *Event) (any, error) { return e.SystemNoticeData() }, &SystemNoticeData{
			NoticeID: "ntc_2025_03_maint", Title: "Scheduled maintenance on 16 March",
			Body:     "Transcription queues pause from 02:00 to 02:30 UTC. Submitted jobs are kept and resume automatically.",
			Severity: "warning", Link: "https://status.example.com/incidents/2025-03-16"}},
	}
	for _, tc := range tests {
		t.Run(tc.typ, func(t *testing.T) {
			e := decode(t, tc.typ)
			got, err := tc.get(e)
			if err != nil {
				t.Fatal(err)
			}
			// The accessor must agree with encoding/json on the same data.
			ref := reflectNew(tc.want)
			if err := json.Unmarshal(e.Data, ref); err != nil {
				t.Fatal(err)
			}
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(tc.want)
			rb, _ := json.Marshal(ref)
			if !bytes.Equal(gb, wb) || !bytes.Equal(gb, rb) {
				t.Errorf("got  %s\nwant %s\njson %s", gb, wb, rb)
			}
		})
	}
	t.Run("wrong type", func(t *testing.T) {
		e := decode(t, TypeUserAdded)
		if _, err := e.JobData(); err == nil || !strings.Contains(err.Error(), `has type "user.added", not a job.* event`) {
			t.Errorf("JobData on user.added: %v", err)
		}
	})
	t.Run("invalid data", func(t *testing.T) {
		e := decode(t, TypeJobCompleted)
		e.Data = json.RawMessage(`{"job_id":"j"}`)
		_, err := e.JobData()
		if ve := asValidationError(t, err); !hasProblem(ve, "data.user_id", "required") {
			t.Errorf("got %v", ve.Problems)
		}
	})
}

func reflectNew(v any) any {
	switch v.(type) {
	case *JobData:
		return new(JobData)
	case *OrganizationData:
		return new(OrganizationData)
	case *SubscriptionData:
		return new(SubscriptionData)
	case *InvoiceData:
		return new(InvoiceData)
	case *UserData:
		return new(UserData)
	case *CustomModelData:
		return new(CustomModelData)
	default:
		return new(SystemNoticeData)
	}
}

// The hand-written matchers must accept exactly what the documented
// regular expressions accept.
func TestPatternsMatchRegexps(t *testing.T) {
	samples := []string{
		"", "a", "A1_-", "a.b", "a b", "a/b", "a:b@c+d=e", "ü", "EUR", "eur", "EURO", "E1R",
		"http://x", "https://x/y?z", "https://", "ftp://x", "https://a b", "http://a\tb",
		strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 65),
		strings.Repeat("b", 128), strings.Repeat("b", 129), "x\n", "a*b", "a>b",
	}
	for _, p := range []*pattern{patID, patToken, patTokenOpt, patPlan, patCurrency, patLink} {
		re := regexp.MustCompile(p.re)
		for _, s := range samples {
			if got, want := p.match(s), re.MatchString(s); got != want {
				t.Errorf("%s: match(%q) = %v, regexp says %v", p.re, s, got, want)
			}
		}
	}
	timeRe := regexp.MustCompile(patTime)
	for _, s := range []string{
		"2025-03-14T09:26:53Z", "2025-03-14T09:26:53.5Z", "2025-03-14T09:26:53.123456789+01:00",
		"2025-03-14T09:26:53.1234567890Z", "2025-03-14T09:26:53", "2025-03-14 09:26:53Z",
		"2025-03-14t09:26:53z", "2025-03-14T09:26:53+0100", "2025-03-14T09:26:53.Z", "2025-3-14T09:26:53Z",
		"2025-03-14T09:26:53-05:30", "x025-03-14T09:26:53Z",
	} {
		if got, want := rfc3339Shape(s), timeRe.MatchString(s); got != want {
			t.Errorf("rfc3339Shape(%q) = %v, %s says %v", s, got, patTime, want)
		}
	}
}
