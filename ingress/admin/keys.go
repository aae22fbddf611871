package admin

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/ingress/api"
	"github.com/campaignmanager/campaignmanager/persistence"
)

type apiKeyCreate struct {
	Name string `json:"name"`
}

// apiKeyView is an API key as the admin API shows it: never the secret or its hash.
type apiKeyView struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

func viewAPIKey(k persistence.APIKey) apiKeyView {
	return apiKeyView{ID: k.ID, Name: k.Name, Prefix: k.Prefix, CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt, RevokedAt: k.RevokedAt}
}

// apiKeyCreated is the answer to a new key, the only one holding the secret.
type apiKeyCreated struct {
	apiKeyView
	Key string `json:"key"`
}

// broadcastKey puts k in the api_keys bucket; a failure is 503: the change is saved in
// Postgres and reaches the bucket at the next start at the latest.
func (a *API) broadcastKey(c *fiber.Ctx, k persistence.APIKey) error {
	if a.deps.Keys == nil {
		return nil
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	if err := a.deps.Keys.PutAPIKey(ctx, k); err != nil {
		a.log.Error("publish api key", "key_id", k.ID, "correlation_id", api.CorrelationID(c), "err", err)
		return api.Unavailable("the key change is saved but could not be published to the ingress nodes; retry")
	}
	return nil
}

func (a *API) createAPIKey(c *fiber.Ctx) error {
	var req apiKeyCreate
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	if req.Name == "" || len(req.Name) > 200 {
		return fieldError("name", "must hold 1 to 200 bytes")
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	k, secret, err := a.deps.Store.CreateAPIKey(ctx, req.Name, adminOf(c).Username)
	if err != nil {
		return err
	}
	if err := a.broadcastKey(c, k); err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(apiKeyCreated{apiKeyView: viewAPIKey(k), Key: secret})
}

func (a *API) listAPIKeys(c *fiber.Ctx) error {
	ctx, cancel := api.Ctx(c)
	defer cancel()
	ks, err := a.deps.Store.ListAPIKeys(ctx)
	if err != nil {
		return err
	}
	out := make([]apiKeyView, 0, len(ks))
	for _, k := range ks {
		out = append(out, viewAPIKey(k))
	}
	return c.JSON(fiber.Map{"api_keys": out})
}

func (a *API) revokeAPIKey(c *fiber.Ctx) error {
	id, err := api.PathParam(c, "id")
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	k, err := a.deps.Store.RevokeAPIKey(ctx, id, adminOf(c).Username)
	if err != nil {
		return api.About(err, "API key "+id)
	}
	if err := a.broadcastKey(c, k); err != nil {
		return err
	}
	return c.JSON(viewAPIKey(k))
}

// keyRoutes are the storefront API keys.
func (a *API) keyRoutes() api.Group {
	key := fiber.Map{"id": str(), "name": str(),
		"prefix":     fiber.Map{"type": "string", "description": "The key's first characters, to recognise it"},
		"created_by": str(), "created_at": dateTime, "revoked_at": dateTime}
	created := fiber.Map{"key": fiber.Map{"type": "string", "description": "The secret; shown only here"}}
	for k, v := range key {
		created[k] = v
	}
	const tag = "API keys"
	unpublished := "Saved, but not yet published to the ingress nodes; retry"
	return api.Group{
		Tags: []api.Tag{{Name: tag, Description: "Storefront API keys for event ingest (`Authorization: ApiKey <key>` or `X-API-Key`). Admin role; the secret is shown once."}},
		Routes: []api.Route{
			{Method: "POST", Path: "/v1/api-keys", Access: api.Admin, Tag: tag, OperationID: "createAPIKey",
				Summary: "Create a storefront API key (the key is shown only in this answer)", Handler: a.createAPIKey, Request: "APIKeyCreate", Response: "APIKeyCreated",
				Statuses: []int{201, 400, 415, 503}, StatusNotes: map[int]string{503: unpublished}},
			{Method: "GET", Path: "/v1/api-keys", Access: api.Admin, Tag: tag, OperationID: "listAPIKeys",
				Summary: "List API keys (no secrets)", Handler: a.listAPIKeys, Response: "APIKeyList",
				Statuses: []int{200}},
			{Method: "DELETE", Path: "/v1/api-keys/:id", Access: api.Admin, Tag: tag, OperationID: "revokeAPIKey",
				Summary: "Revoke an API key", Handler: a.revokeAPIKey, Response: "APIKey",
				Statuses: []int{200, 400, 404, 503}, StatusNotes: map[int]string{503: unpublished}},
		},
		Schemas: map[string]any{
			"APIKeyCreate":  obj([]string{"name"}, fiber.Map{"name": fiber.Map{"type": "string", "minLength": 1, "maxLength": 200}}),
			"APIKey":        obj([]string{"id", "name", "prefix", "created_by", "created_at"}, key),
			"APIKeyCreated": obj([]string{"id", "name", "prefix", "created_by", "created_at", "key"}, created),
			"APIKeyList":    obj([]string{"api_keys"}, fiber.Map{"api_keys": fiber.Map{"type": "array", "items": ref("APIKey")}}),
		},
		Examples: map[string]any{
			"APIKeyCreate": fiber.Map{"name": "web shop"},
		},
	}
}
