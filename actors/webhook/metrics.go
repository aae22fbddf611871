package webhook

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a delivery attempt (campaign_webhook_deliveries_total{outcome}).
const (
	outcomeDelivered = "delivered" // 2xx
	outcomeRetrying  = "retrying"  // failed; handed back for a later attempt
	outcomeFailed    = "failed"    // failed on the last attempt; recorded failed
	outcomeGone      = "gone"      // 410: the endpoint was disabled
	outcomeSkipped   = "skipped"   // not selected by the endpoint's filter
)

type metrics struct {
	deliveries *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	backlog    *prometheus.GaugeVec
	dropped    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "campaign_webhook_deliveries_total",
			Help: "Webhook delivery attempts by endpoint and outcome (delivered, retrying, failed, gone, skipped).",
		}, []string{"webhook", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "campaign_webhook_attempt_duration_seconds",
			Help:    "Time of one webhook delivery attempt, request to response read, by endpoint.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"webhook"}),
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "campaign_webhook_backlog",
			Help: "Notices an endpoint has still to take: not yet handed over, or handed over and not acknowledged (retries waiting included).",
		}, []string{"webhook"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "campaign_webhook_records_dropped_total",
			Help: "Webhook delivery records not written: the recorder's queue was full or Postgres refused the batch (the attempts themselves were made).",
		}),
	}
	for _, c := range []prometheus.Collector{m.deliveries, m.latency, m.backlog, m.dropped} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}

// forget drops the series of an endpoint that no longer runs here.
func (m *metrics) forget(id string) {
	m.backlog.DeleteLabelValues(id)
}
