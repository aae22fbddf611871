package ingress

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/ingress/api"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

var pathParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// openapiPath is a route's path in OpenAPI form: /v1/campaigns/{id}.
func openapiPath(fiberPath string) string {
	return strings.Replace(pathParam.ReplaceAllString(fiberPath, "{$1}"), "/*", "/{path}", 1)
}

// problemType is the media type of every error answer (RFC 9457).
const problemType = "application/problem+json"

// openapiDoc builds the OpenAPI 3.1 description from the route table, so it cannot drift
// from what the server serves. It uses no 3.1-only type arrays (a nullable value is a
// oneOf with {"type": "null"}), which client generators do not handle.
func (s *Server) openapiDoc() fiber.Map {
	paths := fiber.Map{}
	for _, r := range s.routes.Routes {
		p := openapiPath(r.Path)
		item, _ := paths[p].(fiber.Map)
		if item == nil {
			item = fiber.Map{}
			paths[p] = item
		}
		item[strings.ToLower(r.Method)] = s.operation(r)
	}
	tags := make([]fiber.Map, 0, len(s.routes.Tags))
	for _, t := range s.routes.Tags {
		tags = append(tags, fiber.Map{"name": t.Name, "description": t.Description})
	}
	return fiber.Map{
		"openapi": "3.1.0",
		"info": fiber.Map{
			"title":   "Campaign Manager API",
			"version": "1",
			"description": "Event ingest for storefronts (API key) and the admin API (JWT) of Campaign Manager. " +
				"Request bodies are JSON without unknown fields; errors are RFC 9457 problem details (`application/problem+json`). " +
				"Lists are oldest first, paged with `limit` and `cursor` (the previous page's `next_cursor`). " +
				"Every answer carries `X-Request-ID`: the request's own when it is 1 to 64 of `[A-Za-z0-9._:-]`, else a generated one; " +
				"`X-Content-Type-Options: nosniff`; and, from the admin API (every route with a token, and `/v1/auth/*`), `Cache-Control: no-store`. " +
				"HTML pages carry a strict `Content-Security-Policy`.",
			"license": fiber.Map{"name": "Apache 2.0", "identifier": "Apache-2.0"},
		},
		"servers": []fiber.Map{{"url": "/", "description": "The campaignd that serves this document"}},
		"tags":    tags,
		"paths":   paths,
		"components": fiber.Map{
			"securitySchemes": fiber.Map{
				"apiKey": fiber.Map{"type": "apiKey", "in": "header", "name": "Authorization",
					"description": "A storefront API key (POST /v1/api-keys) as `Authorization: ApiKey <key>`"},
				"apiKeyHeader": fiber.Map{"type": "apiKey", "in": "header", "name": "X-API-Key",
					"description": "A storefront API key as `X-API-Key: <key>`"},
				"bearer": fiber.Map{"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
					"description": "An admin access token from POST /v1/auth/token, valid 15 minutes"},
			},
			"parameters": fiber.Map{
				"RequestID": fiber.Map{"name": "X-Request-ID", "in": "header", "required": false,
					"description": "A correlation id for the server's logs, the answer and the event's NATS header (Campaign-Correlation-Id): " +
						"1 to 64 of [A-Za-z0-9._:-]. Absent or anything else, a new one is generated. The answer says which.",
					"schema": fiber.Map{"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$"}, "example": "3f1c9a2e-order-1001"},
			},
			"headers": responseHeaders(),
			"schemas": s.routes.Schemas,
		},
	}
}

// responseHeaders are the headers answers carry, by the names Route.Headers uses. Each
// is required where it is listed (the server always sends it there), except
// X-Request-ID, which an answer the HTTP layer gives before routing (a body over the
// server's limit) lacks.
func responseHeaders() fiber.Map {
	header := func(required bool, desc string, schema fiber.Map) fiber.Map {
		return fiber.Map{"description": desc, "required": required, "schema": schema}
	}
	str := fiber.Map{"type": "string"}
	return fiber.Map{
		"RequestID":       header(false, "The request's correlation id (X-Request-ID as sent when it is a token of 1 to 64 [A-Za-z0-9._:-], else generated)", str),
		"ETag":            header(true, `The version of the resource, quoted ("3"); send it back as If-Match`, str),
		"Location":        header(true, "Where the created resource is", str),
		"RetryAfter":      header(true, "Seconds to wait before retrying", fiber.Map{"type": "integer", "minimum": 1}),
		"WWWAuthenticate": header(true, "The authentication scheme the route needs (Bearer or ApiKey)", str),
	}
}

