package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/api"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// Coupon code pools (admin): create, list and look at pools, add codes to them by
// import or generation from a pattern. Codes are issued by the engine to rewards whose
// campaign names the pool, redeemed by storefronts (coupons.go).

// codesTimeout bounds one import or generation (up to MaxCodesPerRequest rows).
const codesTimeout = 2 * time.Minute

// poolView is a pool as the admin API shows it: its counts and whether it is low.
type poolView struct {
	persistence.Pool
	// Low is true when the codes left are at or below the low-water mark.
	Low bool `json:"low"`
}

func viewPool(p persistence.Pool) poolView {
	return poolView{Pool: p, Low: p.Left <= p.LowWater}
}

type poolCreate struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Pattern     string     `json:"pattern"`
	Count       int        `json:"count"`
	ExpiresAt   *time.Time `json:"expires_at"`
	LowWater    *int64     `json:"low_water"`
}

// codesResult is the answer to an import or a generation.
type codesResult struct {
	PoolID string `json:"pool_id"`
	persistence.CodesAdded
	// Repeated counts the codes the request held more than once (added once).
	Repeated int64  `json:"repeated"`
	Pattern  string `json:"pattern,omitempty"`
	Total    int64  `json:"total"`
	Left     int64  `json:"left"`
}

// validatePoolCreate checks a new pool, setting its defaults (an id made from the name,
// the configured low-water mark).
func (a *API) validatePoolCreate(req *poolCreate) (*Pattern, error) {
	var errs []error
	if req.ID == "" {
		req.ID = slugID(req.Name)
	}
	if !campaign.PoolIDPattern.MatchString(req.ID) {
		errs = append(errs, fieldError("id", fmt.Sprintf("must match [a-z0-9][a-z0-9-]{0,63}, got %q", req.ID)))
	}
	if n := len(strings.TrimSpace(req.Name)); n == 0 || len(req.Name) > 200 {
		errs = append(errs, fieldError("name", "must hold 1 to 200 bytes"))
	}
	if len(req.Description) > 4096 {
		errs = append(errs, fieldError("description", "must hold at most 4096 bytes"))
	}
	if req.ExpiresAt != nil && !req.ExpiresAt.After(time.Now()) {
		errs = append(errs, fieldError("expires_at", "must be in the future"))
	}
	if req.LowWater == nil {
		lw := a.cfg.PoolLowWater
		req.LowWater = &lw
	} else if *req.LowWater < 0 {
		errs = append(errs, fieldError("low_water", "must not be negative"))
	}
	var pattern *Pattern
	if req.Pattern != "" {
		p, err := ParsePattern("pattern", req.Pattern)
		if err != nil {
			errs = append(errs, err)
		} else {
			pattern = &p
			req.Pattern = p.String()
		}
	}
	switch {
	case req.Count < 0:
		errs = append(errs, fieldError("count", "must not be negative"))
	case req.Count > 0 && req.Pattern == "":
		errs = append(errs, fieldError("count", "needs a pattern to generate codes from"))
	case req.Count > 0 && pattern != nil:
		if err := pattern.CheckCount("count", req.Count); err != nil {
			errs = append(errs, err)
		}
	}
	return pattern, errors.Join(errs...)
}

func (a *API) createPool(c *fiber.Ctx) error {
	var req poolCreate
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	pattern, err := a.validatePoolCreate(&req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), codesTimeout)
	defer cancel()
	actor := adminOf(c).Username
	p := persistence.Pool{ID: req.ID, Name: strings.TrimSpace(req.Name), Description: req.Description, Pattern: req.Pattern,
		ExpiresAt: req.ExpiresAt, LowWater: *req.LowWater}
	if err := a.deps.Store.CreatePool(ctx, &p, actor); err != nil {
		return api.About(err, "pool "+req.ID)
	}
	if req.Count > 0 {
		if _, err := a.generate(ctx, p.ID, *pattern, req.Count, nil, actor); err != nil {
			return err
		}
	}
	stored, err := a.deps.Store.GetPool(ctx, p.ID)
	if err != nil {
		return err
	}
	c.Location("/v1/pools/" + p.ID)
	return c.Status(fiber.StatusCreated).JSON(viewPool(stored))
}

