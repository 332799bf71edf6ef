package projector

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Results counted by tally_projector_events_total.
const (
	resultInserted   = "inserted"
	resultDuplicate  = "duplicate"
	resultDeadLetter = "dead_letter"
)

type metrics struct {
	inserted     prometheus.Counter
	duplicates   prometheus.Counter
	deadLetters  prometheus.Counter
	batchSize    prometheus.Histogram
	insertTime   prometheus.Histogram
	lag          prometheus.Gauge
	insertErrors prometheus.Counter
	redeliveries prometheus.Counter
	lookups      prometheus.Counter
	delay        prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tally_projector_events_total",
		Help: "Events handled by the projector, by result: inserted into ClickHouse, duplicate (already there, not inserted again) or dead_letter.",
	}, []string{"result"})
	m := &metrics{
		inserted:    events.WithLabelValues(resultInserted),
		duplicates:  events.WithLabelValues(resultDuplicate),
		deadLetters: events.WithLabelValues(resultDeadLetter),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tally_projector_batch_size",
			Help:    "Messages per projector batch.",
			Buckets: []float64{1, 10, 100, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000},
		}),
		insertTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tally_projector_insert_seconds",
			Help:    "Duration of successful batch INSERTs into ClickHouse, duplicate lookups included.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 13),
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tally_projector_consumer_lag",
			Help: "Messages of the stream not yet delivered to the projector's consumer (NumPending).",
		}),
		insertErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tally_projector_insert_errors_total",
			Help: "Failed INSERT attempts (each is retried with backoff).",
		}),
		redeliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tally_projector_redeliveries_total",
			Help: "Messages delivered more than once (NumDelivered > 1); each is checked against ClickHouse before insert.",
		}),
		lookups: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tally_projector_dedup_lookups_total",
			Help: "Event ids looked up in ClickHouse's event_ids before insert (redelivered, late, replayed or after a failed insert).",
		}),
		delay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tally_projector_delay_seconds",
			Help:    "Time from an event being stored in the stream to its INSERT completing (freshness).",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600},
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{events, m.batchSize, m.insertTime, m.lag, m.insertErrors, m.redeliveries, m.lookups, m.delay} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register projector metrics: %w", err)
		}
	}
	return m, nil
}
