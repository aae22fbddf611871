package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/persistence"
)

// adminRoutes lists the admin API: token exchange, admins, API keys, campaigns, rules,
// loyalty users and the audit log. routeTable adds them when the admin API is enabled.
func (s *Server) adminRoutes() []route {
	return append([]route{
		{method: "POST", path: "/v1/auth/token", access: accessPublic, summary: "Exchange username and password for an admin access token", handler: s.postToken, request: "TokenRequest", response: "Token"},

		{method: "GET", path: "/v1/admins", access: accessAdmin, summary: "List admins", handler: s.listAdmins, response: "AdminList"},
		{method: "POST", path: "/v1/admins", access: accessAdmin, summary: "Create an admin", handler: s.createAdmin, request: "AdminCreate", response: "Admin"},
		{method: "PATCH", path: "/v1/admins/:username", access: accessAdmin, summary: "Change an admin's role, password or disabled flag", handler: s.patchAdmin, request: "AdminPatch", response: "Admin"},

		{method: "POST", path: "/v1/api-keys", access: accessAdmin, summary: "Create a storefront API key (the key is shown only in this answer)", handler: s.createAPIKey, request: "APIKeyCreate", response: "APIKeyCreated"},
		{method: "GET", path: "/v1/api-keys", access: accessAdmin, summary: "List API keys (no secrets)", handler: s.listAPIKeys, response: "APIKeyList"},
		{method: "DELETE", path: "/v1/api-keys/:id", access: accessAdmin, summary: "Revoke an API key", handler: s.revokeAPIKey, response: "APIKey"},

		{method: "POST", path: "/v1/campaigns", access: accessEditor, summary: "Create a campaign (id optional; status defaults to draft)", handler: s.createCampaign, request: "Campaign", response: "Campaign"},
		{method: "GET", path: "/v1/campaigns", access: accessViewer, summary: "List campaigns, archived ones included", handler: s.listCampaigns, response: "CampaignList"},
		{method: "GET", path: "/v1/campaigns/:id", access: accessViewer, summary: "Get a campaign (ETag is its version)", handler: s.getCampaign, response: "Campaign"},
		{method: "PUT", path: "/v1/campaigns/:id", access: accessEditor, summary: "Replace a campaign (If-Match: <version> optional, 412 on mismatch)", handler: s.putCampaign, request: "Campaign", response: "Campaign"},
		{method: "DELETE", path: "/v1/campaigns/:id", access: accessEditor, summary: "Archive a campaign", handler: s.archiveCampaign, response: "Campaign"},
		{method: "POST", path: "/v1/campaigns/:id/activate", access: accessEditor, summary: "Activate a campaign", handler: s.activateCampaign, response: "Campaign"},
		{method: "POST", path: "/v1/campaigns/:id/pause", access: accessEditor, summary: "Pause a campaign", handler: s.pauseCampaign, response: "Campaign"},
		{method: "GET", path: "/v1/campaigns/:id/versions", access: accessViewer, summary: "Every saved version of a campaign, oldest first", handler: s.listCampaignVersions, response: "CampaignVersionList"},

		{method: "POST", path: "/v1/rules/validate", access: accessViewer, summary: "Compile and type-check a rule and points expression", handler: s.validateRule, request: "RuleValidate", response: "RuleValidation"},
		{method: "POST", path: "/v1/rules/test", access: accessViewer, summary: "Evaluate a rule (and points) against an event and a user state, without side effects", handler: s.testRule, request: "RuleTest", response: "RuleTestResult"},

		{method: "GET", path: "/v1/users/:id", access: accessViewer, summary: "A user's loyalty state", handler: s.getUser, response: "User"},
		{method: "GET", path: "/v1/users/:id/rewards", access: accessViewer, summary: "A user's rewards, oldest first (limit, cursor)", handler: s.listUserRewards, response: "RewardList"},

		{method: "GET", path: "/v1/audit", access: accessAdmin, summary: "The audit log, oldest first (actor, target_type, target_id, limit, cursor)", handler: s.listAudit, response: "AuditList"},
	}, append(s.dlqRoutes(), s.loyaltyRoutes()...)...)
}

// dbTimeout bounds one admin request's database work.
const dbTimeout = 10 * time.Second

func (s *Server) dbCtx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), dbTimeout)
}

