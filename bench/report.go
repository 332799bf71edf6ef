package bench

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Kind says how a row's measured value compares with its ceiling and target.
type Kind int

// Row kinds.
const (
	// Throughput rows are events/s: ratio = measured / ceiling, pass when
	// the ratio reaches MinRatio.
	Throughput Kind = iota
	// Latency rows are milliseconds: ratio = measured / ceiling (the raw
	// floor), pass when measured <= Max.
	Latency
	// Memory rows are MiB: the ceiling is the budget, ratio = measured /
	// ceiling, pass when measured <= Max.
	Memory
	// Info rows are a ceiling or a detail measured on the way; no target.
	Info
)

// Row is one line of the report.
type Row struct {
	// Key identifies the row for programs (e.g. "ingest", "e2e").
	Key string
	// Name describes the measurement.
	Name string
	Kind Kind
	// Unit of Value and Ceiling: "events/s", "ms" or "MiB".
	Unit     string
	Value    float64
	Ceiling  float64
	CeilName string // what the ceiling is
	// MinRatio (Throughput) or Max (Latency, Memory) is the target.
	MinRatio float64
	Max      float64
	Note     string
}

// Ratio is Value / Ceiling, or 0 without a ceiling.
func (r Row) Ratio() float64 {
	if r.Ceiling <= 0 {
		return 0
	}
	return r.Value / r.Ceiling
}

// HasTarget reports whether the row has a target (every kind but Info).
func (r Row) HasTarget() bool { return r.Kind != Info }

// Pass reports whether the row meets its target; Info rows always pass.
func (r Row) Pass() bool {
	switch r.Kind {
	case Throughput:
		return r.Ceiling > 0 && r.Ratio() >= r.MinRatio
	case Latency, Memory:
		return r.Value > 0 && r.Value <= r.Max
	default:
		return true
	}
}

func (r Row) target() string {
	switch r.Kind {
	case Throughput:
		return "≥ " + strconv.Itoa(int(math.Round(r.MinRatio*100))) + "% of ceiling"
	case Latency:
		return "≤ " + num(r.Max) + " ms"
	case Memory:
		return "≤ " + num(r.Max) + " MiB"
	default:
		return "—"
	}
}

// Report is the result of a bench run.
type Report struct {
	Rows []Row
	// Machine describes where it ran (CPUs, Go, ClickHouse version).
	Machine string
	// Sizes summarizes the workload (event counts, body size, rates).
	Sizes   string
	Elapsed time.Duration
}

// Row returns the row with key, or false.
func (r *Report) Row(key string) (Row, bool) {
	for _, row := range r.Rows {
		if row.Key == key {
			return row, true
		}
	}
	return Row{}, false
}

// Pass reports whether every row with a target passed.
func (r *Report) Pass() bool {
	for _, row := range r.Rows {
		if !row.Pass() {
			return false
		}
	}
	return true
}

func (r *Report) add(row Row) { r.Rows = append(r.Rows, row) }

// WriteMarkdown writes the report as one markdown table, preceded by a
// line on the machine and workload and followed by the notes.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	if r.Machine != "" {
		fmt.Fprintf(&b, "Machine: %s  \n", r.Machine)
	}
	if r.Sizes != "" {
		fmt.Fprintf(&b, "Workload: %s  \n", r.Sizes)
	}
	if r.Elapsed > 0 {
		fmt.Fprintf(&b, "Bench runtime: %s\n", r.Elapsed.Round(time.Second))
	}
	b.WriteString("\n| # | measurement | measured | ceiling | ceiling is | ratio | target | result |\n")
	b.WriteString("|---|---|---:|---:|---|---:|---|---|\n")
	var notes []string
	for i, row := range r.Rows {
		ceil, ratio := "—", "—"
		if row.Ceiling > 0 {
			ceil = num(row.Ceiling) + " " + row.Unit
			if row.Kind == Throughput {
				ratio = strconv.FormatFloat(row.Ratio()*100, 'f', 1, 64) + "%"
			} else {
				ratio = strconv.FormatFloat(row.Ratio(), 'f', 2, 64) + "×"
			}
		}
		result := "—"
		if row.HasTarget() {
			result = "**FAIL**"
			if row.Pass() {
				result = "PASS"
			}
		}
		name := row.Name
		if row.Note != "" {
			notes = append(notes, row.Note)
			name += " [" + strconv.Itoa(len(notes)) + "]"
		}
		fmt.Fprintf(&b, "| %d | %s | %s %s | %s | %s | %s | %s | %s |\n",
			i+1, name, num(row.Value), row.Unit, ceil, orDash(row.CeilName), ratio, row.target(), result)
	}
	if len(notes) > 0 {
		b.WriteString("\n")
		for i, n := range notes {
			fmt.Fprintf(&b, "[%d] %s  \n", i+1, n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// count formats a count: num without decimals.
func count(v float64) string {
	v = math.Round(v)
	if math.Abs(v) < 100 {
		return strconv.FormatInt(int64(v), 10)
	}
	return num(v)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// num formats v with thousands separators; values under 100 keep one
// decimal.
func num(v float64) string {
	if v != 0 && math.Abs(v) < 100 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
