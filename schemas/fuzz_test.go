package schemas

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecode checks that Decode never panics, that it only accepts valid
// JSON, that every rejection is a *ValidationError with problems, and that
// an accepted event also passes Validate, its typed accessor and a
// re-encoding round trip.
//
//	go test ./schemas -run '^$' -fuzz FuzzDecode -fuzztime 60s
func FuzzDecode(f *testing.F) {
	for _, typ := range Types {
		ex, _ := Example(typ)
		f.Add(ex)
	}
	for _, tc := range ruleCases {
		if tc.raw != "" {
			f.Add([]byte(tc.raw))
		}
	}
	f.Add([]byte(`{"id":"\ud83d\ude00","data":{"a":[{"b":[1e5,-0.5,true,null,"\u0000"]}]}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := DecodeAt(raw, testNow)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("error %v (%T) is not a *ValidationError with problems", err, err)
			}
			_ = ve.Error()
			if e != nil {
				t.Fatal("event returned with an error")
			}
			return
		}
		if !json.Valid(raw) {
			t.Fatalf("accepted invalid JSON %q", raw)
		}
		if err := e.ValidateAt(testNow); err != nil {
			t.Fatalf("Decode accepted what Validate rejects: %v", err)
		}
		if _, err := typedData(e); err != nil {
			t.Fatalf("accessor: %v", err)
		}
		again, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeAt(again, testNow); err != nil {
			t.Fatalf("re-encoded event rejected: %v\n%s", err, again)
		}
	})
}
