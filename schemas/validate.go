package schemas

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxEventBytes is the largest event Decode accepts (NATS' default
// max_payload).
const MaxEventBytes = 1 << 20

// FieldError is one problem with one field of an event.
type FieldError struct {
	// Field is the JSON path of the field: "time", "resellerid",
	// "data.media_duration_seconds". Empty when the problem concerns the
	// event as a whole (for example malformed JSON before any field).
	Field string
	// Reason says what is wrong: "required", "must be >= 0, got -5", ...
	Reason string
}

// String returns "field: reason".
func (f FieldError) String() string {
	if f.Field == "" {
		return f.Reason
	}
	return f.Field + ": " + f.Reason
}

// ValidationError reports every problem found in one event.
type ValidationError struct {
	// Index is the event's position in a batch, -1 if not applicable.
	// Decode and Validate set -1; batch callers set it.
	Index int
	// EventID and EventType are as sent (possibly invalid, clipped to 128
	// bytes), empty if the event did not carry them as strings.
	EventID   string
	EventType string
	Problems  []FieldError
}

// Error returns `event "id-1" (job.completed): data.media_duration_seconds:
// required; time: ...`, with ` #<index>` after "event" when Index >= 0.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("event")
	if e.Index >= 0 {
		b.WriteString(" #")
		b.WriteString(strconv.Itoa(e.Index))
	}
	if e.EventID != "" {
		b.WriteByte(' ')
		b.WriteString(strconv.Quote(e.EventID))
	}
	if e.EventType != "" {
		b.WriteString(" (")
		b.WriteString(e.EventType)
		b.WriteByte(')')
	}
	b.WriteString(": ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// ValidToken reports whether s matches ^[A-Za-z0-9_-]{1,64}$, the form of
// reseller and organization ids (they become NATS subject tokens).
func ValidToken(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Decode parses one event (a JSON object) and validates it against the
// current time. The error is a *ValidationError listing every problem.
// The returned event does not alias raw.
func Decode(raw []byte) (*Event, error) { return DecodeAt(raw, time.Now()) }

// DecodeAt is Decode with the clock used for the "not in the future" rules.
func DecodeAt(raw []byte, now time.Time) (*Event, error) {
	if len(raw) > MaxEventBytes {
		return nil, &ValidationError{Index: -1, Problems: []FieldError{{
			Reason: "event is " + strconv.Itoa(len(raw)) + " bytes, more than the limit of " + strconv.Itoa(MaxEventBytes),
		}}}
	}
	sc := scanner{s: string(raw)}
	var env [envCount]value
	var data [maxDataFields]value
	var ps problems
	inline := inlineData{vals: &data}
	if err := parseEnvelope(&sc, &env, &ps, &inline); err != nil {
		ps.syntax(err, "")
		// Fields after the break are unknown: "required" would be noise.
		return nil, ps.err(&env)
	}
	if ps.fatal {
		return nil, ps.err(&env)
	}
	checkEvent(&env, now, &ps, &data, inline.ts)
	if ps.any() {
		return nil, ps.err(&env)
	}
	e := &Event{
		SpecVersion:     env[envSpecVersion].s,
		ID:              env[envID].s,
		Type:            env[envType].s,
		Source:          env[envSource].s,
		Time:            env[envTime].t,
		ResellerID:      env[envResellerID].s,
		OrgID:           env[envOrgID].s,
		Subject:         env[envSubject].s,
		DataContentType: env[envDataContentType].s,
		DataSchema:      env[envDataSchema].s,
		Data:            []byte(env[envData].s),
	}
	if typeSpecs[e.Type] != nil && len(e.Data) > 0 {
		e.parsed, e.parsedFrom = &data, &e.Data[0]
	}
	return e, nil
}

// Validate checks the envelope and the data against the current time. The
// error is a *ValidationError listing every problem, or nil.
func (e *Event) Validate() error { return e.ValidateAt(time.Now()) }

// ValidateAt is Validate with the clock used for the "not in the future"
// rules. An empty string or zero time counts as missing.
func (e *Event) ValidateAt(now time.Time) error {
	var env [envCount]value
	for i, s := range [...]string{
		envSpecVersion:     e.SpecVersion,
		envID:              e.ID,
		envType:            e.Type,
		envSource:          e.Source,
		envResellerID:      e.ResellerID,
		envOrgID:           e.OrgID,
		envSubject:         e.Subject,
		envDataContentType: e.DataContentType,
		envDataSchema:      e.DataSchema,
	} {
		if i != envTime {
			env[i] = value{set: s != "", ok: true, s: s}
		}
	}
	env[envTime] = value{set: !e.Time.IsZero(), ok: true, t: e.Time}
	env[envData] = value{set: len(e.Data) > 0, ok: true, s: string(e.Data)}
	var ps problems
	for i := range env {
		if env[i].set && i != envData {
			env[i].bad = !checkValue(&envelopeFields[i], &env[i], "", &ps)
		}
	}
	var data [maxDataFields]value
	checkEvent(&env, now, &ps, &data, nil)
	if ps.any() {
		return ps.err(&env)
	}
	return nil
}

// value is one parsed field.
type value struct {
	set bool // present in the JSON (or non-zero in a Go Event)
	ok  bool // of the right JSON type and parsed; constraints may still fail
	bad bool // failed a constraint: cross-field rules skip it
	s   string
	i   int64
	f   float64
	b   bool
	t   time.Time
}

// maxProblems bounds the problems reported for one event.
const maxProblems = 25

type problems struct {
	list    []FieldError
	dropped int
	fatal   bool // the event is not an object: nothing else to check
}

func (p *problems) any() bool { return len(p.list) > 0 }

func (p *problems) add(field, reason string) {
	if len(p.list) >= maxProblems {
		p.dropped++
		return
	}
	p.list = append(p.list, FieldError{Field: field, Reason: reason})
}

func (p *problems) syntax(err error, field string) {
	var se *syntaxError
	if errors.As(err, &se) && se.field != "" {
		field = se.field
	}
	p.add(field, err.Error())
}

func (p *problems) err(env *[envCount]value) *ValidationError {
	ve := &ValidationError{Index: -1, Problems: p.list}
	if v := env[envID]; v.ok {
		ve.EventID = clip(v.s, 128)
	}
	if v := env[envType]; v.ok {
		ve.EventType = clip(v.s, 128)
	}
	if p.dropped > 0 {
		ve.Problems = append(ve.Problems, FieldError{Reason: strconv.Itoa(p.dropped) + " more problems not shown"})
	}
	return ve
}

// clip shortens s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// quote renders a value for a message, shortened.
func quote(s string) string { return strconv.Quote(clip(s, 64)) }

func parseEnvelope(sc *scanner, env *[envCount]value, ps *problems, inline *inlineData) error {
	k, err := sc.peek()
	if err != nil {
		return err
	}
	if k != jObject {
		ps.add("", "event must be a JSON object, got "+k.String())
		ps.fatal = true
		return nil
	}
	sc.i++
	if err := parseFields(sc, envelopeFields[:], env[:], "", ps, "", inline); err != nil {
		return err
	}
	if !sc.eof() {
		return sc.fail("unexpected data after the event object")
	}
	return nil
}

// inlineData lets the envelope parser read data in the same pass when the
// type came before it (as Go and the examples order attributes).
type inlineData struct {
	ts   *typeSpec // set when data was parsed inline
	vals *[maxDataFields]value
}

func (d *inlineData) parse(sc *scanner, typ, data *value, ps *problems) (bool, error) {
	if !typ.ok {
		return false, nil
	}
	ts := typeSpecs[typ.s]
	if ts == nil {
		return false, nil
	}
	if k, err := sc.peek(); err != nil || k != jObject {
		return false, err
	}
	start := sc.i
	sc.i++
	if err := parseFields(sc, ts.fields, d.vals[:], "data.", ps, ts.typ, nil); err != nil {
		return true, err
	}
	data.s, data.ok, d.ts = sc.s[start:sc.i], true, ts
	return true, nil
}

// parseFields reads the members of an object whose '{' has been consumed
// into vals (indexed like specs). typ is "" for the envelope.
func parseFields(sc *scanner, specs []fieldSpec, vals []value, prefix string, ps *problems, typ string, inline *inlineData) error {
	for first := true; ; first = false {
		key, ok, err := sc.key(first)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		j := -1
		for k := range specs {
			if specs[k].name == key {
				j = k
				break
			}
		}
		var reason string
		switch {
		case j < 0:
			reason = unknownReason(key, specs, typ)
		case specs[j].forbidden != "":
			reason = specs[j].forbidden
		case vals[j].set:
			reason = "duplicate key"
		}
		if reason != "" {
			path := prefix + clip(key, 64)
			ps.add(path, reason)
			if err := sc.skip(); err != nil {
				return withField(err, path)
			}
			continue
		}
		vals[j].set = true
		if inline != nil && j == envData {
			if done, err := inline.parse(sc, &vals[envType], &vals[envData], ps); done || err != nil {
				if err != nil {
					return withField(err, "data")
				}
				continue
			}
		}
		if err := parseValue(sc, &specs[j], &vals[j], prefix, ps); err != nil {
			return withField(err, prefix+key)
		}
	}
}

func withField(err error, field string) error {
	if se, ok := err.(*syntaxError); ok && se.field == "" {
		se.field = field
	}
	return err
}

var wantKind = [...]jsonKind{
	kindString: jString,
	kindInt:    jNumber,
	kindFloat:  jNumber,
	kindBool:   jBool,
	kindTime:   jString,
	kindObject: jObject,
}

var kindArticle = [...]string{
	kindString: "a string",
	kindInt:    "an integer",
	kindFloat:  "a number",
	kindBool:   "a boolean",
	kindTime:   "a string (RFC 3339 timestamp)",
	kindObject: "a JSON object",
}

func parseValue(sc *scanner, f *fieldSpec, v *value, prefix string, ps *problems) error {
	k, err := sc.peek()
	if err != nil {
		return err
	}
	if k != wantKind[f.kind] {
		ps.add(prefix+f.name, "must be "+kindArticle[f.kind]+", got "+k.String())
		return sc.skip()
	}
	switch f.kind {
	case kindString, kindTime:
		if v.s, err = sc.str(); err != nil {
			return err
		}
		if f.kind == kindTime {
			t, ok := parseTime(v.s)
			if !ok {
				ps.add(prefix+f.name, "must be an RFC 3339 timestamp with time zone like 2006-01-02T15:04:05Z, got "+quote(v.s))
				return nil
			}
			v.t = t
		}
	case kindInt:
		lit, integral, err := sc.number()
		if err != nil {
			return err
		}
		n, reason := parseInt(lit, integral)
		if reason != "" {
			ps.add(prefix+f.name, reason)
			return nil
		}
		v.i = n
	case kindFloat:
		lit, _, err := sc.number()
		if err != nil {
			return err
		}
		x, perr := strconv.ParseFloat(lit, 64)
		if perr != nil {
			ps.add(prefix+f.name, "number out of range: "+clip(lit, 32))
			return nil
		}
		v.f = x
	case kindBool:
		if v.b, err = sc.literal(); err != nil {
			return err
		}
	case kindObject:
		start := sc.i
		if err := sc.skip(); err != nil {
			return err
		}
		v.s = sc.s[start:sc.i]
	}
	v.ok = true
	v.bad = !checkValue(f, v, prefix, ps)
	return nil
}

func parseInt(lit string, integral bool) (int64, string) {
	if integral {
		n, err := strconv.ParseInt(lit, 10, 64)
		if err != nil {
			return 0, "integer out of range: " + clip(lit, 32)
		}
		return n, ""
	}
	// 1.0 and 1e3 are integers to JSON Schema; accept them likewise.
	x, err := strconv.ParseFloat(lit, 64)
	if err != nil || x != math.Trunc(x) {
		return 0, "must be an integer, got " + clip(lit, 32)
	}
	if x < -(1<<63) || x >= 1<<63 {
		return 0, "integer out of range: " + clip(lit, 32)
	}
	return int64(x), ""
}

// parseTime accepts RFC 3339 date-times with a zone (patTime) only.
func parseTime(s string) (time.Time, bool) {
	if !rfc3339Shape(s) {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, s)
	return t, err == nil
}

func rfc3339Shape(s string) bool {
	if len(s) < 20 {
		return false
	}
	for i := 0; i < 19; i++ {
		c := s[i]
		switch i {
		case 4, 7:
			if c != '-' {
				return false
			}
		case 10:
			if c != 'T' {
				return false
			}
		case 13, 16:
			if c != ':' {
				return false
			}
		default:
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	i := 19
	if s[i] == '.' {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i+1 || j-i-1 > 9 {
			return false
		}
		i = j
	}
	rest := s[i:]
	if rest == "Z" {
		return true
	}
	return len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') &&
		isDigit(rest[1]) && isDigit(rest[2]) && rest[3] == ':' && isDigit(rest[4]) && isDigit(rest[5])
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func formatFloat(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// checkValue applies f's constraints to a parsed value and reports whether
// it passed.
func checkValue(f *fieldSpec, v *value, prefix string, ps *problems) bool {
	n := len(ps.list) + ps.dropped
	switch f.kind {
	case kindString:
		s := v.s
		switch {
		case s == "" && f.minLen > 0:
			ps.add(prefix+f.name, "must not be empty")
		case f.maxLen > 0 && len(s) > f.maxLen && utf8.RuneCountInString(s) > f.maxLen:
			ps.add(prefix+f.name, "must be at most "+strconv.Itoa(f.maxLen)+" characters, got "+strconv.Itoa(utf8.RuneCountInString(s)))
		case f.enum != nil && !contains(f.enum, s):
			if len(f.enum) == 1 {
				ps.add(prefix+f.name, "must be "+strconv.Quote(f.enum[0])+", got "+quote(s))
			} else {
				ps.add(prefix+f.name, "must be one of "+strings.Join(f.enum, "|")+", got "+quote(s))
			}
		case f.pat != nil && !f.pat.match(s):
			ps.add(prefix+f.name, "must match "+f.pat.re+", got "+quote(s))
		}
	case kindInt:
		x := float64(v.i)
		switch {
		case f.exclMin && x <= f.min:
			ps.add(prefix+f.name, "must be > "+formatFloat(f.min)+", got "+strconv.FormatInt(v.i, 10))
		case x < f.min:
			ps.add(prefix+f.name, "must be >= "+formatFloat(f.min)+", got "+strconv.FormatInt(v.i, 10))
		case f.hasMax && x > f.max:
			ps.add(prefix+f.name, "must be <= "+formatFloat(f.max)+maxNote(f)+", got "+strconv.FormatInt(v.i, 10))
		}
	case kindFloat:
		switch {
		case f.exclMin && v.f <= f.min:
			ps.add(prefix+f.name, "must be > "+formatFloat(f.min)+", got "+formatFloat(v.f))
		case v.f < f.min:
			ps.add(prefix+f.name, "must be >= "+formatFloat(f.min)+", got "+formatFloat(v.f))
		case f.hasMax && v.f > f.max:
			ps.add(prefix+f.name, "must be <= "+formatFloat(f.max)+maxNote(f)+", got "+formatFloat(v.f))
		}
	case kindTime:
		if v.t.Before(minTime) || !v.t.Before(maxTime) {
			ps.add(prefix+f.name, "must be between 1970-01-01 and 2105-12-31, got "+v.t.Format(time.RFC3339))
		}
	}
	return len(ps.list)+ps.dropped == n
}

func maxNote(f *fieldSpec) string {
	if f.maxNote == "" {
		return ""
	}
	return " (" + f.maxNote + ")"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkEvent applies the rules that span fields, reports missing required
// attributes and validates data.
// parsed is the type whose data parseEnvelope already read into data
// (nil if it did not).
func checkEvent(env *[envCount]value, now time.Time, ps *problems, data *[maxDataFields]value, parsed *typeSpec) {
	for i := range envelopeFields {
		if envelopeFields[i].required && !env[i].set {
			ps.add(envelopeFields[i].name, "required")
		}
	}
	var ts *typeSpec
	if t := env[envType]; t.ok {
		ts = typeSpecs[t.s]
	}
	if ts != nil {
		if r := env[envResellerID]; ts.resellerRequired && (!r.set || r.ok && r.s == "") {
			ps.add("resellerid", "required for "+ts.typ)
		}
		if o := env[envOrgID]; ts.orgRequired && (!o.set || o.ok && o.s == "") {
			ps.add("orgid", "required for "+ts.typ)
		}
	}
	if t := env[envTime]; t.ok && !t.bad {
		if ahead := t.t.Sub(now); ahead > MaxClockSkew {
			ps.add("time", "must not be more than "+MaxClockSkew.String()+" in the future, is "+ahead.Round(time.Second).String()+" ahead of tally's clock")
		}
	}
	switch d := env[envData]; {
	case parsed != nil:
		finishData(parsed, &env[envTime], ps, data)
	case d.set && d.ok:
		checkData(d.s, ts, &env[envTime], ps, data)
	}
}

// checkData validates data (JSON text) for ts; with ts nil (unknown type)
// it only checks that data is an object.
func checkData(text string, ts *typeSpec, evTime *value, ps *problems, vals *[maxDataFields]value) {
	sc := scanner{s: text}
	k, err := sc.peek()
	if err != nil {
		ps.syntax(err, "data")
		return
	}
	if k != jObject {
		ps.add("data", "must be a JSON object, got "+k.String())
		return
	}
	if ts == nil {
		err = sc.skip()
	} else {
		sc.i++
		err = parseFields(&sc, ts.fields, vals[:], "data.", ps, ts.typ, nil)
	}
	if err == nil && !sc.eof() {
		err = sc.fail("unexpected data after the data object")
	}
	if err != nil {
		ps.syntax(err, "data")
		return
	}
	if ts != nil {
		finishData(ts, evTime, ps, vals)
	}
}

// finishData reports missing required fields and cross-field problems.
func finishData(ts *typeSpec, evTime *value, ps *problems, vals *[maxDataFields]value) {
	for i := range ts.fields {
		if f := &ts.fields[i]; f.required && !vals[i].set {
			ps.add("data."+f.name, "required")
		}
	}
	if i := ts.createdAtIdx; i >= 0 && ts.createdAtNotAfterEvent && good(&vals[i]) && good(evTime) {
		if vals[i].t.After(evTime.t.Add(MaxFutureSkew)) {
			ps.add("data.created_at", "must not be more than "+MaxFutureSkew.String()+" after the event time "+
				evTime.t.Format(time.RFC3339)+", got "+vals[i].t.Format(time.RFC3339))
		}
	}
	if ts.periodOrder {
		start, end := vals[subPeriodStart], vals[subPeriodEnd]
		if good(&start) && good(&end) && !end.t.After(start.t) {
			ps.add("data.period_end", "must be after period_start "+start.t.Format(time.RFC3339)+", got "+end.t.Format(time.RFC3339))
		}
	}
}

func good(v *value) bool { return v.ok && !v.bad }

// unknownReason explains an unknown key, suggesting the field it most
// likely misspells.
func unknownReason(key string, specs []fieldSpec, typ string) string {
	what := "unknown attribute"
	if typ != "" {
		what = "unknown field for " + typ
	}
	if s := suggest(key, specs); s != "" {
		return what + `; did you mean "` + s + `"?`
	}
	names := make([]string, 0, len(specs))
	for _, f := range specs {
		if f.forbidden == "" {
			names = append(names, f.name)
		}
	}
	return what + " (allowed: " + strings.Join(names, ", ") + ")"
}

func suggest(key string, specs []fieldSpec) string {
	if len(key) > 64 {
		return ""
	}
	nk := normalizeName(key)
	best, bestD := "", 5
	for _, f := range specs {
		if f.forbidden != "" {
			continue
		}
		nf := normalizeName(f.name)
		if nf == nk {
			return f.name
		}
		// "lang" → language, "plan_id" → plan, "user" → user_id.
		if len(nk) >= 3 && strings.HasPrefix(nf, nk) || len(nf) >= 4 && strings.HasPrefix(nk, nf) {
			best, bestD = f.name, 0
			continue
		}
		if d := editDistance(strings.ToLower(key), f.name); d < bestD && d <= max(1, min(4, len(f.name)/4)) {
			best, bestD = f.name, d
		}
	}
	return best
}

// normalizeName folds case and drops separators: "resellerId",
// "reseller_id" and "resellerid" are the same name.
func normalizeName(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' || c == '-' || c == '.' || c == ' ':
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// editDistance is the optimal string alignment distance (Levenshtein plus
// adjacent transpositions).
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
