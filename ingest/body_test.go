package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestCompactor(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string // compacted; "" when invalid
		wantCol int    // column of the error
	}{
		{"object", "{ \"a\" : 1 ,\n \"b\":[ true, false ,null ] }", `{"a":1,"b":[true,false,null]}`, 0},
		{"string keeps spaces", `{"a": " x\ty "}`, `{"a":" x\ty "}`, 0},
		{"escapes", `{"a":"\"\\\/\b\f\n\r\t\u00e9"}`, `{"a":"\"\\\/\b\f\n\r\t\u00e9"}`, 0},
		{"numbers", `[0, -1, 1.5, 2e10, -3.25E-2, 10]`, `[0,-1,1.5,2e10,-3.25E-2,10]`, 0},
		{"empty containers", `{"a":{},"b":[]}`, `{"a":{},"b":[]}`, 0},
		{"unicode", `{"a":"日本"}`, `{"a":"日本"}`, 0},
		{"leading zero", `{"a":01}`, "", 7},
		{"bare minus", `{"a":-}`, "", 7},
		{"dot without digits", `{"a":1.}`, "", 8},
		{"bad exponent", `{"a":1e}`, "", 8},
		{"bad escape", `{"a":"\x"}`, "", 8},
		{"short unicode escape", `{"a":"\u12"}`, "", 8},
		{"raw newline in string", "{\"a\":\"x\ny\"}", "", 8},
		{"single quotes", `{'a':1}`, "", 2},
		{"missing colon", `{"a" 1}`, "", 6},
		{"trailing comma", `{"a":1,}`, "", 8},
		{"bad literal", `{"a":tru}`, "", 6},
		{"unterminated", `{"a":"x`, "", 8},
		{"too deep", strings.Repeat("[", 70) + strings.Repeat("]", 70), "", 65},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := compactor{in: []byte(tt.in)}
			ok := c.value(0)
			if tt.want != "" {
				if !ok {
					t.Fatalf("error %q at %d", c.err, c.i)
				}
				if string(c.out) != tt.want {
					t.Errorf("out %s, want %s", c.out, tt.want)
				}
				return
			}
			if ok {
				t.Fatalf("accepted invalid JSON, out %s", c.out)
			}
			if se := syntaxAt(c.in, c.i, 1, c.err); se.Column != tt.wantCol {
				t.Errorf("error %v: column %d, want %d", se, se.Column, tt.wantCol)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name      string
		f         format
		body      string
		wantRaw   []string
		wantLines []int
		wantErr   error
	}{
		{"json object", formatJSON, " {\"a\": 1}\n", []string{`{"a":1}`}, []int{0}, nil},
		{"json array", formatJSON, "[{\"a\": 1},\n {\"b\": 2}]", []string{`{"a":1}`, `{"b":2}`}, []int{0, 0}, nil},
		{"ndjson", formatNDJSON, "{\"a\": 1}\r\n\n {\"b\": 2}", []string{`{"a":1}`, `{"b":2}`}, []int{1, 3}, nil},
		{"ndjson bad line kept", formatNDJSON, "{\"a\": 1}\n{\"b\": \n{\"c\":3}\n", []string{`{"a":1}`, ``, `{"c":3}`}, []int{1, 2, 3}, nil},
		{"batch limit", formatJSON, "[{},{},{},{}]", nil, nil, &BatchTooLargeError{}},
		{"ndjson batch limit", formatNDJSON, "{}\n{}\n{}\n{}", nil, nil, &BatchTooLargeError{}},
		{"empty", formatNDJSON, "\n \n", nil, nil, ErrNoEvents},
		{"syntax", formatJSON, "[{}\n{}]", nil, nil, &SyntaxError{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := split(tt.f, []byte(tt.body), 3)
			if tt.wantErr != nil {
				if err == nil || !(errors.Is(err, tt.wantErr) || sameType(err, tt.wantErr)) {
					t.Fatalf("err %v, want %T %v", err, tt.wantErr, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != len(tt.wantRaw) {
				t.Fatalf("%d events, want %d", len(evs), len(tt.wantRaw))
			}
			for i, ev := range evs {
				if string(ev.raw) != tt.wantRaw[i] || ev.line != tt.wantLines[i] {
					t.Errorf("event %d: %s line %d, want %s line %d", i, ev.raw, ev.line, tt.wantRaw[i], tt.wantLines[i])
				}
			}
		})
	}
}

func sameType(a, b error) bool {
	switch b.(type) {
	case *BatchTooLargeError:
		var x *BatchTooLargeError
		return errors.As(a, &x)
	case *SyntaxError:
		var x *SyntaxError
		return errors.As(a, &x)
	}
	return false
}

// FuzzCompactor checks the compactor against encoding/json.
func FuzzCompactor(f *testing.F) {
	for _, s := range []string{`{"a": [1, 2.5e3, "x\u0041"], "b": {"c": null}}`, `[true ,false]`, `"\ud83d\ude00"`, `-0.0E+1`, `{"a":}`, "\"\x01\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c := compactor{in: in}
		ok := c.value(0)
		if ok {
			ok = c.end() == nil
		}
		var want bytes.Buffer
		valid := json.Compact(&want, in) == nil
		if !ok && valid && c.err == "nested too deeply" {
			return
		}
		if ok != valid {
			t.Fatalf("compactor ok=%v, encoding/json valid=%v for %q (err %q)", ok, valid, in, c.err)
		}
		if ok && !bytes.Equal(c.out, want.Bytes()) {
			t.Fatalf("compact %q, want %q", c.out, want.Bytes())
		}
	})
}