// headerNames map a response header's document name to its HTTP name.
var headerNames = map[string]string{
	"RequestID": "X-Request-ID", "ETag": "ETag", "Location": "Location",
	"RetryAfter": "Retry-After", "WWWAuthenticate": "WWW-Authenticate",
}

// statuses are every status r answers: its handler's (r.Statuses) and what the server
// adds around it (the guard's 401 and 403, the body limit's 413, the error handler's
// 500), sorted.
func statuses(r api.Route) []int {
	out := append([]int(nil), r.Statuses...)
	switch {
	case r.Access == api.APIKey:
		out = append(out, http.StatusUnauthorized)
	case r.Access.IsAdmin():
		out = append(out, http.StatusUnauthorized, http.StatusForbidden)
	}
	if r.Request != "" {
		out = append(out, http.StatusRequestEntityTooLarge)
	}
	out = append(out, http.StatusInternalServerError)
	slices.Sort(out)
	return slices.Compact(out)
}

// statusText is what a status means when the route says nothing more.
var statusText = map[int]string{
	200: "OK",
	201: "Created",
	202: "Accepted: stored, applied in order with the user's other events",
	204: "Done; no content",
	400: "Invalid request: the problem names the field (field), and errors lists each problem",
	401: "Missing, invalid or expired credentials; WWW-Authenticate names the scheme",
	403: "The admin's role may not do this",
	404: "Not found",
	409: "Conflict with the stored state",
	412: "If-Match is not the stored version: read it again and retry",
	413: "The request body is too large",
	415: "The body must be JSON (Content-Type: application/json)",
	422: "The request cannot be carried out on this resource",
	429: "Too many requests; Retry-After says when to try again",
	500: "Internal error; the server log has the details (find them by X-Request-ID)",
	503: "Unavailable for now; retry after Retry-After seconds",
}

// operation describes one route.
func (s *Server) operation(r api.Route) fiber.Map {
	op := fiber.Map{
		"operationId": r.OperationID,
		"summary":     r.Summary,
		"x-access":    r.Access.String(),
		"responses":   s.responses(r),
	}
	if r.Tag != "" {
		op["tags"] = []string{r.Tag}
	}
	desc := r.Description
	if r.Access.IsAdmin() {
		desc = strings.TrimSpace("Role: **" + r.Access.String() + "** or higher.\n\n" + desc)
	}
	if desc != "" {
		op["description"] = desc
	}
	if r.Request != "" {
		media := fiber.Map{"schema": s.schemaRef(r.Request)}
		if ex, ok := s.routes.Examples[r.Request]; ok {
			media["example"] = ex
		}
		op["requestBody"] = fiber.Map{"required": true, "content": fiber.Map{fiber.MIMEApplicationJSON: media}}
	}
	params := []fiber.Map{}
	for _, m := range pathParam.FindAllStringSubmatch(r.Path, -1) {
		params = append(params, fiber.Map{"name": m[1], "in": "path", "required": true,
			"description": "The " + m[1] + ", URL-escaped (any UTF-8)", "schema": fiber.Map{"type": "string", "minLength": 1}})
	}
	if strings.HasSuffix(r.Path, "/*") {
		params = append(params, fiber.Map{"name": "path", "in": "path", "required": true,
			"description": "The rest of the path", "schema": fiber.Map{"type": "string"}})
	}
	for _, q := range r.Params {
		schema := q.Schema
		if schema == nil {
			schema = fiber.Map{"type": "string"}
		}
		p := fiber.Map{"name": q.Name, "in": q.In, "description": q.Description, "required": q.Required, "schema": schema}
		if q.Example != nil {
			p["example"] = q.Example
		}
		params = append(params, p)
	}
	params = append(params, fiber.Map{"$ref": "#/components/parameters/RequestID"})
	op["parameters"] = params
	switch {
	case r.Access == api.APIKey:
		op["security"] = []fiber.Map{{"apiKey": []string{}}, {"apiKeyHeader": []string{}}}
	case r.Access.IsAdmin():
		op["security"] = []fiber.Map{{"bearer": []string{}}}
	default:
		op["security"] = []fiber.Map{} // public: no credentials
	}
	return op
}

