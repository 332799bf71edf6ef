package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/tallyhq/tally/chstore"
)

const (
	missingChDB = "chDB is not installed: run `npm install --prefix scripts/chdb` (make test does)"
	chdbTimeout = 3 * time.Minute
)

// chdbSlots bounds concurrent chDB runs: each is a node process with a
// whole ClickHouse engine, and the machines have two cores.
var chdbSlots = make(chan struct{}, 2)

// NamedQuery is a query for CompareWithChDB. Args are bound to '?'
// placeholders: by clickhouse-go on ClickHouse 18.16, and rendered as SQL
// literals for chDB. Supported arg types: string, signed and unsigned
// integers, float32/float64, time.Time, []string and clickhouse.GroupSet.
type NamedQuery struct {
	Name string
	SQL  string
	Args []any
}

// ChDBResult is one query's result in normalized form.
type ChDBResult struct {
	Types []string   // column types as the server names them
	Rows  [][]string // normalized values, see normalizeGo / normalizeJSON
}

// CompareWithChDB checks that tally's SQL behaves the same on ClickHouse
// 18.16 (ch, the test's database) and on current ClickHouse (chDB 26.x via
// scripts/chdb/run.mjs). It runs the setup statements (DDL or INSERTs with
// literal values; every INSERT names its columns) on both sides — on 18.16
// over HTTP, on chDB after all of chstore.Migrations() — then each query
// (18.16: over the native protocol via ch.Conn), and fails the test if
// a statement or query fails on either side, or if the column types or the
// rows of a query differ.
//
// Use unqualified table names (the database is t_<random> on 18.16 and
// "tally" on chDB). Rows are compared in order, so queries must ORDER BY
// everything they return. Values are compared as normalized strings: integers in decimal;
// Float64 with 12 and Float32 with 6 significant digits (so the order of a
// float summation does not matter), inf/-inf/nan spelled so; DateTime as
// "YYYY-MM-DD hh:mm:ss" in the column's time zone (UTC unless the type names
// another); Date as "YYYY-MM-DD"; NULL as "NULL"; arrays as [a,b] with
// elements normalized by their type.
//
// It fails the test with the install command if node or the chdb npm package
// is missing. It returns the 18.16 results by query name.
func CompareWithChDB(t testing.TB, ch *CH, setup []string, queries []NamedQuery) map[string]ChDBResult {
	t.Helper()
	script := chdbScript(t)
	ctx, cancel := context.WithTimeout(context.Background(), chdbTimeout)
	defer cancel()

	names := map[string]bool{}
	for _, q := range queries {
		if q.Name == "" || names[q.Name] {
			t.Fatalf("CompareWithChDB: query names must be unique and non-empty (%q)", q.Name)
		}
		names[q.Name] = true
	}

	for i, stmt := range setup {
		if err := httpExec(ctx, ch, stmt); err != nil {
			t.Fatalf("CompareWithChDB: setup[%d] on ClickHouse 18.16: %v\n%s", i, err, stmt)
		}
	}
	old := map[string]ChDBResult{}
	oldErr := map[string]error{}
	for _, q := range queries {
		res, err := queryNormalized(ctx, ch, q)
		if err != nil {
			oldErr[q.Name] = err
			continue
		}
		old[q.Name] = res
	}

	var stmts []string
	for _, m := range chstore.Migrations() {
		stmts = append(stmts, m.Statements...)
	}
	migrationStmts := len(stmts)
	stmts = append(stmts, setup...)
	req := chdbRequest{Statements: stmts}
	for _, q := range queries {
		sql, err := BindLiterals(q.SQL, q.Args)
		if err != nil {
			t.Fatalf("CompareWithChDB: query %s: %v", q.Name, err)
		}
		req.Queries = append(req.Queries, chdbQuery{Name: q.Name, SQL: sql})
	}
	resp, err := runChDB(ctx, script, req)
	if err != nil {
		t.Fatalf("CompareWithChDB: %v", err)
	}
	for key, msg := range resp.Errors {
		if i, ok := statementIndex(key); ok {
			what := fmt.Sprintf("setup[%d]", i-migrationStmts)
			if i < migrationStmts {
				what = "migration statement " + describeMigrationStatement(i)
			}
			t.Fatalf("CompareWithChDB: %s failed on ClickHouse %s (chDB): %s\n%s", what, resp.Version, msg, stmts[i])
		}
	}

	for _, q := range queries {
		e1, e2 := oldErr[q.Name], resp.Errors[q.Name]
		if e1 != nil || e2 != "" {
			if e1 != nil {
				t.Errorf("query %s failed on ClickHouse 18.16: %v", q.Name, e1)
			}
			if e2 != "" {
				t.Errorf("query %s failed on ClickHouse %s (chDB): %s", q.Name, resp.Version, e2)
			}
			continue
		}
		raw, ok := resp.Results[q.Name]
		if !ok {
			t.Errorf("query %s: no result from chDB", q.Name)
			continue
		}
		cur, err := raw.normalize()
		if err != nil {
			t.Errorf("query %s: chDB result: %v", q.Name, err)
			continue
		}
		if diff := diffResults(old[q.Name], cur); diff != "" {
			t.Errorf("query %s differs between ClickHouse 18.16 and %s (chDB):\n%s\nSQL: %s", q.Name, resp.Version, diff, q.SQL)
		}
	}
	return old
}

