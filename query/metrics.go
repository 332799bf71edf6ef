package query

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tally_query_request_duration_seconds",
			Help:    "Query API request duration by route and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "code"}),
	}
	if err := reg.Register(m.duration); err != nil {
		return nil, fmt.Errorf("query metrics: %w", err)
	}
	return m, nil
}

func (m *metrics) observe(route string, status int, d time.Duration) {
	m.duration.WithLabelValues(route, strconv.Itoa(status)).Observe(d.Seconds())
}
