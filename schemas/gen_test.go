package schemas

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The JSON Schema files and the tables in README.md are generated from the
// spec tables (spec.go); this test fails when they drift. Regenerate with
//
//	go test ./schemas -run TestGenerated -update
var update = flag.Bool("update", false, "rewrite generated schema files and README sections")

const schemaBaseURL = "https://github.com/tallyhq/tally/schemas/" + SchemaVersion + "/"

// obj is a JSON object that keeps its key order.
type obj []kv

type kv struct {
	k string
	v any
}

func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := marshal(e.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

func indent(v any) []byte {
	raw, err := marshal(v)
	if err != nil {
		panic(err)
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		panic(err)
	}
	b.WriteByte('\n')
	return b.Bytes()
}

func fieldSchema(f *fieldSpec) obj {
	if f.forbidden != "" {
		return obj{{"description", "Not allowed: " + f.forbidden + "."}, {"not", obj{}}}
	}
	o := obj{{"description", stripMarkdown(f.doc)}}
	switch f.kind {
	case kindString:
		o = append(o, kv{"type", "string"})
		if len(f.enum) == 1 {
			o = append(o, kv{"const", f.enum[0]})
		} else if f.enum != nil {
			o = append(o, kv{"enum", f.enum})
		}
		if f.minLen > 0 {
			o = append(o, kv{"minLength", f.minLen})
		}
		if f.maxLen > 0 {
			o = append(o, kv{"maxLength", f.maxLen})
		}
		if f.pat != nil {
			o = append(o, kv{"pattern", f.pat.re})
		}
	case kindTime:
		o = append(o, kv{"type", "string"}, kv{"format", "date-time"}, kv{"pattern", patTime})
	case kindInt, kindFloat:
		t := "integer"
		if f.kind == kindFloat {
			t = "number"
		}
		o = append(o, kv{"type", t})
		if f.exclMin {
			o = append(o, kv{"exclusiveMinimum", f.min})
		} else {
			o = append(o, kv{"minimum", f.min})
		}
		if f.hasMax {
			o = append(o, kv{"maximum", f.max})
		}
	case kindBool:
		o = append(o, kv{"type", "boolean"})
	case kindObject:
		o = append(o, kv{"type", "object"})
	}
	return o
}

var mdLink = regexp.MustCompile("`([^`]*)`")

func stripMarkdown(s string) string { return mdLink.ReplaceAllString(s, "$1") }

func required(fields []fieldSpec) []string {
	r := []string{}
	for _, f := range fields {
		if f.required {
			r = append(r, f.name)
		}
	}
	return r
}

func dataSchema(ts *typeSpec) obj {
	props := obj{}
	for i := range ts.fields {
		props = append(props, kv{ts.fields[i].name, fieldSchema(&ts.fields[i])})
	}
	return obj{
		{"description", "data of " + ts.typ + "."},
		{"type", "object"},
		{"required", required(ts.fields)},
		{"additionalProperties", false},
		{"properties", props},
	}
}

// envelopeProps returns the envelope's properties; with ts set, they are
// narrowed to that type.
func envelopeProps(ts *typeSpec) obj {
	props := obj{}
	for i := range envelopeFields {
		f := envelopeFields[i]
		var s obj
		switch {
		case ts != nil && i == envType:
			s = obj{{"description", stripMarkdown(f.doc)}, {"const", ts.typ}}
		case ts != nil && i == envResellerID && ts.resellerRequired,
			ts != nil && i == envOrgID && ts.orgRequired:
			f.pat, f.minLen = patToken, 1
			s = fieldSchema(&f)
		case ts != nil && i == envData:
			s = dataSchema(ts)
		default:
			s = fieldSchema(&f)
		}
		props = append(props, kv{f.name, s})
	}
	return props
}

func envelopeRequired(ts *typeSpec) []string {
	r := required(envelopeFields[:])
	if ts.resellerRequired {
		r = append(r, "resellerid")
	}
	if ts.orgRequired {
		r = append(r, "orgid")
	}
	return r
}

func typeSchema(ts *typeSpec) obj {
	desc := ts.doc
	for _, n := range ts.notes {
		desc += " " + n
	}
	if ts.createdAtNotAfterEvent {
		desc += " data.created_at must not be more than 1h after time."
	}
	desc += " time must not be more than 1m in the future. Not expressible here: duplicate keys are rejected."
	return obj{
		{"$schema", "https://json-schema.org/draft/2020-12/schema"},
		{"$id", schemaBaseURL + ts.typ + ".json"},
		{"title", "tally " + ts.typ + " event (" + SchemaVersion + ")"},
		{"description", stripMarkdown(desc)},
		{"type", "object"},
		{"required", envelopeRequired(ts)},
		{"additionalProperties", false},
		{"properties", envelopeProps(ts)},
	}
}

func envelopeSchema() obj {
	var needReseller, needOrg []string
	var branches []any
	for _, t := range Types {
		ts := typeSpecs[t]
		if ts.resellerRequired {
			needReseller = append(needReseller, t)
		}
		if ts.orgRequired {
			needOrg = append(needOrg, t)
		}
		branches = append(branches, obj{
			{"if", obj{{"properties", obj{{"type", obj{{"const", t}}}}}, {"required", []string{"type"}}}},
			{"then", obj{{"properties", obj{{"data", obj{{"$ref", t + ".json#/properties/data"}}}}}}},
		})
	}
	cond := func(types []string, attr string) obj {
		return obj{
			{"if", obj{{"properties", obj{{"type", obj{{"enum", types}}}}}, {"required", []string{"type"}}}},
			{"then", obj{{"required", []string{attr}}, {"properties", obj{{attr, obj{{"minLength", 1}}}}}}},
		}
	}
	all := []any{cond(needReseller, "resellerid"), cond(needOrg, "orgid")}
	all = append(all, branches...)
	return obj{
		{"$schema", "https://json-schema.org/draft/2020-12/schema"},
		{"$id", schemaBaseURL + "envelope.json"},
		{"title", "tally event envelope (" + SchemaVersion + ")"},
		{"description", "CloudEvents 1.0 envelope of every tally event; data is checked against the type's file (<type>.json). " +
			"time must not be more than 1m in the future. Not expressible here: duplicate keys are rejected."},
		{"type", "object"},
		{"required", required(envelopeFields[:])},
		{"additionalProperties", false},
		{"properties", envelopeProps(nil)},
		{"allOf", all},
	}
}

// generatedSchemas maps file names under v1/ to their content.
func generatedSchemas() map[string][]byte {
	m := map[string][]byte{"envelope.json": indent(envelopeSchema())}
	for _, t := range Types {
		m[t+".json"] = indent(typeSchema(typeSpecs[t]))
	}
	return m
}

func TestGeneratedSchemaFiles(t *testing.T) {
	want := generatedSchemas()
	if *update {
		for name, content := range want {
			if err := os.WriteFile(filepath.Join("v1", name), content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, err := filepath.Glob("v1/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(want) {
		t.Errorf("v1/ holds %d files, want %d (envelope + one per type)", len(files), len(want))
	}
	for name, content := range want {
		t.Run(name, func(t *testing.T) {
			got, err := os.ReadFile(filepath.Join("v1", name))
			if err != nil {
				t.Fatalf("%v (regenerate with -update)", err)
			}
			if !bytes.Equal(got, content) {
				t.Errorf("v1/%s is out of date with spec.go; run go test ./schemas -run TestGenerated -update", name)
			}
			embedded, ok := JSONSchema(strings.TrimSuffix(name, ".json"))
			if !ok || !bytes.Equal(embedded, got) {
				t.Errorf("JSONSchema(%q) does not return the file", strings.TrimSuffix(name, ".json"))
			}
		})
	}
}

// --- README tables ---

func mdType(f *fieldSpec) string {
	switch f.kind {
	case kindTime:
		return "string (RFC 3339)"
	default:
		return f.kind.String()
	}
}

func mdRules(f *fieldSpec) string {
	var r []string
	if f.forbidden != "" {
		return "rejected: " + f.forbidden
	}
	switch f.kind {
	case kindString:
		if len(f.enum) == 1 {
			r = append(r, "`"+f.enum[0]+"`")
		} else if f.enum != nil {
			r = append(r, "one of `"+strings.Join(f.enum, "`, `")+"`")
		}
		if f.pat != nil {
			r = append(r, "`"+f.pat.re+"`")
		} else {
			switch {
			case f.minLen > 0 && f.maxLen > 0:
				r = append(r, fmt.Sprintf("%d–%d characters", f.minLen, f.maxLen))
			case f.maxLen > 0:
				r = append(r, fmt.Sprintf("at most %d characters", f.maxLen))
			}
		}
	case kindTime:
		r = append(r, "RFC 3339 with zone, 1970..2105")
	case kindInt, kindFloat:
		op := "≥"
		if f.exclMin {
			op = ">"
		}
		r = append(r, fmt.Sprintf("%s %s", op, formatFloat(f.min)))
		if f.hasMax {
			r = append(r, "≤ "+formatFloat(f.max)+maxNote(f))
		}
		if f.kind == kindInt {
			r = append(r, "integer")
		}
	}
	return strings.Join(r, "; ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func envelopeTable() string {
	var b strings.Builder
	b.WriteString("| attribute | type | required | meaning | rules |\n|---|---|---|---|---|\n")
	for i := range envelopeFields {
		f := &envelopeFields[i]
		req := yesNo(f.required)
		switch i {
		case envResellerID:
			req = "yes, except system.notice"
		case envOrgID:
			req = "see meaning"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", f.name, mdType(f), req, f.doc, mdRules(f))
	}
	return b.String()
}

func typeSection(ts *typeSpec, example []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### `%s`\n\n%s", ts.typ, ts.doc)
	tenant := "resellerid required"
	if !ts.resellerRequired {
		tenant = "resellerid optional (empty = all resellers)"
	}
	if ts.orgRequired {
		tenant += ", orgid required"
	} else {
		tenant += ", orgid optional"
	}
	fmt.Fprintf(&b, " Envelope: %s. JSON Schema: [`v1/%s.json`](v1/%s.json).\n\n", tenant, ts.typ, ts.typ)
	b.WriteString("| field | type | required | meaning | constraints |\n|---|---|---|---|---|\n")
	for i := range ts.fields {
		f := &ts.fields[i]
		req := yesNo(f.required)
		if f.forbidden != "" {
			req = "—"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", f.name, mdType(f), req, f.doc, mdRules(f))
	}
	var notes []string
	notes = append(notes, ts.notes...)
	if ts.createdAtNotAfterEvent {
		notes = append(notes, "`created_at` must not be more than 1h after the event `time`.")
	}
	for _, n := range notes {
		b.WriteString("\n" + n + "\n")
	}
	fmt.Fprintf(&b, "\n<details><summary>Example</summary>\n\n```json\n%s```\n\n</details>\n", example)
	return b.String()
}

func generatedReadmeTypes(t *testing.T) string {
	var parts []string
	for _, typ := range Types {
		ex, err := os.ReadFile(filepath.Join("examples", typ+".json"))
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, typeSection(typeSpecs[typ], ex))
	}
	return strings.Join(parts, "\n")
}

// replaceSection swaps the text between <!-- BEGIN name --> and
// <!-- END name -->.
func replaceSection(doc, name, content string) (string, error) {
	begin, end := "<!-- BEGIN "+name+" -->\n", "<!-- END "+name+" -->"
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if i < 0 || j < i {
		return "", fmt.Errorf("README.md lacks the %q markers", name)
	}
	return doc[:i+len(begin)] + content + doc[j:], nil
}

func TestGeneratedReadme(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	want, err := replaceSection(doc, "envelope", envelopeTable())
	if err != nil {
		t.Fatal(err)
	}
	if want, err = replaceSection(want, "types", generatedReadmeTypes(t)); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("README.md", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if want != doc {
		t.Error("README.md tables are out of date with spec.go/examples; run go test ./schemas -run TestGenerated -update")
	}
}