// httpExec runs one statement over the server's HTTP interface. Setup uses
// HTTP because ClickHouse 18.16 expects a native-protocol client to send the
// data of INSERT ... VALUES itself: clickhouse-go's Exec of such a statement
// hangs there, while over HTTP the server parses the inline values.
func httpExec(ctx context.Context, ch *CH, stmt string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	u := url.URL{Scheme: "http", Host: ch.Server.HTTPAddr(), Path: "/",
		RawQuery: url.Values{"database": {ch.Config.Database}, "user": {ch.Config.Username}}.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(stmt))
	if err != nil {
		return err
	}
	if ch.Config.Password != "" {
		req.Header.Set("X-ClickHouse-Key", ch.Config.Password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

func statementIndex(key string) (int, bool) {
	s, ok := strings.CutPrefix(key, "statements[")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(strings.TrimSuffix(s, "]"))
	return i, err == nil
}

func describeMigrationStatement(i int) string {
	for _, m := range chstore.Migrations() {
		if i < len(m.Statements) {
			return fmt.Sprintf("%d of %s", i+1, m.File)
		}
		i -= len(m.Statements)
	}
	return "?"
}

// chdbScript finds scripts/chdb/run.mjs by walking up from the working
// directory (go test runs in the package directory) and checks that node and
// the chdb package are installed.
func chdbScript(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("%s; node is missing too (apt-get install -y nodejs npm)", missingChDB)
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("CompareWithChDB: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("CompareWithChDB: no go.mod above the working directory")
		}
		dir = parent
	}
	script := filepath.Join(dir, "scripts", "chdb", "run.mjs")
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("CompareWithChDB: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "scripts", "chdb", "node_modules", "chdb", "package.json")); err != nil {
		t.Fatalf("%s", missingChDB)
	}
	return script
}

type chdbQuery struct {
	Name string `json:"name"`
	SQL  string `json:"sql"`
}

type chdbRequest struct {
	Statements []string    `json:"statements"`
	Queries    []chdbQuery `json:"queries"`
}

type chdbColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

type chdbResult struct {
	Meta []chdbColumn `json:"meta"`
	Data [][]any      `json:"data"`
}

type chdbResponse struct {
	Version string                `json:"version"`
	Results map[string]chdbResult `json:"results"`
	Errors  map[string]string     `json:"errors"`
}

func runChDB(ctx context.Context, script string, req chdbRequest) (*chdbResponse, error) {
	in, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode chDB request: %w", err)
	}
	select {
	case chdbSlots <- struct{}{}:
		defer func() { <-chdbSlots }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Dir = filepath.Dir(script)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("node %s: %w\n%s", script, err, tailString(stderr.String(), 4000))
	}
	dec := json.NewDecoder(&stdout)
	dec.UseNumber()
	var resp chdbResponse
	if err := dec.Decode(&resp); err != nil {
		return nil, fmt.Errorf("decode chDB response: %w\nstderr: %s", err, tailString(stderr.String(), 4000))
	}
	return &resp, nil
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func queryNormalized(ctx context.Context, ch *CH, q NamedQuery) (ChDBResult, error) {
	rows, err := ch.Conn.Query(ctx, q.SQL, q.Args...)
	if err != nil {
		return ChDBResult{}, err
	}
	defer rows.Close()
	cols := rows.ColumnTypes()
	res := ChDBResult{Types: make([]string, len(cols))}
	for i, c := range cols {
		res.Types[i] = c.DatabaseTypeName()
	}
	for rows.Next() {
		ptrs := make([]any, len(cols))
		for i, c := range cols {
			ptrs[i] = reflect.New(c.ScanType()).Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			return ChDBResult{}, fmt.Errorf("scan: %w", err)
		}
		row := make([]string, len(cols))
		for i, p := range ptrs {
			row[i] = normalizeGo(res.Types[i], reflect.ValueOf(p).Elem())
		}
		res.Rows = append(res.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return ChDBResult{}, err
	}
	return res, nil
}

func (r chdbResult) normalize() (ChDBResult, error) {
	res := ChDBResult{Types: make([]string, len(r.Meta))}
	for i, c := range r.Meta {
		res.Types[i] = c.Type
	}
	for _, raw := range r.Data {
		if len(raw) != len(r.Meta) {
			return ChDBResult{}, fmt.Errorf("row has %d values for %d columns", len(raw), len(r.Meta))
		}
		row := make([]string, len(raw))
		for i, v := range raw {
			row[i] = normalizeJSON(res.Types[i], v)
		}
		res.Rows = append(res.Rows, row)
	}
	return res, nil
}

// unwrapType strips Nullable(...) and LowCardinality(...), reporting whether
// the type was nullable.
func unwrapType(typ string) (base string, nullable bool) {
	for {
		switch {
		case strings.HasPrefix(typ, "Nullable(") && strings.HasSuffix(typ, ")"):
			typ, nullable = typ[len("Nullable("):len(typ)-1], true
		case strings.HasPrefix(typ, "LowCardinality(") && strings.HasSuffix(typ, ")"):
			typ = typ[len("LowCardinality(") : len(typ)-1]
		default:
			return typ, nullable
		}
	}
}

func typeKind(base string) string {
	switch {
	case strings.HasPrefix(base, "Array("):
		return "array"
	case strings.HasPrefix(base, "DateTime64"):
		return "datetime64"
	case strings.HasPrefix(base, "DateTime"):
		return "datetime"
	case base == "Date" || base == "Date32":
		return "date"
	case base == "Float32":
		return "float32"
	case base == "Float64":
		return "float64"
	case strings.HasPrefix(base, "Int") || strings.HasPrefix(base, "UInt"):
		return "int"
	case base == "Bool":
		return "bool"
	}
	return "other"
}

func canonFloat(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	if bits == 32 {
		return strconv.FormatFloat(f, 'g', 6, 32)
	}
	return strconv.FormatFloat(f, 'g', 12, 64)
}

// normalizeGo renders a value scanned by clickhouse-go from a column of type typ.
func normalizeGo(typ string, v reflect.Value) string {
	base, _ := unwrapType(typ)
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return "NULL"
		}
		v = v.Elem()
	}
	switch typeKind(base) {
	case "array":
		if v.Kind() != reflect.Slice && v.Kind() != reflect.Array {
			break
		}
		elem := base[len("Array(") : len(base)-1]
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = normalizeGo(elem, v.Index(i))
		}
		return "[" + strings.Join(parts, ",") + "]"
	case "datetime", "datetime64", "date":
		tm, ok := v.Interface().(time.Time)
		if !ok {
			break
		}
		switch typeKind(base) {
		case "date":
			return tm.Format(time.DateOnly)
		case "datetime64":
			return tm.Format("2006-01-02 15:04:05.999999999")
		}
		return tm.Format(time.DateTime)
	case "float32":
		if v.CanFloat() {
			return canonFloat(v.Float(), 32)
		}
	case "float64":
		if v.CanFloat() {
			return canonFloat(v.Float(), 64)
		}
	case "int":
		switch {
		case v.CanInt():
			return strconv.FormatInt(v.Int(), 10)
		case v.CanUint():
			return strconv.FormatUint(v.Uint(), 10)
		}
	case "bool":
		if v.Kind() == reflect.Bool {
			return strconv.FormatBool(v.Bool())
		}
	}
	if s, ok := v.Interface().(string); ok {
		return s
	}
	if s, ok := v.Interface().(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprint(v.Interface())
}

// normalizeJSON renders a value from chDB's JSONCompact output (decoded with
// UseNumber) from a column of type typ, the same way normalizeGo does.
func normalizeJSON(typ string, v any) string {
	base, _ := unwrapType(typ)
	if v == nil {
		return "NULL"
	}
	switch typeKind(base) {
	case "array":
		arr, ok := v.([]any)
		if !ok {
			break
		}
		elem := base[len("Array(") : len(base)-1]
		parts := make([]string, len(arr))
		for i, e := range arr {
			parts[i] = normalizeJSON(elem, e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case "float32", "float64":
		bits := 64
		if typeKind(base) == "float32" {
			bits = 32
		}
		if f, err := strconv.ParseFloat(jsonText(v), bits); err == nil {
			return canonFloat(f, bits)
		}
	case "bool":
		if b, ok := v.(bool); ok {
			return strconv.FormatBool(b)
		}
	case "datetime64":
		if s, ok := v.(string); ok {
			if strings.Contains(s, ".") {
				s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
			}
			return s
		}
	}
	return jsonText(v)
}

func jsonText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func diffResults(old, cur ChDBResult) string {
	var b strings.Builder
	if !slicesEqual(old.Types, cur.Types) {
		fmt.Fprintf(&b, "column types: 18.16 %v, current %v\n", old.Types, cur.Types)
	}
	if len(old.Rows) != len(cur.Rows) {
		fmt.Fprintf(&b, "row count: 18.16 %d, current %d\n", len(old.Rows), len(cur.Rows))
	}
	shown := 0
	for i := 0; i < max(len(old.Rows), len(cur.Rows)) && shown < 20; i++ {
		var o, c []string
		if i < len(old.Rows) {
			o = old.Rows[i]
		}
		if i < len(cur.Rows) {
			c = cur.Rows[i]
		}
		if !slicesEqual(o, c) {
			fmt.Fprintf(&b, "row %d: 18.16 %q\n       current %q\n", i, o, c)
			shown++
		}
	}
	return b.String()
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// BindLiterals replaces each '?' placeholder in sql (outside string
// literals, quoted identifiers and comments) with args[i] rendered as a
// ClickHouse SQL literal. It exists only for CompareWithChDB: production
// code binds values with clickhouse-go.
func BindLiterals(sql string, args []any) (string, error) {
	var (
		b    strings.Builder
		n    int
		quit byte // closing quote while inside a quoted token
	)
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case quit != 0:
			b.WriteByte(c)
			switch {
			case c == '\\' && i+1 < len(sql):
				i++
				b.WriteByte(sql[i])
			case c == quit && i+1 < len(sql) && sql[i+1] == quit:
				i++
				b.WriteByte(sql[i])
			case c == quit:
				quit = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quit = c
			b.WriteByte(c)
		case c == '-' && strings.HasPrefix(sql[i:], "--"):
			end := strings.IndexByte(sql[i:], '\n')
			if end < 0 {
				end = len(sql) - i
			}
			b.WriteString(sql[i : i+end])
			i += end - 1
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				return "", errors.New("unterminated /* comment")
			}
			b.WriteString(sql[i : i+2+end+2])
			i += 2 + end + 1
		case c == '?':
			if n >= len(args) {
				return "", fmt.Errorf("more placeholders than the %d args", len(args))
			}
			lit, err := Literal(args[n])
			if err != nil {
				return "", fmt.Errorf("arg %d: %w", n, err)
			}
			b.WriteString(lit)
			n++
		default:
			b.WriteByte(c)
		}
	}
	if quit != 0 {
		return "", fmt.Errorf("unterminated %c quote", quit)
	}
	if n != len(args) {
		return "", fmt.Errorf("%d placeholders for %d args", n, len(args))
	}
	return b.String(), nil
}

var literalQuoter = strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`)

// Literal renders v as a ClickHouse SQL literal with the same meaning
// clickhouse-go's client-side binding gives it on a UTC server: strings
// quoted with backslash escapes, integers in decimal, floats in shortest
// form (inf, -inf, nan), time.Time as toDateTime('YYYY-MM-DD hh:mm:ss') in
// UTC (whole seconds), []string as ['a', 'b'], clickhouse.GroupSet as a
// tuple ('a', 'b') (for `x IN ?`).
func Literal(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return "'" + literalQuoter.Replace(v) + "'", nil
	case int:
		return strconv.FormatInt(int64(v), 10), nil
	case int8:
		return strconv.FormatInt(int64(v), 10), nil
	case int16:
		return strconv.FormatInt(int64(v), 10), nil
	case int32:
		return strconv.FormatInt(int64(v), 10), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint8:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint16:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint32:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case float32:
		return floatLiteral(float64(v), 32), nil
	case float64:
		return floatLiteral(v, 64), nil
	case time.Time:
		return "toDateTime('" + v.UTC().Format(time.DateTime) + "')", nil
	case []string:
		parts := make([]string, len(v))
		for i, s := range v {
			parts[i] = "'" + literalQuoter.Replace(s) + "'"
		}
		return "[" + strings.Join(parts, ", ") + "]", nil
	case []uint32:
		parts := make([]string, len(v))
		for i, n := range v {
			parts[i] = strconv.FormatUint(uint64(n), 10)
		}
		return "[" + strings.Join(parts, ", ") + "]", nil
	case []uint64:
		parts := make([]string, len(v))
		for i, n := range v {
			parts[i] = strconv.FormatUint(n, 10)
		}
		return "[" + strings.Join(parts, ", ") + "]", nil
	case clickhouse.GroupSet:
		parts := make([]string, len(v.Value))
		for i, e := range v.Value {
			lit, err := Literal(e)
			if err != nil {
				return "", fmt.Errorf("group set element %d: %w", i, err)
			}
			parts[i] = lit
		}
		return "(" + strings.Join(parts, ", ") + ")", nil
	}
	return "", fmt.Errorf("unsupported literal type %T", v)
}

func floatLiteral(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'g', -1, bits)
}