// generate adds n codes of pattern to the pool, generating more for the few that exist
// already (in any pool), with one audit row per round.
func (a *API) generate(ctx context.Context, poolID string, pattern Pattern, n int, exp *time.Time, actor string) (persistence.CodesAdded, error) {
	var total persistence.CodesAdded
	for round := 0; n > 0; round++ {
		if round == 5 {
			return total, fmt.Errorf("generate codes for pool %s: %d of the codes made were taken five times in a row", poolID, n)
		}
		codes := pattern.Generate(n)
		list := make([]persistence.NewCode, len(codes))
		for i, code := range codes {
			list[i] = persistence.NewCode{Code: code, ExpiresAt: exp}
		}
		added, err := a.deps.Store.AddCodes(ctx, poolID, list, actor, "pool.generate", map[string]any{"pattern": pattern.String(), "count": n})
		if err != nil {
			return total, api.About(err, "pool "+poolID)
		}
		total.Added += added.Added
		n = int(added.Duplicates)
	}
	return total, nil
}

func (a *API) listPools(c *fiber.Ctx) error {
	limit, after, err := api.Page(c)
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	ps, err := a.deps.Store.ListPools(ctx, after, limit)
	if err != nil {
		return err
	}
	out := fiber.Map{}
	views := make([]poolView, 0, len(ps))
	for _, p := range ps {
		views = append(views, viewPool(p))
	}
	out["pools"] = views
	if len(ps) == limit {
		out["next_cursor"] = strconv.FormatInt(ps[len(ps)-1].Seq, 10)
	}
	return c.JSON(out)
}

func (a *API) getPool(c *fiber.Ctx) error {
	id, err := api.PathParam(c, "id")
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	p, err := a.deps.Store.GetPool(ctx, id)
	if err != nil {
		return api.About(err, "pool "+id)
	}
	return c.JSON(viewPool(p))
}

// poolPatch is the body of PATCH /v1/pools/{id}: the fields given change; expires_at
// null removes the pool's expiry.
type poolPatch struct {
	Name        *string         `json:"name"`
	Description *string         `json:"description"`
	Pattern     *string         `json:"pattern"`
	ExpiresAt   json.RawMessage `json:"expires_at"`
	LowWater    *int64          `json:"low_water"`
}

// apply checks the patch and applies it to p, a field error for each bad field.
func (req *poolPatch) apply(p *persistence.Pool) error {
	var errs []error
	if req.Name != nil {
		if n := len(strings.TrimSpace(*req.Name)); n == 0 || len(*req.Name) > 200 {
			errs = append(errs, fieldError("name", "must hold 1 to 200 bytes"))
		}
		p.Name = strings.TrimSpace(*req.Name)
	}
	if req.Description != nil {
		if len(*req.Description) > 4096 {
			errs = append(errs, fieldError("description", "must hold at most 4096 bytes"))
		}
		p.Description = *req.Description
	}
	if req.Pattern != nil {
		p.Pattern = ""
		if *req.Pattern != "" {
			pat, err := ParsePattern("pattern", *req.Pattern)
			if err != nil {
				errs = append(errs, err)
			}
			p.Pattern = pat.String()
		}
	}
	if len(req.ExpiresAt) > 0 {
		p.ExpiresAt = nil
		if string(req.ExpiresAt) != "null" {
			var t time.Time
			switch err := json.Unmarshal(req.ExpiresAt, &t); {
			case err != nil:
				errs = append(errs, fieldError("expires_at", "must be an RFC 3339 date-time or null"))
			case !t.After(time.Now()):
				errs = append(errs, fieldError("expires_at", "must be in the future"))
			default:
				p.ExpiresAt = &t
			}
		}
	}
	if req.LowWater != nil {
		if *req.LowWater < 0 {
			errs = append(errs, fieldError("low_water", "must not be negative"))
		}
		p.LowWater = *req.LowWater
	}
	return errors.Join(errs...)
}

