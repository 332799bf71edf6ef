package schemas

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// benchEvent is a typical job.completed as the platform sends it: compact,
// no optional attributes, 367 bytes.
const benchEvent = `{"specversion":"1.0","id":"evt_01J9ZK3M7Q8R2T4V6W8Y0A2C4E","type":"job.completed",` +
	`"source":"/platform/jobs","time":"2025-03-14T09:26:53.589Z","resellerid":"r_acme","orgid":"org_7f3a",` +
	`"data":{"job_id":"job_8c1e2b","user_id":"usr_42","model":"whisper-large-v3","language":"en",` +
	`"created_at":"2025-03-14T09:20:11Z","media_duration_seconds":1834.52,"processing_ms":95210}}`

func benchInput(tb testing.TB) ([]byte, time.Time) {
	tb.Helper()
	raw := []byte(benchEvent)
	if !json.Valid(raw) {
		tb.Fatal("benchEvent is not JSON")
	}
	return raw, mustTime(tb, "2025-03-14T10:00:00Z")
}

// BenchmarkDecode: go test ./schemas -run '^$' -bench Decode -benchmem
func BenchmarkDecode(b *testing.B) {
	raw, now := benchInput(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeAt(raw, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeJobData(b *testing.B) {
	raw, now := benchInput(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		e, err := DecodeAt(raw, now)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.JobData(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	raw, now := benchInput(b)
	e, err := DecodeAt(raw, now)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := e.ValidateAt(now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodingJSON is the baseline: encoding/json into Event and
// JobData, without any validation.
func BenchmarkEncodingJSON(b *testing.B) {
	raw, _ := benchInput(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var e Event
		if err := json.Unmarshal(raw, &e); err != nil {
			b.Fatal(err)
		}
		var d JobData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBenchEventSize(t *testing.T) {
	raw, now := benchInput(t)
	if n := len(raw); n < 330 || n > 370 {
		t.Errorf("benchEvent is %d bytes, want about 350", n)
	}
	if _, err := DecodeAt(raw, now); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeAllocations(t *testing.T) {
	raw, now := benchInput(t)
	// The copy of the input, the event, its data and the parsed data values
	// (kept for the typed accessors); nothing per field.
	if n := testing.AllocsPerRun(100, func() { _, _ = DecodeAt(raw, now) }); n > 4 {
		t.Errorf("DecodeAt allocates %v times, want <= 4", n)
	}
	// The typed accessor reuses what DecodeAt parsed: one allocation for
	// the result.
	e, err := DecodeAt(raw, now)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = e.JobData() }); n > 1 {
		t.Errorf("JobData after DecodeAt allocates %v times, want <= 1", n)
	}
}

func TestDataAccessorAfterDataReplaced(t *testing.T) {
	raw, now := benchInput(t)
	e, err := DecodeAt(raw, now)
	if err != nil {
		t.Fatal(err)
	}
	before, err := e.JobData()
	if err != nil {
		t.Fatal(err)
	}
	e.Data = []byte(strings.Replace(string(e.Data), before.JobID, "job-replaced", 1))
	after, err := e.JobData()
	if err != nil {
		t.Fatal(err)
	}
	if after.JobID != "job-replaced" {
		t.Errorf("JobData after replacing Data: job_id %q, want the new data's job-replaced", after.JobID)
	}
	if _, err := e.OrganizationData(); err == nil {
		t.Error("OrganizationData of a job event: no error")
	}
}
