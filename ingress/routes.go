package ingress

import "github.com/gofiber/fiber/v2"

// access is who may call a route.
type access int

const (
	accessPublic access = iota // no credentials
	accessAPIKey               // storefront ingest key
	accessViewer               // admin token, any role
	accessEditor               // admin token, editor or admin
	accessAdmin                // admin token, admin only
)

func (a access) String() string {
	return [...]string{"public", "api_key", "viewer", "editor", "admin"}[a]
}

// route is one entry of the route table: the single source for routing, access control
// and the OpenAPI description.
type route struct {
	method  string
	path    string
	access  access
	summary string
	handler fiber.Handler
	// request and response name schemas in the OpenAPI description; empty for none.
	request  string
	response string
}

// routeTable lists every route the server serves.
func (s *Server) routeTable() []route {
	rs := []route{
		{method: "GET", path: "/healthz", access: accessPublic, summary: "Process is alive", handler: s.healthz},
		{method: "GET", path: "/readyz", access: accessPublic, summary: "Dependencies reachable, streams present, campaigns loaded", handler: s.readyz},
		{method: "GET", path: "/metrics", access: accessPublic, summary: "Prometheus metrics", handler: s.metricsHandler()},
		{method: "GET", path: "/openapi.json", access: accessPublic, summary: "OpenAPI 3 description", handler: s.openapi},
		{method: "GET", path: "/docs", access: accessPublic, summary: "Human-readable API documentation", handler: s.docs},
		{method: "POST", path: "/v1/events", access: accessAPIKey, summary: "Ingest one event", handler: s.postEvent, request: "Event", response: "EventAccepted"},
		{method: "POST", path: "/v1/events/batch", access: accessAPIKey, summary: "Ingest up to 1000 events", handler: s.postEventBatch, request: "EventBatch", response: "EventBatchResult"},
	}
	if s.tokens != nil {
		rs = append(rs, s.adminRoutes()...)
	}
	return rs
}

func (s *Server) routes() {
	s.app.Use(s.observe)
	for _, r := range s.routeTable() {
		s.app.Add(r.method, r.path, s.guard(r.access), r.handler)
	}
}