// patchPool changes the fields given. Codes added already keep their expiry; the
// engines see a new low-water mark at their next pool refresh.
func (a *API) patchPool(c *fiber.Ctx) error {
	id, err := api.PathParam(c, "id")
	if err != nil {
		return err
	}
	var req poolPatch
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	_, p, err := a.deps.Store.ModifyPool(ctx, id, adminOf(c).Username, req.apply)
	if err != nil {
		return api.About(err, "pool "+id)
	}
	return c.JSON(viewPool(p))
}

// deletePool removes a pool none of whose codes was issued and that no campaign (not
// archived) names, with its free codes.
func (a *API) deletePool(c *fiber.Ctx) error {
	id, err := api.PathParam(c, "id")
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	p, err := a.deps.Store.DeletePool(ctx, id, adminOf(c).Username)
	if err != nil {
		return api.About(err, "pool "+id)
	}
	return c.JSON(viewPool(p))
}

type codesImport struct {
	Codes     []string   `json:"codes"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// importCodes adds a list of codes to a pool: text (one code per line, optionally
// ",<RFC 3339 expiry>") or JSON ({"codes": [...], "expires_at"}), read line by line;
// codes normalised, repeats in the list and codes that exist already left out and
// counted.
func (a *API) importCodes(c *fiber.Ctx) error {
	id, err := api.PathParam(c, "id")
	if err != nil {
		return err
	}
	mt, _, _ := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	var list CodeList
	switch mt {
	case fiber.MIMETextPlain, "text/csv":
		list, err = ParseCodeLines(c.Body())
	default:
		var req codesImport
		if err := api.DecodeJSON(c, &req); err != nil {
			return importProblem(err)
		}
		list, err = ParseCodeArray(req.Codes, req.ExpiresAt)
	}
	if err != nil {
		return err
	}
	if len(list.Codes) == 0 {
		return fieldError("codes", "holds no code")
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), codesTimeout)
	defer cancel()
	added, err := a.deps.Store.AddCodes(ctx, id, list.Codes, adminOf(c).Username, "pool.import", map[string]any{"repeated": list.Repeated})
	if err != nil {
		return api.About(err, "pool "+id)
	}
	return a.sendCodesResult(c, ctx, codesResult{PoolID: id, CodesAdded: added, Repeated: list.Repeated})
}

// importProblem turns the 415 of a body that is neither JSON nor text into one naming
// both media types.
func importProblem(err error) error {
	var p *api.Problem
	if errors.As(err, &p) && p.Status == fiber.StatusUnsupportedMediaType {
		return api.Problemf(fiber.StatusUnsupportedMediaType, "the body must be text/plain (one code per line) or application/json ({\"codes\": [...]})")
	}
	return err
}

type codesGenerate struct {
	Count     int        `json:"count"`
	Pattern   string     `json:"pattern"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// generateCodes adds count codes made from a pattern (the request's, else the pool's).
func (a *API) generateCodes(c *fiber.Ctx) error {
	id, err := api.PathParam(c, "id")
	if err != nil {
		return err
	}
	var req codesGenerate
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), codesTimeout)
	defer cancel()
	src := req.Pattern
	if src == "" {
		p, err := a.deps.Store.GetPool(ctx, id)
		if err != nil {
			return api.About(err, "pool "+id)
		}
		if p.Pattern == "" {
			return fieldError("pattern", "is required: the pool has no pattern")
		}
		src = p.Pattern
	}
	pattern, err := ParsePattern("pattern", src)
	if err != nil {
		return err
	}
	if err := pattern.CheckCount("count", req.Count); err != nil {
		return err
	}
	if req.ExpiresAt != nil && !req.ExpiresAt.After(time.Now()) {
		return fieldError("expires_at", "must be in the future")
	}
	added, err := a.generate(ctx, id, pattern, req.Count, req.ExpiresAt, adminOf(c).Username)
	if err != nil {
		return err
	}
	return a.sendCodesResult(c, ctx, codesResult{PoolID: id, CodesAdded: added, Pattern: pattern.String()})
}