// responses describes every status of r: success answers with r.Response (and its
// example), errors with the problem schema, each with the headers it carries.
func (s *Server) responses(r api.Route) fiber.Map {
	out := fiber.Map{}
	for _, st := range statuses(r) {
		desc := r.StatusNotes[st]
		if desc == "" {
			desc = statusText[st]
		}
		if desc == "" {
			desc = http.StatusText(st)
		}
		headers := []string{"RequestID"}
		resp := fiber.Map{"description": desc}
		switch {
		case st < 300:
			headers = append(headers, r.Headers...)
			if st == http.StatusNoContent || (r.Response == "" && r.ResponseType == "") {
				break
			}
			media := fiber.Map{"schema": fiber.Map{"type": "string"}}
			mt := r.ResponseType
			if mt == "" {
				mt = fiber.MIMEApplicationJSON
				media = fiber.Map{"schema": s.schemaRef(r.Response)}
				if ex, ok := s.routes.Examples[r.Response]; ok {
					media["example"] = ex
				}
			}
			resp["content"] = fiber.Map{mt: media}
		default:
			switch st {
			case http.StatusUnauthorized:
				headers = append(headers, "WWWAuthenticate")
			case http.StatusTooManyRequests, http.StatusServiceUnavailable:
				headers = append(headers, "RetryAfter")
			}
			resp["content"] = fiber.Map{problemType: fiber.Map{"schema": fiber.Map{"$ref": "#/components/schemas/Problem"}}}
		}
		hs := fiber.Map{}
		for _, h := range headers {
			hs[headerNames[h]] = fiber.Map{"$ref": "#/components/headers/" + h}
		}
		resp["headers"] = hs
		out[strconv.Itoa(st)] = resp
	}
	return out
}

func (s *Server) schemaRef(name string) fiber.Map {
	if _, ok := s.routes.Schemas[name]; ok {
		return fiber.Map{"$ref": "#/components/schemas/" + name}
	}
	return fiber.Map{"type": "object", "title": name}
}

