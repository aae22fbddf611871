package ingress

import (
	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/ingress/api"
	"github.com/campaignmanager/campaignmanager/ingress/console"
)

// routeTable lists every route the server serves, with the schemas of their bodies: the
// one source for routing, access control and the OpenAPI document.
func (s *Server) routeTable() api.Group {
	g := api.Group{
		Routes: []api.Route{
			{Method: "GET", Path: "/healthz", Access: api.Public, Summary: "Process is alive", Handler: s.healthz},
			{Method: "GET", Path: "/readyz", Access: api.Public, Summary: "Dependencies reachable, streams present, campaigns loaded", Handler: s.readyz},
			{Method: "GET", Path: "/metrics", Access: api.Public, Summary: "Prometheus metrics", Handler: s.metricsHandler()},
			{Method: "GET", Path: "/openapi.json", Access: api.Public, Summary: "OpenAPI 3 description", Handler: s.openapi},
			{Method: "GET", Path: "/docs", Access: api.Public, Summary: "Human-readable API documentation", Handler: s.docs},
			{Method: "POST", Path: "/v1/events", Access: api.APIKey, Summary: "Ingest one event", Handler: s.postEvent, Request: "Event", Response: "EventAccepted"},
			{Method: "POST", Path: "/v1/events/batch", Access: api.APIKey, Summary: "Ingest up to 1000 events", Handler: s.postEventBatch, Request: "EventBatch", Response: "EventBatchResult"},
		},
		Schemas: ingestSchemas(),
	}
	if s.deps.Admin != nil {
		g = g.Merge(s.deps.Admin.Routes(), console.Routes())
	}
	return g
}

// mount installs the middleware and every route behind its access guard.
func (s *Server) mount() {
	s.app.Use(s.observe)
	for _, r := range s.routes.Routes {
		s.app.Add(r.Method, r.Path, s.guard(r.Access), r.Handler)
	}
}

// guard is the access check of a route: public routes pass; API-key routes need a valid,
// unrevoked ingest key; admin routes need the admin API's guard.
func (s *Server) guard(a api.Access) fiber.Handler {
	switch {
	case a == api.APIKey:
		return s.guardAPIKey
	case a.IsAdmin():
		return s.deps.Admin.Guard(a)
	}
	return func(c *fiber.Ctx) error { return c.Next() }
}