// sendCodesResult answers r with the pool's totals after the change.
func (a *API) sendCodesResult(c *fiber.Ctx, ctx context.Context, r codesResult) error { //nolint:revive // fiber first, like every handler helper
	p, err := a.deps.Store.GetPool(ctx, r.PoolID)
	if err != nil {
		return err
	}
	r.Total, r.Left = p.Total, p.Left
	return c.JSON(r)
}

// couponView is an issued coupon code with its status now.
type couponView struct {
	persistence.Coupon
	Status string `json:"status"`
}

// listUserCoupons pages the coupon codes issued to a user, oldest first.
func (a *API) listUserCoupons(c *fiber.Ctx) error {
	now := time.Now()
	list := func(ctx context.Context, userID string, after int64, limit int) ([]couponView, error) {
		cs, err := a.deps.Store.ListUserCoupons(ctx, userID, after, limit)
		out := make([]couponView, len(cs))
		for i := range cs {
			out[i] = couponView{Coupon: cs[i], Status: cs[i].Status(now)}
		}
		return out, err
	}
	return userPage(a, c, "coupons", list, func(v couponView) int64 { return v.Seq })
}

// poolRoutes are the coupon code pools and a user's coupons.
func (a *API) poolRoutes() api.Group {
	const tag = "Coupon pools"
	codes := "Codes are 1 to 64 of A-Z, 0-9, '-' and '_', case-insensitive (stored upper-case), unique across pools; " +
		fmt.Sprintf("at most %d per request (the body at most 8 MiB).", MaxCodesPerRequest)
	page := append([]api.Param(nil), api.Pagination...)
	return api.Group{
		Tags: []api.Tag{{Name: tag, Description: "Coupon code pools: codes generated from a pattern or imported. A `coupon` or `free_shipping` " +
			"reward whose campaign names a pool (`reward.pool`) takes one free code in the reward's own commit (`payload.coupon_code`); " +
			"when the pool has none left the reward is not granted (the campaign's stats count it in `rewards_refused`). Viewers read, editors change."}},
		Routes: []api.Route{
			{Method: "POST", Path: "/v1/pools", Access: api.Editor, Tag: tag, OperationID: "createPool",
				Summary:     "Create a coupon code pool (id optional), generating count codes from its pattern",
				Description: "`pattern`: each `#` becomes a random character of `" + CodeCharset + "` (no look-alikes 0/O, 1/I/L), other characters stay. " + codes,
				Handler:     a.createPool, Request: "PoolCreate", Response: "Pool", Headers: []string{"Location"},
				Statuses: []int{201, 400, 409, 415}, StatusNotes: map[int]string{409: "A pool with this id exists"}},
			{Method: "GET", Path: "/v1/pools", Access: api.Viewer, Tag: tag, OperationID: "listPools",
				Summary: "List pools with their counts, oldest first (limit, cursor)", Handler: a.listPools, Response: "PoolList", Params: page,
				Statuses: []int{200, 400}, StatusNotes: map[int]string{400: "A bad limit or cursor"}},
			{Method: "GET", Path: "/v1/pools/:id", Access: api.Viewer, Tag: tag, OperationID: "getPool",
				Summary: "A pool with its counts: issued, redeemed, left", Handler: a.getPool, Response: "Pool",
				Statuses: []int{200, 400, 404}},
			{Method: "PATCH", Path: "/v1/pools/:id", Access: api.Editor, Tag: tag, OperationID: "updatePool",
				Summary: "Change a pool's name, description, pattern, expiry or low-water mark (the fields given)",
				Description: "`expires_at` is the expiry of codes added from now on without one (null: none); codes added already keep theirs. " +
					"Engines use a new `low_water` from their next reload of the pools (every 5 s).",
				Handler: a.patchPool, Request: "PoolPatch", Response: "Pool", Statuses: []int{200, 400, 404, 415}},
			{Method: "DELETE", Path: "/v1/pools/:id", Access: api.Editor, Tag: tag, OperationID: "deletePool",
				Summary: "Delete an unused pool with its free codes; answers the pool as it was",
				Description: "Refused (409, saying why) while a code of it was issued to a reward (its holder can still validate and redeem it) " +
					"or a campaign that is not archived names it; archive those campaigns or change their `reward.pool` first.",
				Handler: a.deletePool, Response: "Pool", Statuses: []int{200, 400, 404, 409},
				StatusNotes: map[int]string{409: "Codes of the pool were issued, or campaigns that are not archived name it (the problem says which)"}},
			{Method: "POST", Path: "/v1/pools/:id/codes", Access: api.Editor, Tag: tag, OperationID: "importPoolCodes",
				Summary: "Import codes into a pool (text: one per line; or JSON)",
				Description: "`text/plain`: one code per line, optionally followed by `,` and its expiry (RFC 3339); blank lines and lines starting with `#` are skipped. " +
					"`application/json`: `{\"codes\": [...], \"expires_at\": ...}`. Codes without an expiry take the pool's. " + codes +
					" Codes held twice are added once (`repeated`); codes that exist already are left out (`duplicates`).",
				Handler: a.importCodes, Request: "PoolCodesImport", Response: "PoolCodesResult",
				Statuses: []int{200, 400, 404, 415}, StatusNotes: map[int]string{400: "A line or code that is not a code (the problem names it), or no code at all"}},
			{Method: "POST", Path: "/v1/pools/:id/generate", Access: api.Editor, Tag: tag, OperationID: "generatePoolCodes",
				Summary:     "Generate codes from a pattern (the request's or the pool's)",
				Description: "The pattern must make at least 1000 possible codes per code asked for. " + codes,
				Handler:     a.generateCodes, Request: "PoolCodesGenerate", Response: "PoolCodesResult",
				Statuses: []int{200, 400, 404, 415}},
			{Method: "GET", Path: "/v1/users/:id/coupons", Access: api.Viewer, Tag: "Users", OperationID: "listUserCoupons",
				Summary: "Coupon codes issued to a user, oldest first (limit, cursor), with their status", Handler: a.listUserCoupons, Response: "UserCouponList",
				Params: page, Statuses: []int{200, 400, 404},
				StatusNotes: map[int]string{400: "A bad limit or cursor", 404: "No event of this user was ever processed"}},
		},
		Schemas: poolSchemas(),
		Examples: map[string]any{
			"PoolCreate": fiber.Map{"id": "free-shipping-june", "name": "Free shipping, June", "pattern": "SHIP-####-####", "count": 5000,
				"expires_at": "2026-07-01T00:00:00Z", "low_water": 500},
			"PoolCodesImport":   fiber.Map{"codes": []string{"PARTNER-0001", "PARTNER-0002"}},
			"PoolCodesGenerate": fiber.Map{"count": 1000},
		},
	}
}