// decodeAdminJSON decodes the request body into v strictly: JSON content type (415), one
// well-formed document (400) with no unknown fields (400 naming the field).
func decodeAdminJSON(c *fiber.Ctx, v any) error {
	if err := requireJSON(c); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return problemf(fiber.StatusBadRequest, "the body must hold a single JSON document")
	}
	return nil
}

// jsonProblem explains a decoding error, naming the field when there is one.
func jsonProblem(err error) *Problem {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return problemf(fiber.StatusBadRequest, "the body is empty; it must be a JSON object")
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return problemf(fiber.StatusBadRequest, "malformed JSON: "+err.Error())
	case errors.As(err, &te):
		p := problemf(fiber.StatusBadRequest, fmt.Sprintf("%s must be %s, not JSON %s", fieldOr(te.Field, "the body"), te.Type, te.Value))
		p.Field = te.Field
		return p
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name, _ := strconv.Unquote(rest)
		p := problemf(fiber.StatusBadRequest, "unknown field "+rest)
		p.Field = name
		return p
	}
	return problemf(fiber.StatusBadRequest, "invalid JSON: "+msg)
}

func fieldOr(f, def string) string {
	if f == "" {
		return def
	}
	return f
}

// storeProblem maps a store sentinel to a problem; other errors pass through as internal.
func storeProblem(err error, what string) error {
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return problemf(fiber.StatusNotFound, what+" not found")
	case errors.Is(err, persistence.ErrConflict):
		return problemf(fiber.StatusConflict, what+" already exists")
	case errors.Is(err, persistence.ErrVersionMismatch):
		return problemf(fiber.StatusPreconditionFailed, what+" has changed; its version does not match If-Match")
	}
	return err
}

// pathParamValue returns the path parameter name, URL-unescaped. Fiber hands over the raw
// (escaped) segment, so ids holding '/', '%', spaces or any UTF-8 work.
func pathParamValue(c *fiber.Ctx, name string) (string, error) {
	raw := c.Params(name)
	v, err := url.PathUnescape(raw)
	if err != nil || v == "" {
		p := problemf(fiber.StatusBadRequest, fmt.Sprintf("path parameter %s is not a valid URL-escaped string", name))
		p.Field = name
		return "", p
	}
	return v, nil
}

// pageParams reads limit (default 100, 1..1000) and an integer cursor from the query.
func pageParams(c *fiber.Ctx) (limit int, after int64, err error) {
	limit = 100
	if v := c.Query("limit"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 || n > 1000 {
			p := problemf(fiber.StatusBadRequest, "limit must be an integer from 1 to 1000")
			p.Field = "limit"
			return 0, 0, p
		}
		limit = n
	}
	if v := c.Query("cursor"); v != "" {
		n, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil || n < 0 {
			p := problemf(fiber.StatusBadRequest, "cursor must be a next_cursor value from a previous page")
			p.Field = "cursor"
			return 0, 0, p
		}
		after = n
	}
	return limit, after, nil
}

