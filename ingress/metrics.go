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

// defaultHTMLCSP is the Content-Security-Policy of an HTML answer whose handler set none
// (/docs and the console set their own): nothing may load, run, frame it or be posted.
const defaultHTMLCSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// maxRequestIDLen bounds an X-Request-ID taken from a client.
const maxRequestIDLen = 64

// validRequestID reports whether id may be the correlation id as the client sent it: 1
// to maxRequestIDLen bytes of [A-Za-z0-9._:-]. It travels in logs, answers and the
// Campaign-Correlation-Id NATS header, so nothing else (spaces, CR and LF, non-ASCII,
// NATS' own separators) is ever copied from the request.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// observe assigns the correlation id (the client's X-Request-ID when it is a bounded
// token, see validRequestID, else a new UUID), sets the headers of every answer
// (X-Content-Type-Options: nosniff; a strict CSP on HTML that has none), records metrics
// for every request and, at debug level, logs one access line per request (method,
// route, status, duration_ms, correlation_id).
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	cid := c.Get("X-Request-ID")
	if validRequestID(cid) {
		cid = strings.Clone(cid)
	} else {
		cid = uuid.NewString()
	}
	api.SetCorrelationID(c, cid)
	c.Set("X-Request-ID", cid)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	err := c.Next()
	if err != nil {
		if herr := c.App().Config().ErrorHandler(c, err); herr != nil {
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
	}
	h := &c.Response().Header
	h.Set(fiber.HeaderXContentTypeOptions, "nosniff") // again: a handler may have replaced the headers
	if strings.HasPrefix(strings.ToLower(string(h.ContentType())), "text/html") && len(h.Peek(fiber.HeaderContentSecurityPolicy)) == 0 {
		h.Set(fiber.HeaderContentSecurityPolicy, defaultHTMLCSP)
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
