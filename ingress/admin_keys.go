package ingress

import (
	"time"

	"github.com/gofiber/fiber/v2"

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
func (s *Server) broadcastKey(c *fiber.Ctx, k persistence.APIKey) error {
	if s.deps.KeySink == nil {
		return nil
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	if err := s.deps.KeySink.PutAPIKey(ctx, k); err != nil {
		s.log.Error("publish api key", "key_id", k.ID, "correlation_id", correlationID(c), "err", err)
		p := problemf(fiber.StatusServiceUnavailable, "the key change is saved but could not be published to the ingress nodes; retry")
		p.RetryAfter = 1
		return p
	}
	return nil
}

func (s *Server) createAPIKey(c *fiber.Ctx) error {
	var req apiKeyCreate
	if err := decodeAdminJSON(c, &req); err != nil {
		return err
	}
	if req.Name == "" || len(req.Name) > 200 {
		return fieldProblem("name", "name must hold 1 to 200 bytes")
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	k, secret, err := s.deps.Store.CreateAPIKey(ctx, req.Name, adminOf(c).Username)
	if err != nil {
		return err
	}
	if err := s.broadcastKey(c, k); err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(apiKeyCreated{apiKeyView: viewAPIKey(k), Key: secret})
}

func (s *Server) listAPIKeys(c *fiber.Ctx) error {
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	ks, err := s.deps.Store.ListAPIKeys(ctx)
	if err != nil {
		return err
	}
	out := make([]apiKeyView, 0, len(ks))
	for _, k := range ks {
		out = append(out, viewAPIKey(k))
	}
	return c.JSON(fiber.Map{"api_keys": out})
}

func (s *Server) revokeAPIKey(c *fiber.Ctx) error {
	id, err := pathParamValue(c, "id")
	if err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	k, err := s.deps.Store.RevokeAPIKey(ctx, id, adminOf(c).Username)
	if err != nil {
		return storeProblem(err, "API key "+id)
	}
	if err := s.broadcastKey(c, k); err != nil {
		return err
	}
	return c.JSON(viewAPIKey(k))
}
