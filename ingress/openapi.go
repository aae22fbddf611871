package ingress

import (
	"html"
	"regexp"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/ingress/api"
)

var pathParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// openapiDoc builds the OpenAPI 3.1 description from the route table, so it cannot drift
// from what the server serves.
func (s *Server) openapiDoc() fiber.Map {
	paths := fiber.Map{}
	for _, r := range s.routes.Routes {
		p := pathParam.ReplaceAllString(r.Path, "{$1}")
		item, _ := paths[p].(fiber.Map)
		if item == nil {
			item = fiber.Map{}
			paths[p] = item
		}
		item[strings.ToLower(r.Method)] = s.operation(r)
	}
	return fiber.Map{
		"openapi": "3.1.0",
		"info": fiber.Map{"title": "Campaign Manager API", "version": "1",
			"description": "Event ingest for storefronts (API key) and the admin API (JWT). Errors are RFC 9457 problem details."},
		"paths": paths,
		"components": fiber.Map{
			"securitySchemes": fiber.Map{
				"apiKey":       fiber.Map{"type": "apiKey", "in": "header", "name": "Authorization", "description": "ApiKey <key>"},
				"apiKeyHeader": fiber.Map{"type": "apiKey", "in": "header", "name": "X-API-Key"},
				"bearer":       fiber.Map{"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
			},
			"schemas": s.routes.Schemas,
		},
	}
}

// operation describes one route.
func (s *Server) operation(r api.Route) fiber.Map {
	op := fiber.Map{
		"summary":     r.Summary,
		"operationId": strings.ToLower(r.Method) + strings.NewReplacer("/", "_", ":", "", "{", "", "}", "", ".", "_", "-", "_").Replace(r.Path),
		"x-access":    r.Access.String(),
		"responses": fiber.Map{
			"default": fiber.Map{"description": "Problem details (RFC 9457)", "content": fiber.Map{
				"application/problem+json": fiber.Map{"schema": fiber.Map{"$ref": "#/components/schemas/Problem"}}}},
		},
	}
	if r.Description != "" {
		op["description"] = r.Description
	}
	ok := fiber.Map{"description": "Success"}
	if r.Response != "" {
		ok["content"] = fiber.Map{"application/json": fiber.Map{"schema": s.schemaRef(r.Response)}}
	}
	op["responses"].(fiber.Map)["2XX"] = ok
	if r.Request != "" {
		op["requestBody"] = fiber.Map{"required": true, "content": fiber.Map{
			"application/json": fiber.Map{"schema": s.schemaRef(r.Request)}}}
	}
	var params []fiber.Map
	for _, m := range pathParam.FindAllStringSubmatch(r.Path, -1) {
		params = append(params, fiber.Map{"name": m[1], "in": "path", "required": true,
			"description": "URL-escaped", "schema": fiber.Map{"type": "string"}})
	}
	for _, q := range r.Params {
		schema := q.Schema
		if schema == nil {
			schema = fiber.Map{"type": "string"}
		}
		params = append(params, fiber.Map{"name": q.Name, "in": q.In, "description": q.Description, "schema": schema})
	}
	if params != nil {
		op["parameters"] = params
	}
	switch {
	case r.Access == api.APIKey:
		op["security"] = []fiber.Map{{"apiKey": []string{}}, {"apiKeyHeader": []string{}}}
	case r.Access.IsAdmin():
		op["security"] = []fiber.Map{{"bearer": []string{}}}
	}
	return op
}

func (s *Server) schemaRef(name string) fiber.Map {
	if _, ok := s.routes.Schemas[name]; ok {
		return fiber.Map{"$ref": "#/components/schemas/" + name}
	}
	return fiber.Map{"type": "object", "title": name}
}

// ingestSchemas describe the bodies of event ingest and the problem details.
func ingestSchemas() map[string]any {
	return map[string]any{
		"Problem": fiber.Map{"type": "object", "properties": fiber.Map{
			"type": str(), "title": str(), "status": fiber.Map{"type": "integer"}, "detail": str(), "field": str(),
			"errors": fiber.Map{"type": "array", "items": fiber.Map{"type": "object", "properties": fiber.Map{
				"field": str(), "message": str(), "line": fiber.Map{"type": "integer"}, "column": fiber.Map{"type": "integer"},
				"snippet": fiber.Map{"type": "string", "description": "The source line and a caret under the column"}}}},
		}},
		"Event": fiber.Map{"type": "object", "required": []string{"id", "user_id", "type"}, "properties": fiber.Map{
			"id":          fiber.Map{"type": "string", "minLength": 1, "maxLength": 128, "description": "Idempotency key"},
			"user_id":     fiber.Map{"type": "string", "minLength": 1, "maxLength": 256},
			"type":        fiber.Map{"type": "string", "pattern": "^[a-z][a-z0-9_.]{0,63}$"},
			"amount":      fiber.Map{"type": "number", "minimum": 0},
			"currency":    fiber.Map{"type": "string", "description": "ISO 4217 code"},
			"occurred_at": fiber.Map{"type": "string", "format": "date-time"},
			"attributes":  fiber.Map{"type": "object"},
		}},
		"EventAccepted": fiber.Map{"type": "object", "properties": fiber.Map{"id": str(), "duplicate": fiber.Map{"type": "boolean"}}},
		"EventBatch": fiber.Map{"type": "object", "required": []string{"events"}, "properties": fiber.Map{
			"events": fiber.Map{"type": "array", "maxItems": 1000, "items": fiber.Map{"$ref": "#/components/schemas/Event"}}}},
		"EventBatchResult": fiber.Map{"type": "object", "properties": fiber.Map{"results": fiber.Map{"type": "array", "items": fiber.Map{
			"type": "object", "properties": fiber.Map{"id": str(), "status": fiber.Map{"type": "integer"},
				"duplicate": fiber.Map{"type": "boolean"}, "error": fiber.Map{"$ref": "#/components/schemas/Problem"}}}}}},
	}
}

func str() fiber.Map { return fiber.Map{"type": "string"} }

func (s *Server) openapi(c *fiber.Ctx) error { return c.JSON(s.openapiDoc()) }

// docs renders the route table as a page for people.
func (s *Server) docs(c *fiber.Ctx) error {
	var b strings.Builder
	b.WriteString(`<!doctype html><html><head><meta charset="utf-8"><title>Campaign Manager API</title>
<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{padding:.3em .8em;text-align:left}code{background:#eee}</style>
</head><body><h1>Campaign Manager API</h1><p>Machine-readable description: <a href="/openapi.json">/openapi.json</a>.
Errors are RFC 9457 problem details. Storefronts send <code>Authorization: ApiKey &lt;key&gt;</code>; admins send
<code>Authorization: Bearer &lt;token&gt;</code> from <code>POST /v1/auth/token</code>.</p><table><tr><th>Method</th><th>Path</th><th>Access</th><th>What</th></tr>`)
	for _, r := range s.routes.Routes {
		b.WriteString("<tr><td>" + r.Method + "</td><td><code>" + html.EscapeString(r.Path) + "</code></td><td>" +
			r.Access.String() + "</td><td>" + html.EscapeString(r.Summary) + "</td></tr>")
	}
	b.WriteString("</table></body></html>")
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.SendString(b.String())
}
