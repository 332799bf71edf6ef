package ingest

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/publish"
)

type metrics struct {
	events   *prometheus.CounterVec
	byStatus map[publish.Status]prometheus.Counter
	requests *prometheus.CounterVec
	duration prometheus.Histogram
	batch    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_ingest_events_total",
			Help: "Events received by HTTP ingest, by result (accepted, duplicate, rejected, unavailable).",
		}, []string{"result"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_ingest_requests_total",
			Help: "HTTP ingest requests by status code.",
		}, []string{"code"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tally_ingest_request_duration_seconds",
			Help:    "HTTP ingest request duration, including waiting for JetStream acks.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tally_ingest_batch_events",
			Help:    "Events per HTTP ingest request.",
			Buckets: []float64{1, 10, 50, 100, 500, 1000, 2500, 5000, 10000},
		}),
	}
	m.byStatus = map[publish.Status]prometheus.Counter{}
	for _, s := range []publish.Status{publish.StatusAccepted, publish.StatusDuplicate, publish.StatusRejected, publish.StatusUnavailable} {
		m.byStatus[s] = m.events.WithLabelValues(string(s))
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.events, m.requests, m.duration, m.batch} {
			if err := reg.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if errors.As(err, &are) {
					return nil, fmt.Errorf("ingest metrics: already registered (one Ingest per registry): %w", err)
				}
				return nil, fmt.Errorf("ingest metrics: %w", err)
			}
		}
	}
	return m, nil
}

// request records one finished request; d == 0 skips the duration.
func (m *metrics) request(status int, d time.Duration) {
	m.requests.WithLabelValues(strconv.Itoa(status)).Inc()
	if d > 0 {
		m.duration.Observe(d.Seconds())
	}
}

// count records the results of one request's events.
func (m *metrics) count(r *response) {
	add := func(s publish.Status, n int) {
		if n > 0 {
			m.byStatus[s].Add(float64(n))
		}
	}
	add(publish.StatusAccepted, r.Accepted)
	add(publish.StatusDuplicate, r.Duplicates)
	add(publish.StatusRejected, r.Rejected)
	add(publish.StatusUnavailable, r.Unavailable)
	m.batch.Observe(float64(len(r.Results)))
}
