package ingress

import (
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/campaignmanager/campaignmanager/ingress/api"
)

type metrics struct {
	accepted  prometheus.Counter
	duplicate prometheus.Counter
	rejected  *prometheus.CounterVec
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "campaign_events_accepted_total", Help: "Events stored in JetStream through HTTP."}),
		duplicate: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "campaign_events_duplicate_total", Help: "Events refused by JetStream's dedup window as already accepted."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "campaign_events_rejected_total", Help: "Events refused at ingress, by reason."}, []string{"reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "campaign_http_requests_total", Help: "HTTP requests by route, method and status."}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "campaign_http_request_duration_seconds", Help: "HTTP request latency by route and method.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14)}, []string{"route", "method"}),
	}
	// Every known reason is exported from the start (at 0), so that rates and alerts
	// over it work before the first rejection.
	for _, reason := range rejectReasons {
		m.rejected.WithLabelValues(reason)
	}
	for _, c := range []prometheus.Collector{m.accepted, m.duplicate, m.rejected, m.requests, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// rejectReasons are the reason labels of campaign_events_rejected_total: a body over
// 64 KiB, an invalid event, and JetStream not acknowledging it.
var rejectReasons = []string{"too_large", "invalid", "unavailable"}

// observe assigns the correlation id, records metrics for every request and, at debug
// level, logs one access line per request (method, route, status, duration_ms,
// correlation_id).
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	cid := strings.Clone(c.Get("X-Request-ID"))
	if cid == "" || len(cid) > 128 {
		cid = uuid.NewString()
	}
	api.SetCorrelationID(c, cid)
	c.Set("X-Request-ID", cid)
	err := c.Next()
	if err != nil {
		if herr := c.App().Config().ErrorHandler(c, err); herr != nil {
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
	}
	// Fiber's strings point into buffers it reuses: copy what outlives the request.
	route := strings.Clone(c.Route().Path)
	if route == "" || route == "/" {
		route = "unmatched"
	}
	method := strings.Clone(c.Method())
	status := c.Response().StatusCode()
	elapsed := time.Since(start)
	s.metrics.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	s.metrics.latency.WithLabelValues(route, method).Observe(elapsed.Seconds())
	if s.log.Enabled(c.UserContext(), slog.LevelDebug) {
		s.log.LogAttrs(c.UserContext(), slog.LevelDebug, "request",
			slog.String("method", method), slog.String("route", route), slog.Int("status", status),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000), slog.String("correlation_id", cid))
	}
	return nil
}

func (s *Server) metricsHandler() fiber.Handler {
	g := s.deps.Gatherer
	if g == nil {
		if r, ok := s.deps.Registerer.(prometheus.Gatherer); ok {
			g = r
		} else {
			g = prometheus.DefaultGatherer
		}
	}
	return adaptor.HTTPHandler(promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
}
