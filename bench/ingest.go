package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyhq/tally/ingest"
)

// ingestResult is the ingest measurement.
type ingestResult struct {
	throughput
	p50, p99 time.Duration // request latency
}

// measureIngest runs the ingest stage in-process on a loopback port and
// POSTs the corpus as NDJSON batches from IngestClients concurrent clients.
func (e *env) measureIngest(ctx context.Context) (ingestResult, error) {
	if err := e.freshStream(ctx); err != nil {
		return ingestResult{}, err
	}
	c := newGenerator("in", time.Now()).corpus(e.cfg.IngestEvents)
	bodies := make([][]byte, 0, c.len()/e.cfg.IngestBatch+1)
	for from := 0; from < c.len(); from += e.cfg.IngestBatch {
		bodies = append(bodies, c.ndjson(from, min(from+e.cfg.IngestBatch, c.len())))
	}

	keyBytes := make([]byte, 16)
	_, _ = rand.Read(keyBytes)
	key := "bench-" + hex.EncodeToString(keyBytes)
	// Its own connection, set up as `tally ingest` sets up its JetStream
	// context (cmd/tally newJetStream).
	nc, err := nats.Connect(e.ns.ClientURL(), nats.Name("tally-bench-ingest"))
	if err != nil {
		return ingestResult{}, fmt.Errorf("connect nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(16384), jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		return ingestResult{}, fmt.Errorf("jetstream: %w", err)
	}
	icfg := ingest.Config{Keys: []string{key}, MaxBatch: max(e.cfg.IngestBatch, ingest.DefaultMaxBatch)}
	in, err := ingest.New(icfg, js, e.log, nil)
	if err != nil {
		return ingestResult{}, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return ingestResult{}, fmt.Errorf("listen: %w", err)
	}
	url := "http://" + ln.Addr().String() + "/v1/events"
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- in.Serve(sctx, ln) }()
	defer func() {
		stop()
		<-served
	}()

	client := &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			MaxIdleConnsPerHost: e.cfg.IngestClients,
			MaxConnsPerHost:     e.cfg.IngestClients,
			DisableCompression:  true,
		},
	}
	defer client.CloseIdleConnections()
	post := func(body []byte, buf *bytes.Buffer) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/x-ndjson")
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		buf.Reset()
		if _, err := buf.ReadFrom(resp.Body); err != nil {
			return 0, fmt.Errorf("read response: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("ingest answered %s: %.500s", resp.Status, buf.Bytes())
		}
		return acceptedCount(buf.Bytes())
	}
	// One warm-up request of a single event (not counted) opens nothing
	// that the measured requests would not; it checks the wiring.
	var buf bytes.Buffer
	warm := newGenerator("iw", time.Now()).corpus(1)
	if _, err := post(warm.ndjson(0, 1), &buf); err != nil {
		return ingestResult{}, fmt.Errorf("warm-up request: %w", err)
	}

	e.logf("ingest: %s events as %d NDJSON requests of %d from %d clients…", num(float64(c.len())), len(bodies), e.cfg.IngestBatch, e.cfg.IngestClients)
	var (
		next     atomic.Int64
		accepted atomic.Int64
		mu       sync.Mutex
		lat      []time.Duration
		firstErr error
		wg       sync.WaitGroup
	)
	cpu := e.meter()
	start := time.Now()
	for w := 0; w < e.cfg.IngestClients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			var mine []time.Duration
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					break
				}
				t0 := time.Now()
				n, err := post(bodies[i], &buf)
				if err != nil {
					mu.Lock()
					firstErr = cmpOr(firstErr, fmt.Errorf("request %d: %w", i, err))
					mu.Unlock()
					next.Store(int64(len(bodies)))
					break
				}
				mine = append(mine, time.Since(t0))
				accepted.Add(int64(n))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpuUsed := cpu.summary(c.len())
	if firstErr != nil {
		return ingestResult{}, firstErr
	}
	if a := accepted.Load(); a != int64(c.len()) {
		return ingestResult{}, fmt.Errorf("ingest accepted %d of %d events", a, c.len())
	}
	if err := e.checkStream(ctx, c.len()+1); err != nil {
		return ingestResult{}, err
	}
	slices.Sort(lat)
	r := ingestResult{throughput: newRate(c.len(), elapsed), p50: percentile(lat, 0.50), p99: percentile(lat, 0.99)}
	r.detail = fmt.Sprintf("%d requests", len(bodies))
	r.cpu = cpuUsed
	e.logf("  ingest: %s events/s (%s; request p50 %s, p99 %s). %s", num(r.rate), elapsed.Round(time.Millisecond),
		r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond), r.cpu)
	return r, nil
}

// acceptedCount reads "accepted" from an ingest response; the counts lead
// the body, so the (long) results list is parsed only when some event was
// not accepted.
func acceptedCount(body []byte) (int, error) {
	const key = `"accepted":`
	i := bytes.Index(body, []byte(key))
	if i >= 0 {
		j := i + len(key)
		k := j
		for k < len(body) && body[k] >= '0' && body[k] <= '9' {
			k++
		}
		if n, err := strconv.Atoi(string(body[j:k])); err == nil && bytes.HasPrefix(body[k:], []byte(`,"duplicates":0,"rejected":0`)) {
			return n, nil
		}
	}
	var resp struct {
		Accepted, Duplicates, Rejected int
		Results                        []json.RawMessage
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return 0, fmt.Errorf("ingest response: %w: %.300s", err, body)
	}
	if resp.Duplicates > 0 || resp.Rejected > 0 {
		for _, r := range resp.Results {
			if !bytes.Contains(r, []byte(`"accepted"`)) {
				return 0, fmt.Errorf("ingest did not accept every event (%d duplicates, %d rejected), e.g. %s", resp.Duplicates, resp.Rejected, r)
			}
		}
	}
	return resp.Accepted, nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// percentile returns the p-quantile of sorted (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