// adminSchemas describe the admin API's bodies in the OpenAPI document; init adds each
// one the shared schemas table does not define already.
var adminSchemas = func() fiber.Map {
	ref := func(n string) fiber.Map { return fiber.Map{"$ref": "#/components/schemas/" + n} }
	integer := fiber.Map{"type": "integer"}
	boolean := fiber.Map{"type": "boolean"}
	dateTime := fiber.Map{"type": "string", "format": "date-time"}
	obj := func(required []string, props fiber.Map) fiber.Map {
		m := fiber.Map{"type": "object", "properties": props}
		if required != nil {
			m["required"] = required
		}
		return m
	}
	list := func(field, item string) fiber.Map {
		return obj(nil, fiber.Map{field: fiber.Map{"type": "array", "items": ref(item)}, "next_cursor": str()})
	}
	role := fiber.Map{"type": "string", "enum": []string{"admin", "editor", "viewer"}}
	apiKey := fiber.Map{"id": str(), "name": str(), "prefix": str(), "created_by": str(), "created_at": dateTime, "revoked_at": dateTime}
	created := fiber.Map{"key": fiber.Map{"type": "string", "description": "The secret; shown only here"}}
	for k, v := range apiKey {
		created[k] = v
	}
	return fiber.Map{
		"TokenRequest":  obj([]string{"username", "password"}, fiber.Map{"username": str(), "password": str()}),
		"Token":         obj(nil, fiber.Map{"access_token": str(), "token_type": fiber.Map{"type": "string", "enum": []string{"Bearer"}}, "expires_in": integer}),
		"Admin":         obj(nil, fiber.Map{"username": str(), "role": role, "disabled": boolean, "created_at": dateTime, "updated_at": dateTime}),
		"AdminList":     list("admins", "Admin"),
		"AdminCreate":   obj([]string{"username", "password", "role"}, fiber.Map{"username": str(), "password": fiber.Map{"type": "string", "minLength": 8, "maxLength": 72}, "role": role}),
		"AdminPatch":    obj(nil, fiber.Map{"role": role, "password": fiber.Map{"type": "string", "minLength": 8, "maxLength": 72}, "disabled": boolean}),
		"APIKeyCreate":  obj([]string{"name"}, fiber.Map{"name": str()}),
		"APIKey":        obj(nil, apiKey),
		"APIKeyCreated": obj(nil, created),
		"APIKeyList":    list("api_keys", "APIKey"),
		"Campaign": obj([]string{"name", "rule", "reward"}, fiber.Map{
			"id":          fiber.Map{"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$", "description": "Generated from the name when absent"},
			"name":        str(),
			"description": str(),
			"rule":        fiber.Map{"type": "string", "description": "Boolean CEL expression over event, user and now"},
			"reward": obj([]string{"type"}, fiber.Map{
				"type":   fiber.Map{"type": "string", "enum": []string{"points", "coupon", "free_shipping", "notification"}},
				"points": fiber.Map{"type": []string{"string", "integer"}, "description": "Integer CEL expression, for points rewards"},
				"data":   fiber.Map{"type": "object"},
			}),
			"status":     fiber.Map{"type": "string", "enum": []string{"draft", "active", "paused", "archived"}, "default": "draft"},
			"starts_at":  dateTime,
			"ends_at":    dateTime,
			"priority":   integer,
			"exclusive":  boolean,
			"limits":     obj(nil, fiber.Map{"per_user": integer, "per_user_per_day": integer, "total_rewards": integer, "total_points": integer}),
			"version":    fiber.Map{"type": "integer", "readOnly": true},
			"created_at": fiber.Map{"type": "string", "format": "date-time", "readOnly": true},
			"updated_at": fiber.Map{"type": "string", "format": "date-time", "readOnly": true},
		}),
		"CampaignList": list("campaigns", "Campaign"),
		"CampaignVersionList": obj(nil, fiber.Map{"versions": fiber.Map{"type": "array", "items": obj(nil, fiber.Map{
			"version": integer, "created_by": str(), "created_at": dateTime, "campaign": ref("Campaign")})}}),
		"RuleValidate":   obj(nil, fiber.Map{"rule": str(), "points": fiber.Map{"type": []string{"string", "integer"}}}),
		"RuleValidation": obj(nil, fiber.Map{"valid": boolean, "cost": integer, "cost_limit": integer}),
		"User": obj(nil, fiber.Map{"user_id": str(), "tier": str(), "points": integer, "lifetime_points": integer,
			"purchase_count": integer, "total_spent": fiber.Map{"type": "number"}, "first_seen": dateTime, "last_purchase_at": dateTime,
			"event_counts": fiber.Map{"type": "object"}, "reward_counts": fiber.Map{"type": "object"}, "version": integer, "updated_at": dateTime}),
		"Reward": obj(nil, fiber.Map{"id": str(), "user_id": str(), "campaign_id": str(), "campaign_version": integer,
			"event_id": str(), "type": str(), "points": integer, "payload": fiber.Map{"type": "object"}, "occurred_at": dateTime, "created_at": dateTime}),
		"RewardList": list("rewards", "Reward"),
		"AuditEntry": obj(nil, fiber.Map{"id": integer, "actor": str(), "action": str(), "target_type": str(), "target_id": str(),
			"before": fiber.Map{}, "after": fiber.Map{}, "created_at": dateTime}),
		"AuditList": list("entries", "AuditEntry"),
	}
}()

func init() {
	for name, schema := range adminSchemas {
		if _, ok := schemas[name]; !ok {
			schemas[name] = schema
		}
	}
}
