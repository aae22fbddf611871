package api

import (
	"context"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/event"
	"github.com/gofiber/fiber/v2"
)

// Access is who may call a route.
type Access int

// Access levels, lowest first.
const (
	Public Access = iota // no credentials
	APIKey               // a storefront's ingest key
	Viewer               // an admin token, any role
	Editor               // an admin token, editor or admin
	Admin                // an admin token, admin only
)

// String names the level as the OpenAPI document's x-access shows it.
func (a Access) String() string {
	return [...]string{"public", "api_key", "viewer", "editor", "admin"}[a]
}

// Rank orders the admin levels (Viewer 1, Editor 2, Admin 3; 0 for the others): a role of
// rank r may call routes of rank at most r.
func (a Access) Rank() int {
	switch a {
	case Viewer:
		return 1
	case Editor:
		return 2
	case Admin:
		return 3
	}
	return 0
}

// IsAdmin reports whether the level needs an admin token.
func (a Access) IsAdmin() bool { return a.Rank() > 0 }

// Param describes a query or header parameter of a route, for the OpenAPI document.
type Param struct {
	Name string
	// In is "query" or "header".
	In          string
	Description string
	// Schema is the parameter's JSON schema; nil means a string.
	Schema map[string]any
}

// Route is one entry of the route table: the single source for routing, access control
// and the OpenAPI description.
type Route struct {
	Method  string
	Path    string // Fiber syntax: /v1/campaigns/:id
	Access  Access
	Summary string
	Handler fiber.Handler
	// Request and Response name schemas of the OpenAPI document; empty for none.
	Request  string
	Response string
	// Params are the route's query and header parameters (path parameters come from Path).
	Params []Param
	// Description, when set, is the operation's long description (Markdown).
	Description string
}

// Group is a set of routes with the schemas their bodies name.
type Group struct {
	Routes  []Route
	Schemas map[string]any
}

// Merge appends the routes and schemas of others to g. A schema name defined twice keeps
// the first definition.
func (g Group) Merge(others ...Group) Group {
	if g.Schemas == nil {
		g.Schemas = map[string]any{}
	}
	for _, o := range others {
		g.Routes = append(g.Routes, o.Routes...)
		for k, v := range o.Schemas {
			if _, ok := g.Schemas[k]; !ok {
				g.Schemas[k] = v
			}
		}
	}
	return g
}

// Pagination are the limit and cursor query parameters of a paged list.
var Pagination = []Param{
	{Name: "limit", In: "query", Description: "Page size, 1 to 1000 (default 100)",
		Schema: map[string]any{"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
	{Name: "cursor", In: "query", Description: "The previous page's next_cursor"},
}

// IfMatch is the If-Match header parameter of a versioned resource.
var IfMatch = Param{Name: "If-Match", In: "header",
	Description: `The version the change is based on, quoted or bare ("3" or 3); 412 when it is not the stored one`}

// EventPublisher stores events in JetStream (bus.Publisher implements it).
type EventPublisher interface {
	// PublishEvents stores evs and waits for JetStream's acknowledgement of each. The
	// result at index i belongs to evs[i]. It is safe for concurrent use.
	PublishEvents(ctx context.Context, evs []*event.Event, correlationID string) []bus.PublishResult
}
