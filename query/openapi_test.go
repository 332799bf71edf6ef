package query

import (
	"bufio"
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	pathLine   = regexp.MustCompile(`^  (/[^:]*):\s*$`)
	methodLine = regexp.MustCompile(`^    (get|post|put|patch|delete):`)
)

// documented lists "METHOD /path" of openapi.yaml, Fiber's ":id" for "{id}".
func documented(t *testing.T) []string {
	t.Helper()
	var out []string
	var path string
	inPaths := false
	sc := bufio.NewScanner(bytes.NewReader(openAPI))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "paths:":
			inPaths = true
		case inPaths && line != "" && !strings.HasPrefix(line, " "):
			inPaths = false
		case inPaths && pathLine.MatchString(line):
			path = pathLine.FindStringSubmatch(line)[1]
			path = regexp.MustCompile(`\{([a-z_]+)\}`).ReplaceAllString(path, ":$1")
		case inPaths && methodLine.MatchString(line):
			out = append(out, strings.ToUpper(methodLine.FindStringSubmatch(line)[1])+" "+path)
		}
	}
	slices.Sort(out)
	return out
}

// TestOpenAPICoversRoutes: every Fiber route is in openapi.yaml and every
// documented operation is a Fiber route.
func TestOpenAPICoversRoutes(t *testing.T) {
	q, err := New(Config{}, driver.Conn(nil), nil, nil)
	if err == nil || q != nil {
		t.Fatalf("New with a nil connection: %v, want an error", err)
	}
	q = &Query{cfg: Config{}.withDefaults(), keys: newKeyCache(nil, 0)}
	q.metrics, _ = newMetrics(prometheus.NewRegistry())
	app := q.newApp()
	var routes []string
	for _, r := range app.GetRoutes(true) {
		if r.Method == "HEAD" || r.Method == "USE" {
			continue
		}
		routes = append(routes, r.Method+" "+r.Path)
	}
	slices.Sort(routes)
	routes = slices.Compact(routes)
	docs := documented(t)
	if len(docs) < 5 {
		t.Fatalf("openapi.yaml parse found only %v", docs)
	}
	for _, r := range routes {
		if !slices.Contains(docs, r) {
			t.Errorf("route %s is not in openapi.yaml", r)
		}
	}
	for _, d := range docs {
		if !slices.Contains(routes, d) {
			t.Errorf("openapi.yaml documents %s, which is no route", d)
		}
	}
}
