package admin

import (
	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/ingress/api"
)

func (a *API) getTiers(c *fiber.Ctx) error {
	ctx, cancel := api.Ctx(c)
	defer cancel()
	cfg, err := a.deps.Store.GetTierConfig(ctx)
	if err != nil {
		return api.About(err, "tier configuration")
	}
	c.Set(fiber.HeaderETag, api.ETag(cfg.Version))
	return c.JSON(cfg)
}

func (a *API) putTiers(c *fiber.Ctx) error {
	var cfg loyalty.TierConfig
	if err := api.DecodeJSON(c, &cfg); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	want, err := api.IfMatchVersion(c)
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	if err := a.deps.Store.PutTierConfig(ctx, &cfg, want, adminOf(c).Username); err != nil {
		return api.About(err, "tier configuration")
	}
	if a.deps.Tiers != nil {
		if err := a.deps.Tiers.PutTiers(ctx, &cfg); err != nil {
			return api.Unavailable("saved, but not yet broadcast to the engines; retry the PUT")
		}
	}
	c.Set(fiber.HeaderETag, api.ETag(cfg.Version))
	return c.JSON(cfg)
}

// tierRoutes are the tier configuration.
func (a *API) tierRoutes() api.Group {
	return api.Group{
		Routes: []api.Route{
			{Method: "GET", Path: "/v1/tiers", Access: api.Viewer, Summary: "The tier configuration (ETag is its version)", Handler: a.getTiers, Response: "TierConfig"},
			{Method: "PUT", Path: "/v1/tiers", Access: api.Admin, Summary: "Replace the tier configuration (If-Match: <version> optional, 412 on mismatch); audited, in force on every engine at once", Handler: a.putTiers, Request: "TierConfig", Response: "TierConfig", Params: []api.Param{api.IfMatch}},
		},
		Schemas: map[string]any{
			"TierConfig": obj([]string{"basis", "tiers"}, fiber.Map{
				"version": integer,
				"basis":   fiber.Map{"type": "string", "enum": []string{loyalty.TierBasisLifetimePoints, loyalty.TierBasisSpend}},
				"window":  fiber.Map{"type": "string", "description": "for the spend basis: a duration such as 8760h"},
				"tiers": fiber.Map{"type": "array", "maxItems": loyalty.MaxTiers, "items": obj(nil, fiber.Map{
					"name": str(), "threshold": number})}}),
		},
	}
}