// ingestSchemas describe the bodies of event ingest, health and the problem details.
func ingestSchemas() map[string]any {
	integer := fiber.Map{"type": "integer"}
	boolean := fiber.Map{"type": "boolean"}
	return map[string]any{
		"Problem": fiber.Map{"type": "object", "required": []string{"type", "title", "status"},
			"description": "RFC 9457 problem details", "properties": fiber.Map{
				"type":   fiber.Map{"type": "string", "description": "about:blank"},
				"title":  fiber.Map{"type": "string", "description": "The status' standard text"},
				"status": integer,
				"detail": fiber.Map{"type": "string", "description": "What went wrong, for people"},
				"field":  fiber.Map{"type": "string", "description": "The request field at fault (the first one)"},
				"reason": fiber.Map{"type": "string", "description": "Why, for machines, where a route has several reasons (coupons: unknown, other_user, expired, redeemed)"},
				"errors": fiber.Map{"type": "array", "description": "Each problem, e.g. every invalid field, or each compile error of a rule",
					"items": fiber.Map{"type": "object", "required": []string{"message"}, "properties": fiber.Map{
						"field": str(), "message": str(),
						"line":    fiber.Map{"type": "integer", "minimum": 1, "description": "1-based, for problems inside an expression"},
						"column":  fiber.Map{"type": "integer", "minimum": 1, "description": "1-based, for problems inside an expression"},
						"snippet": fiber.Map{"type": "string", "description": "The source line and a caret under the column"}}}},
			}},
		"Event": fiber.Map{"type": "object", "required": []string{"id", "user_id", "type"},
			"description": "A customer event, at most 64 KiB; unknown and repeated fields are refused, null means absent", "properties": fiber.Map{
				"id":          fiber.Map{"type": "string", "minLength": 1, "maxLength": 128, "description": "The idempotency key"},
				"user_id":     fiber.Map{"type": "string", "minLength": 1, "maxLength": 256, "description": "Any UTF-8 except NUL"},
				"type":        fiber.Map{"type": "string", "pattern": "^[a-z][a-z0-9_.]{0,63}$", "description": "purchase, refund and redeem have a meaning; points.* are the engine's own and refused"},
				"amount":      fiber.Map{"type": "number", "minimum": 0, "maximum": event.MaxAmount, "description": "Money for purchase and refund; whole points for redeem"},
				"currency":    fiber.Map{"type": "string", "pattern": "^[A-Z]{3}$", "description": "An active ISO 4217 code"},
				"occurred_at": fiber.Map{"type": "string", "format": "date-time", "description": "Defaults to the time received"},
				"attributes":  fiber.Map{"type": "object", "description": "Free-form, nested at most 32 levels, at most 256 entries in any object or array (refund: original_event_id)"},
			}},
		"EventAccepted": fiber.Map{"type": "object", "required": []string{"id", "duplicate"}, "properties": fiber.Map{
			"id": str(), "duplicate": fiber.Map{"type": "boolean", "description": "The id was accepted before; nothing new was stored"}}},
		"EventBatch": fiber.Map{"type": "object", "required": []string{"events"}, "properties": fiber.Map{
			"events": fiber.Map{"type": "array", "minItems": 1, "maxItems": 1000, "items": fiber.Map{"$ref": "#/components/schemas/Event"}}}},
		"EventBatchResult": fiber.Map{"type": "object", "required": []string{"results"}, "properties": fiber.Map{
			"results": fiber.Map{"type": "array", "description": "One per event, in order", "items": fiber.Map{
				"type": "object", "required": []string{"status"}, "properties": fiber.Map{
					"id":        str(),
					"status":    fiber.Map{"type": "integer", "description": "202 stored, 200 duplicate, 400 invalid, 503 not stored"},
					"duplicate": boolean,
					"error":     fiber.Map{"$ref": "#/components/schemas/Problem"}}}}}},
		"Health": fiber.Map{"type": "object", "required": []string{"status"}, "properties": fiber.Map{
			"status": fiber.Map{"type": "string", "enum": []string{"ok", "ready"}},
			"mode":   fiber.Map{"type": "string", "enum": []string{"all", "ingress", "engine"}, "description": "CAMPAIGN_MODE (readiness only)"},
			"partitions": fiber.Map{"type": "array", "items": fiber.Map{"type": "integer"},
				"description": "The partitions of EVENTS this replica owns (engines only)"},
			"all_partitions_owned": fiber.Map{"type": "boolean", "description": "Every partition had an owner at the engine's last look (engines only)"},
			"campaigns_not_published": fiber.Map{"type": "array", "description": "Stored campaigns the start could not publish to the engines (too large for the bus); they apply once saved again",
				"items": fiber.Map{"type": "object", "required": []string{"id", "reason"}, "properties": fiber.Map{"id": str(), "reason": str()}}},
			"missing": fiber.Map{"type": "array", "items": str(), "description": "Streams or lane consumers found missing and being recreated (engines only)"}}},
		"OpenAPI": fiber.Map{"type": "object", "description": "This document"},
	}
}

// ingestExamples are example bodies of event ingest.
func ingestExamples() map[string]any {
	ev := fiber.Map{"id": "order-1001", "user_id": "alice", "type": "purchase", "amount": 120, "currency": "EUR",
		"occurred_at": "2025-06-01T12:00:00Z", "attributes": fiber.Map{"category": "shoes"}}
	return map[string]any{
		"Event":         ev,
		"EventAccepted": fiber.Map{"id": "order-1001", "duplicate": false},
		"EventBatch": fiber.Map{"events": []fiber.Map{ev,
			{"id": "refund-1001", "user_id": "alice", "type": "refund", "amount": 20, "currency": "EUR", "attributes": fiber.Map{"original_event_id": "order-1001"}}}},
		"EventBatchResult": fiber.Map{"results": []fiber.Map{{"id": "order-1001", "status": 202}, {"id": "refund-1001", "status": 200, "duplicate": true}}},
	}
}

func str() fiber.Map { return fiber.Map{"type": "string"} }
