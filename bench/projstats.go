package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// projectorStats is what the projector's /metrics says about its work.
type projectorStats struct {
	batches      float64
	batchEvents  float64 // sum of batch sizes
	insertCount  float64
	insertSecs   float64 // sum of INSERT durations
	lookups      float64 // ids checked against ClickHouse
	insertErrors float64
}

func (s projectorStats) String() string {
	if s.batches == 0 {
		return "projector metrics: no batches"
	}
	meanIns := 0.0
	if s.insertCount > 0 {
		meanIns = 1000 * s.insertSecs / s.insertCount
	}
	return fmt.Sprintf("Projector metrics: %s batches of %s events on average, INSERT %.0f ms on average (%.1f s in all), %s ids looked up in ClickHouse, %s failed INSERTs.",
		count(s.batches), count(s.batchEvents/s.batches), meanIns, s.insertSecs, count(s.lookups), count(s.insertErrors))
}

// scrapeProjector reads the projector's Prometheus metrics from its ops
// server at addr (host:port).
func scrapeProjector(ctx context.Context, addr string) (projectorStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return projectorStats{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return projectorStats{}, fmt.Errorf("scrape projector metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return projectorStats{}, fmt.Errorf("scrape projector metrics: %s", resp.Status)
	}
	return parseProjectorMetrics(resp.Body)
}

func parseProjectorMetrics(r io.Reader) (projectorStats, error) {
	var s projectorStats
	fields := map[string]*float64{
		"tally_projector_batch_size_count":     &s.batches,
		"tally_projector_batch_size_sum":       &s.batchEvents,
		"tally_projector_insert_seconds_count": &s.insertCount,
		"tally_projector_insert_seconds_sum":   &s.insertSecs,
		"tally_projector_dedup_lookups_total":  &s.lookups,
		"tally_projector_insert_errors_total":  &s.insertErrors,
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		if p, found := fields[name]; found {
			v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
			if err != nil {
				return s, fmt.Errorf("metric %s: %w", name, err)
			}
			*p = v
		}
	}
	return s, sc.Err()
}
