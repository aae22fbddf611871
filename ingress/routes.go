package ingress

import (
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/ingress/api"
	"github.com/campaignmanager/campaignmanager/ingress/console"
)

// routeTable lists every route the server serves, with the schemas of their bodies: the
// one source for routing, access control and the OpenAPI document.
func (s *Server) routeTable() api.Group {
	const ops, docs, events = "Operations", "Documentation", "Events"
	ref := &apiDocs{s: s}
	g := api.Group{
		Tags: []api.Tag{{Name: events, Description: "Event ingest for storefronts, with an API key (`Authorization: ApiKey <key>` or `X-API-Key: <key>`). " +
			"An answer of 2xx means JetStream stored the event; a repeated id is a duplicate and changes nothing."}},
		Routes: []api.Route{
			{Method: "POST", Path: "/v1/events", Access: api.APIKey, Tag: events, OperationID: "ingestEvent",
				Summary: "Ingest one event", Handler: s.postEvent, Request: "Event", Response: "EventAccepted",
				Statuses: []int{200, 202, 400, 413, 415, 503},
				StatusNotes: map[int]string{
					200: "Duplicate: an event with this id was accepted before (duplicate is true)",
					202: "Stored in JetStream; the engine applies it in order with the user's other events",
					400: "The event is invalid; the problem names the field",
					413: "The event is larger than 64 KiB",
					503: "JetStream did not acknowledge the event; retry with the same id after Retry-After",
				}},
			{Method: "POST", Path: "/v1/events/batch", Access: api.APIKey, Tag: events, OperationID: "ingestEventBatch",
				Summary: "Ingest up to 1000 events; each gets its own status", Handler: s.postEventBatch, Request: "EventBatch", Response: "EventBatchResult",
				Statuses: []int{200, 400, 415, 503},
				StatusNotes: map[int]string{
					200: "Each event's outcome, in order: 202 stored, 200 duplicate, 400 invalid, 503 not stored",
					400: "The body is not {\"events\": [...]} with 1 to 1000 events",
					503: "No event could be stored; retry after Retry-After",
				}},
		},
		Schemas:  ingestSchemas(),
		Examples: ingestExamples(),
	}
	if s.cfg.OpsOnly {
		g.Routes = slices.DeleteFunc(g.Routes, func(r api.Route) bool { return r.Access != api.Public })
		return g
	}
	if s.deps.Admin != nil {
		g = g.Merge(s.deps.Admin.Routes(), console.Routes())
	}
	g = g.Merge(api.Group{
		Tags: []api.Tag{
			{Name: ops, Description: "Health, readiness and metrics, for load balancers, orchestrators and Prometheus. Public."},
			{Name: docs, Description: "This description, as OpenAPI 3.1 and as a page for people. Public."},
		},
		Routes: []api.Route{
			{Method: "GET", Path: "/healthz", Access: api.Public, Tag: ops, OperationID: "getHealth",
				Summary: "Process is alive", Handler: s.healthz, Response: "Health", Statuses: []int{200}},
			{Method: "GET", Path: "/readyz", Access: api.Public, Tag: ops, OperationID: "getReadiness",
				Summary: "Dependencies reachable, streams present, campaigns loaded", Handler: s.readyz, Response: "Health",
				Statuses: []int{200, 503}, StatusNotes: map[int]string{503: "Not ready: the detail names what is missing"}},
			{Method: "GET", Path: "/metrics", Access: api.Public, Tag: ops, OperationID: "getMetrics",
				Summary: "Prometheus metrics (text exposition format)", Handler: s.metricsHandler(), ResponseType: fiber.MIMETextPlain,
				Statuses: []int{200}},
			{Method: "GET", Path: "/openapi.json", Access: api.Public, Tag: docs, OperationID: "getOpenAPI",
				Summary: "This OpenAPI 3.1 description", Handler: ref.openapi, Response: "OpenAPI", Statuses: []int{200}},
			{Method: "GET", Path: "/docs", Access: api.Public, Tag: docs, OperationID: "getDocs",
				Summary: "The API reference for people (HTML rendered from /openapi.json)", Handler: ref.page, ResponseType: fiber.MIMETextHTML,
				Statuses: []int{200}},
			{Method: "GET", Path: "/docs/style.css", Access: api.Public, Tag: docs, OperationID: "getDocsStylesheet",
				Summary: "The stylesheet of /docs", Handler: ref.stylesheet, ResponseType: "text/css", Statuses: []int{200}},
		},
	})
	return g
}

// mount installs the middleware and every route behind its access guard; the answers of
// the admin API (admin access, and the token exchange) are never stored by a cache.
func (s *Server) mount() {
	s.app.Use(s.observe)
	for _, r := range s.routes.Routes {
		if isAdminAPI(r) {
			s.app.Add(r.Method, r.Path, noStore, s.guard(r.Access), r.Handler)
			continue
		}
		s.app.Add(r.Method, r.Path, s.guard(r.Access), r.Handler)
	}
}

// isAdminAPI reports whether r is a route of the admin API: one needing an admin token,
// or under /v1/auth/.
func isAdminAPI(r api.Route) bool {
	return r.Access.IsAdmin() || strings.HasPrefix(r.Path, "/v1/auth/")
}

// noStore marks the answer, error or not, as one no cache may keep (tokens, keys,
// loyalty data, the audit log).
func noStore(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Next()
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