// poolSchemas are the pool routes' schemas.
func poolSchemas() map[string]any {
	counts := fiber.Map{
		"total":    fiber.Map{"type": "integer", "description": "Every code of the pool"},
		"issued":   fiber.Map{"type": "integer", "description": "Codes issued to rewards, redeemed ones included"},
		"redeemed": integer,
		"expired":  fiber.Map{"type": "integer", "description": "Codes never issued and past their expiry"},
		"left":     fiber.Map{"type": "integer", "description": "Free, unexpired codes: what rewards can still take"},
	}
	pool := fiber.Map{"id": str(), "name": str(), "description": str(),
		"pattern":    fiber.Map{"type": "string", "description": "The default pattern of generated codes"},
		"expires_at": fiber.Map{"type": "string", "format": "date-time", "description": "The expiry of codes added without one"},
		"low_water":  fiber.Map{"type": "integer", "description": "The pool is low at or below this many codes left"},
		"low":        boolean, "created_by": str(), "created_at": dateTime, "updated_at": dateTime}
	for k, v := range counts {
		pool[k] = v
	}
	result := fiber.Map{"pool_id": str(), "added": integer,
		"duplicates":         fiber.Map{"type": "integer", "description": "Codes left out because a code of that name exists (in any pool)"},
		"duplicate_examples": fiber.Map{"type": "array", "items": str(), "description": "The first few of them"},
		"repeated":           fiber.Map{"type": "integer", "description": "Codes the request held more than once (added once)"},
		"pattern":            str(), "total": integer, "left": integer}
	return map[string]any{
		"PoolCreate": obj([]string{"name"}, fiber.Map{
			"id":          fiber.Map{"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$", "description": "Generated from the name when absent"},
			"name":        fiber.Map{"type": "string", "minLength": 1, "maxLength": 200},
			"description": fiber.Map{"type": "string", "maxLength": 4096},
			"pattern":     fiber.Map{"type": "string", "maxLength": MaxCodeLen, "description": "e.g. SHIP-####-####: each # a random character"},
			"count":       fiber.Map{"type": "integer", "minimum": 0, "maximum": MaxCodesPerRequest, "description": "Codes to generate from pattern now"},
			"expires_at":  fiber.Map{"type": "string", "format": "date-time", "description": "Expiry of the codes added without one"},
			"low_water":   fiber.Map{"type": "integer", "minimum": 0, "description": "Low at or below this many codes left; default CAMPAIGN_POOL_LOW_WATER"}}),
		"PoolPatch": obj(nil, fiber.Map{
			"name":        fiber.Map{"type": "string", "minLength": 1, "maxLength": 200},
			"description": fiber.Map{"type": "string", "maxLength": 4096},
			"pattern":     fiber.Map{"type": "string", "maxLength": MaxCodeLen, "description": "The default pattern of generated codes; empty: none"},
			"expires_at":  nullable(fiber.Map{"type": "string", "format": "date-time", "description": "Expiry of codes added from now on without one; null: none"}),
			"low_water":   fiber.Map{"type": "integer", "minimum": 0}}),
		"Pool":     obj([]string{"id", "name", "total", "issued", "redeemed", "left", "low_water", "low"}, pool),
		"PoolList": listOf("pools", "Pool"),
		"PoolCodesImport": obj([]string{"codes"}, fiber.Map{
			"codes":      fiber.Map{"type": "array", "maxItems": MaxCodesPerRequest, "items": fiber.Map{"type": "string", "maxLength": MaxCodeLen}},
			"expires_at": fiber.Map{"type": "string", "format": "date-time", "description": "Expiry of these codes; absent: the pool's"}}),
		"PoolCodesGenerate": obj([]string{"count"}, fiber.Map{
			"count":      fiber.Map{"type": "integer", "minimum": 1, "maximum": MaxCodesPerRequest},
			"pattern":    fiber.Map{"type": "string", "maxLength": MaxCodeLen, "description": "Absent: the pool's"},
			"expires_at": fiber.Map{"type": "string", "format": "date-time", "description": "Expiry of these codes; absent: the pool's"}}),
		"PoolCodesResult": obj([]string{"pool_id", "added", "duplicates", "total", "left"}, result),
		"UserCoupon":      couponSchema(fiber.Map{"status": fiber.Map{"type": "string", "enum": []string{"issued", "redeemed", "expired"}}}),
		"UserCouponList":  listOf("coupons", "UserCoupon"),
	}
}

// couponSchema is an issued coupon's schema, with more properties.
func couponSchema(more fiber.Map) fiber.Map {
	props := fiber.Map{"code": str(), "pool_id": str(), "user_id": str(), "reward_id": str(), "campaign_id": str(),
		"type":        fiber.Map{"type": "string", "description": "The reward's type: coupon or free_shipping"},
		"data":        fiber.Map{"type": "object", "description": "The campaign's reward data: what the code grants"},
		"expires_at":  dateTime,
		"issued_at":   dateTime,
		"redeemed_at": dateTime,
		"order_id":    fiber.Map{"type": "string", "description": "The order it was redeemed for"}}
	for k, v := range more {
		props[k] = v
	}
	return obj([]string{"code", "pool_id", "user_id", "reward_id", "type", "issued_at"}, props)
}
