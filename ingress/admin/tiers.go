package admin

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/ingress/api"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// defaultTiers is the configuration in force before one is stored: version 0 (ETag
// "0"), the lifetime points basis and no tiers, so every user's tier is "".
func defaultTiers() loyalty.TierConfig {
	return loyalty.TierConfig{Basis: loyalty.TierBasisLifetimePoints, Tiers: []loyalty.Tier{}}
}

// getTiers answers the stored tier configuration, or the default one (version 0) on an
// installation that never stored any.
func (a *API) getTiers(c *fiber.Ctx) error {
	ctx, cancel := api.Ctx(c)
	defer cancel()
	cfg, err := a.deps.Store.GetTierConfig(ctx)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		cfg = defaultTiers()
	case err != nil:
		return api.About(err, "tier configuration")
	}
	if cfg.Tiers == nil {
		cfg.Tiers = []loyalty.Tier{}
	}
	c.Set(fiber.HeaderETag, api.ETag(cfg.Version))
	return c.JSON(cfg)
}

// putTiers replaces the tier configuration. If-Match: "0" (the default's ETag) succeeds
// only while none is stored.
func (a *API) putTiers(c *fiber.Ctx) error {
	var cfg loyalty.TierConfig
	if err := api.DecodeJSON(c, &cfg); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Tiers == nil {
		cfg.Tiers = []loyalty.Tier{}
	}
	want, given, err := api.IfMatchGiven(c)
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	if given && want == 0 {
		// Based on the default. Two such PUTs racing may both pass this check (the store
		// has no "must not exist" condition); the second then replaces the first.
		if _, err := a.deps.Store.GetTierConfig(ctx); err == nil {
			return api.About(persistence.ErrVersionMismatch, "tier configuration")
		} else if !errors.Is(err, persistence.ErrNotFound) {
			return err
		}
	}
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
		Tags: []api.Tag{{Name: "Tiers", Description: "The loyalty tiers: which basis (lifetime points or spend in a window) and the threshold of each tier. Versioned with ETag and If-Match, audited, in force on every engine at once."}},
		Routes: []api.Route{
			{Method: "GET", Path: "/v1/tiers", Access: api.Viewer, Tag: "Tiers", OperationID: "getTiers",
				Summary:     "The tier configuration (ETag is its version)",
				Description: "Before any configuration is stored this is the default: version 0 (ETag `\"0\"`), the `lifetime_points` basis and no tiers.",
				Handler:     a.getTiers, Response: "TierConfig", Headers: []string{"ETag"},
				Statuses: []int{200}},
			{Method: "PUT", Path: "/v1/tiers", Access: api.Admin, Tag: "Tiers", OperationID: "replaceTiers",
				Summary:     "Replace the tier configuration; audited, in force on every engine at once",
				Description: "With `If-Match` the change applies only to that version (`\"0\"`: only while the default is in force).",
				Handler:     a.putTiers, Request: "TierConfig", Response: "TierConfig", Params: []api.Param{api.IfMatch}, Headers: []string{"ETag"},
				Statuses: []int{200, 400, 412, 415, 503},
				StatusNotes: map[int]string{
					412: "If-Match is not the stored version",
					503: "Saved, but not yet broadcast to the engines; retry the PUT",
				}},
		},
		Schemas: map[string]any{
			"TierConfig": obj([]string{"basis", "tiers"}, fiber.Map{
				"version":    fiber.Map{"type": "integer", "readOnly": true, "description": "0 for the default configuration"},
				"basis":      fiber.Map{"type": "string", "enum": []string{loyalty.TierBasisLifetimePoints, loyalty.TierBasisSpend}},
				"window":     fiber.Map{"type": "string", "description": "For the spend basis: a duration of at least 24h, such as 8760h"},
				"updated_by": fiber.Map{"type": "string", "readOnly": true},
				"updated_at": fiber.Map{"type": "string", "format": "date-time", "readOnly": true},
				"tiers": fiber.Map{"type": "array", "maxItems": loyalty.MaxTiers, "description": "Lowest first, thresholds strictly increasing",
					"items": obj([]string{"name", "threshold"}, fiber.Map{
						"name":      fiber.Map{"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,31}$"},
						"threshold": fiber.Map{"type": "number", "exclusiveMinimum": 0, "description": "In the basis' unit: points or money"}})}}),
		},
		Examples: map[string]any{
			"TierConfig": fiber.Map{"basis": "lifetime_points", "tiers": []fiber.Map{
				{"name": "silver", "threshold": 1000}, {"name": "gold", "threshold": 5000}}},
		},
	}
}
