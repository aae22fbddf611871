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
	// Required marks a parameter the route cannot do without.
	Required bool
	// Example is a value shown in the document, nil for none.
	Example any
}

// Route is one entry of the route table: the single source for routing, access control
// and the OpenAPI description.
type Route struct {
	Method  string
	Path    string // Fiber syntax: /v1/campaigns/:id
	Access  Access
	Summary string
	Handler fiber.Handler
	// OperationID names the operation for client generators: lowerCamelCase, unique in
	// the table, a verb and the resource (createCampaign, listUserRewards).
	OperationID string
	// Tag groups the operation in the document and in /docs; the Group's Tags describe it.
	Tag string
	// Statuses are the statuses the handler answers, success first: each 2xx carries the
	// Response body (none for 204); each 4xx and 5xx a problem. The document adds what the
	// server adds around the handler: 401 and 403 from the route's guard (by Access), 413
	// from the body limit when the route takes a Request, and 500 from the error handler.
	Statuses []int
	// StatusNotes says what a status means for this route, where the generic text of
	// the status is not enough (e.g. 409: "archived; only PUT brings it back").
	StatusNotes map[int]string
	// Request and Response name schemas of the OpenAPI document; empty for none.
	Request  string
	Response string
	// ResponseType is the media type of a success body that is not JSON (text/html,
	// text/plain, text/css), described as a string; empty means application/json.
	ResponseType string
	// Headers name the response headers a success answer carries, from the document's
	// components: "ETag", "Location".
	Headers []string
	// Params are the route's query and header parameters (path parameters come from Path).
	Params []Param
	// Description, when set, is the operation's long description (Markdown).
	Description string
}

// Tag describes a group of operations: the document's tags and the sections of /docs.
type Tag struct {
	Name        string
	Description string
}

// Group is a set of routes with the schemas their bodies name, the tags their routes
// use, and example values of some schemas (by schema name) for the document.
type Group struct {
	Routes   []Route
	Schemas  map[string]any
	Tags     []Tag
	Examples map[string]any
}

// Merge appends the routes, schemas, tags and examples of others to g. A schema, tag or
// example defined twice keeps the first definition; tags keep their first order.
func (g Group) Merge(others ...Group) Group {
	if g.Schemas == nil {
		g.Schemas = map[string]any{}
	}
	if g.Examples == nil {
		g.Examples = map[string]any{}
	}
	tags := map[string]bool{}
	for _, t := range g.Tags {
		tags[t.Name] = true
	}
	for _, o := range others {
		g.Routes = append(g.Routes, o.Routes...)
		for k, v := range o.Schemas {
			if _, ok := g.Schemas[k]; !ok {
				g.Schemas[k] = v
			}
		}
		for k, v := range o.Examples {
			if _, ok := g.Examples[k]; !ok {
				g.Examples[k] = v
			}
		}
		for _, t := range o.Tags {
			if !tags[t.Name] {
				tags[t.Name] = true
				g.Tags = append(g.Tags, t)
			}
		}
	}
	return g
}

// Pagination are the limit and cursor query parameters of a paged list.
var Pagination = []Param{
	{Name: "limit", In: "query", Description: "Page size, 1 to 1000 (default 100)",
		Schema: map[string]any{"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, Example: 100},
	{Name: "cursor", In: "query", Description: "The previous page's next_cursor; absent for the first page",
		Schema: map[string]any{"type": "string", "pattern": "^[0-9]+$"}},
}

// IfMatch is the If-Match header parameter of a versioned resource.
var IfMatch = Param{Name: "If-Match", In: "header",
	Description: `The version the change is based on, quoted or bare ("3" or 3), as the ETag of a GET gave it; ` +
		`412 when it is not the stored one. Without it the change applies to whatever is stored.`,
	Schema: map[string]any{"type": "string", "pattern": `^(\*|"?[0-9]+"?)$`}, Example: `"3"`}

// EventPublisher stores events in JetStream (bus.Publisher implements it).
type EventPublisher interface {
	// PublishEvents stores evs and waits for JetStream's acknowledgement of each. The
	// result at index i belongs to evs[i]. It is safe for concurrent use.
	PublishEvents(ctx context.Context, evs []*event.Event, correlationID string) []bus.PublishResult
}
