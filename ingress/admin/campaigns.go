package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/cel"
	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/api"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// slugID makes a campaign id from a name: lower-case letters and digits joined by dashes,
// plus a short random suffix.
func slugID(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case b.Len() > 0 && !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > 48 {
		s = strings.TrimRight(s[:48], "-")
	}
	if s == "" {
		s = "campaign"
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	return s + "-" + hex.EncodeToString(suffix)
}

// publishCampaign puts camp in the campaigns bucket after its Postgres commit. A failure
// is 503: the change is saved and reaches the engines at their next start at the latest.
func (a *API) publishCampaign(c *fiber.Ctx, camp *campaign.Campaign) error {
	if a.deps.Campaigns == nil {
		return nil
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	if err := a.deps.Campaigns.PutCampaign(ctx, camp); err != nil {
		a.log.Error("publish campaign", "campaign_id", camp.ID, "version", camp.Version, "correlation_id", api.CorrelationID(c), "err", err)
		return api.Unavailable(fmt.Sprintf(
			"campaign %s version %d is saved but could not be published to the engines; they load it at their next start", camp.ID, camp.Version))
	}
	return nil
}

func (a *API) sendCampaign(c *fiber.Ctx, status int, camp *campaign.Campaign) error {
	c.Set(fiber.HeaderETag, api.ETag(camp.Version))
	return c.Status(status).JSON(camp)
}

func (a *API) createCampaign(c *fiber.Ctx) error {
	var camp campaign.Campaign
	if err := api.DecodeJSON(c, &camp); err != nil {
		return err
	}
	generated := camp.ID == ""
	if generated {
		camp.ID = slugID(camp.Name)
	}
	if camp.Status == "" {
		camp.Status = campaign.StatusDraft
	}
	if err := cel.ValidateCampaign(&camp); err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	err := a.deps.Store.CreateCampaign(ctx, &camp, adminOf(c).Username)
	if generated && errors.Is(err, persistence.ErrConflict) {
		camp.ID = slugID(camp.Name)
		err = a.deps.Store.CreateCampaign(ctx, &camp, adminOf(c).Username)
	}
	if err != nil {
		return api.About(err, "campaign "+camp.ID)
	}
	if err := a.publishCampaign(c, &camp); err != nil {
		return err
	}
	c.Location("/v1/campaigns/" + camp.ID)
	return a.sendCampaign(c, fiber.StatusCreated, &camp)
}

type campaignList struct {
	Campaigns  []campaign.Campaign `json:"campaigns"`
	NextCursor string              `json:"next_cursor,omitempty"`
}

// listCampaigns pages the campaigns (archived ones included) oldest first; next_cursor is
// set when the page is full.
func (a *API) listCampaigns(c *fiber.Ctx) error {
	limit, after, err := api.Page(c)
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	cs, next, err := a.deps.Store.ListCampaignsPage(ctx, after, limit)
	if err != nil {
		return err
	}
	out := campaignList{Campaigns: cs}
	if out.Campaigns == nil {
		out.Campaigns = []campaign.Campaign{}
	}
	if len(cs) == limit {
		out.NextCursor = strconv.FormatInt(next, 10)
	}
	return c.JSON(out)
}

func (a *API) getCampaign(c *fiber.Ctx) error {
	id, err := api.PathParam(c, "id")
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	camp, err := a.deps.Store.GetCampaign(ctx, id)
	if err != nil {
		return api.About(err, "campaign "+id)
	}
	return a.sendCampaign(c, fiber.StatusOK, &camp)
}

func (a *API) putCampaign(c *fiber.Ctx) error {
	id, err := api.PathParam(c, "id")
	if err != nil {
		return err
	}
	var camp campaign.Campaign
	if err := api.DecodeJSON(c, &camp); err != nil {
		return err
	}
	if camp.ID != "" && camp.ID != id {
		return fieldError("id", fmt.Sprintf("the body's id %q differs from the path's %q", camp.ID, id))
	}
	camp.ID = id
	expected, err := api.IfMatchVersion(c)
	if err != nil {
		return err
	}
	keepStatus := camp.Status == ""
	check := camp
	if keepStatus {
		check.Status = campaign.StatusDraft // any valid status; the stored one is kept
	}
	if err := cel.ValidateCampaign(&check); err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	_, after, err := a.deps.Store.ModifyCampaign(ctx, id, adminOf(c).Username, func(cur *campaign.Campaign) error {
		if expected > 0 && cur.Version != expected {
			return persistence.ErrVersionMismatch
		}
		next := camp
		if keepStatus {
			next.Status = cur.Status
		}
		*cur = next
		return nil
	})
	if err != nil {
		return api.About(err, "campaign "+id)
	}
	if err := a.publishCampaign(c, &after); err != nil {
		return err
	}
	return a.sendCampaign(c, fiber.StatusOK, &after)
}

// errUnchanged aborts a status change that would change nothing.
var errUnchanged = errors.New("unchanged")

// setStatus moves a campaign to status as a new version. Setting the current status
// again changes nothing and answers 200; an archived campaign can only be brought back
// with PUT (409 here).
func (a *API) setStatus(c *fiber.Ctx, status string) error {
	id, err := api.PathParam(c, "id")
	if err != nil {
		return err
	}
	expected, err := api.IfMatchVersion(c)
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	_, after, err := a.deps.Store.ModifyCampaign(ctx, id, adminOf(c).Username, func(cur *campaign.Campaign) error {
		switch {
		case expected > 0 && cur.Version != expected:
			return persistence.ErrVersionMismatch
		case cur.Status == status:
			return errUnchanged
		case cur.Status == campaign.StatusArchived:
			return api.Problemf(fiber.StatusConflict, fmt.Sprintf(
				"campaign %s is archived; replace it with PUT and a status to bring it back", id))
		}
		cur.Status = status
		return nil
	})
	if errors.Is(err, errUnchanged) {
		after, err = a.deps.Store.GetCampaign(ctx, id)
	}
	if err != nil {
		return api.About(err, "campaign "+id)
	}
	// Publish even when unchanged: it repairs a bucket an earlier failed put left stale.
	if err := a.publishCampaign(c, &after); err != nil {
		return err
	}
	return a.sendCampaign(c, fiber.StatusOK, &after)
}

func (a *API) archiveCampaign(c *fiber.Ctx) error  { return a.setStatus(c, campaign.StatusArchived) }
func (a *API) activateCampaign(c *fiber.Ctx) error { return a.setStatus(c, campaign.StatusActive) }
func (a *API) pauseCampaign(c *fiber.Ctx) error    { return a.setStatus(c, campaign.StatusPaused) }

func (a *API) listCampaignVersions(c *fiber.Ctx) error {
	id, err := api.PathParam(c, "id")
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	vs, err := a.deps.Store.ListCampaignVersions(ctx, id)
	if err != nil {
		return api.About(err, "campaign "+id)
	}
	return c.JSON(fiber.Map{"versions": vs})
}

type budgetView struct {
	TotalRewards int64  `json:"total_rewards,omitempty"`
	TotalPoints  int64  `json:"total_points,omitempty"`
	RewardsUsed  int64  `json:"rewards_used"`
	PointsUsed   int64  `json:"points_used"`
	RewardsLeft  *int64 `json:"rewards_left,omitempty"`
	PointsLeft   *int64 `json:"points_left,omitempty"`
	// Exhausted is true when the campaign no longer matches for lack of budget.
	Exhausted bool `json:"exhausted"`
}

type campaignStats struct {
	CampaignID    string     `json:"campaign_id"`
	Version       int64      `json:"version"`
	Status        string     `json:"status"`
	Rewards       int64      `json:"rewards"`
	Users         int64      `json:"users"`
	PointsGranted int64      `json:"points_granted"`
	Budget        budgetView `json:"budget"`
	// RewardsRefused counts the rewards the campaign matched but did not grant (its
	// pool had no code left), RefusedByReason the same by reason.
	RewardsRefused  int64            `json:"rewards_refused"`
	RefusedByReason map[string]int64 `json:"refused_by_reason"`
	// Pool is the coupon code pool of the campaign's reward, if it names one.
	Pool *poolLevel `json:"pool,omitempty"`
	// RuleErrors counts the events on which the campaign's rule or points expression
	// failed at run time (a missing attribute, a negative or too large points result, the
	// runtime cost limit): no match for them.
	RuleErrors int64 `json:"rule_errors"`
	// Daily is what the campaign granted on each of the last statsDays UTC days, oldest
	// first, today last (zeros included), by the events' time.
	Daily []persistence.DayTotal `json:"daily"`
}

// statsDays is how many days the stats' daily series covers.
const statsDays = 30

func (a *API) campaignStats(c *fiber.Ctx) error {
	id, err := api.PathParam(c, "id")
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	camp, err := a.deps.Store.GetCampaign(ctx, id)
	if err != nil {
		return api.About(err, "campaign "+strconv.Quote(id))
	}
	st, err := a.deps.Store.GetCampaignStats(ctx, id)
	if err != nil {
		return err
	}
	b := budgetView{TotalRewards: camp.Limits.TotalRewards, TotalPoints: camp.Limits.TotalPoints,
		RewardsUsed: st.Budget.Rewards, PointsUsed: st.Budget.Points}
	if l := camp.Limits.TotalRewards; l > 0 {
		left := max(l-st.Budget.Rewards, 0)
		b.RewardsLeft = &left
		b.Exhausted = left == 0
	}
	if l := camp.Limits.TotalPoints; l > 0 {
		left := max(l-st.Budget.Points, 0)
		b.PointsLeft = &left
		b.Exhausted = b.Exhausted || left == 0
	}
	daily, err := a.deps.Store.GetCampaignDaily(ctx, id, a.cfg.Now(), statsDays)
	if err != nil {
		return err
	}
	out := campaignStats{CampaignID: id, Version: camp.Version, Status: camp.Status, Rewards: st.Rewards,
		Users: st.Users, PointsGranted: st.PointsGranted, Budget: b, RuleErrors: st.RuleErrors, Daily: daily}
	if err := a.refusalStats(ctx, &camp, &out); err != nil {
		return err
	}
	return c.JSON(out)
}

// poolLevel is the pool of a campaign's reward in its stats.
type poolLevel struct {
	ID       string `json:"id"`
	Left     int64  `json:"left"`
	LowWater int64  `json:"low_water"`
	Low      bool   `json:"low"`
}

// refusalStats adds to st the rewards camp refused and the level of its pool.
func (a *API) refusalStats(ctx context.Context, camp *campaign.Campaign, st *campaignStats) error {
	byReason, err := a.deps.Store.CampaignRefusals(ctx, camp.ID)
	if err != nil {
		return err
	}
	st.RefusedByReason = byReason
	for _, n := range byReason {
		st.RewardsRefused += n
	}
	if !camp.Reward.TakesCode() {
		return nil
	}
	p, err := a.deps.Store.GetPool(ctx, camp.Reward.Pool)
	if errors.Is(err, persistence.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	st.Pool = &poolLevel{ID: p.ID, Left: p.Left, LowWater: p.LowWater, Low: p.Left <= p.LowWater}
	return nil
}

// campaignRoutes are the campaigns, their versions and stats.
func (a *API) campaignRoutes() api.Group {
	versioned := []api.Param{api.IfMatch}
	etag := []string{"ETag"}
	const tag = "Campaigns"
	return api.Group{
		Tags: []api.Tag{{Name: tag, Description: "Campaigns: a rule (CEL) and a reward, with a schedule, a priority and limits. " +
			"Every change is a new version (ETag); viewers read, editors change."}},
		Routes: []api.Route{
			{Method: "POST", Path: "/v1/campaigns", Access: api.Editor, Tag: tag, OperationID: "createCampaign",
				Summary:     "Create a campaign (id optional; status defaults to draft)",
				Description: "Without `id`, one is made from the name. A campaign posted with `\"status\": \"active\"` is live at once.",
				Handler:     a.createCampaign, Request: "Campaign", Response: "Campaign", Headers: []string{"ETag", "Location"},
				Statuses: []int{201, 400, 409, 415, 503},
				StatusNotes: map[int]string{
					400: "Invalid campaign: errors lists every invalid field; a rule that does not compile has line, column and snippet",
					409: "A campaign with this id exists (archived ones included)",
					503: "Saved, but not yet published to the engines; they load it at their next start",
				}},
			{Method: "GET", Path: "/v1/campaigns", Access: api.Viewer, Tag: tag, OperationID: "listCampaigns",
				Summary: "List campaigns oldest first, archived ones included (limit, cursor)", Handler: a.listCampaigns, Response: "CampaignList",
				Params: api.Pagination, Statuses: []int{200, 400}, StatusNotes: map[int]string{400: "A bad limit or cursor"}},
			{Method: "GET", Path: "/v1/campaigns/:id", Access: api.Viewer, Tag: tag, OperationID: "getCampaign",
				Summary: "Get a campaign (ETag is its version)", Handler: a.getCampaign, Response: "Campaign", Headers: etag,
				Statuses: []int{200, 400, 404}},
			{Method: "PUT", Path: "/v1/campaigns/:id", Access: api.Editor, Tag: tag, OperationID: "replaceCampaign",
				Summary:     "Replace a campaign as a new version",
				Description: "Fields left out are cleared, except `status`, which is kept. An archived campaign comes back with a `status`.",
				Handler:     a.putCampaign, Request: "Campaign", Response: "Campaign", Params: versioned, Headers: etag,
				Statuses: []int{200, 400, 404, 412, 415, 503},
				StatusNotes: map[int]string{
					400: "Invalid campaign, a body id other than the path's, or a bad If-Match",
					503: "Saved, but not yet published to the engines; they load it at their next start",
				}},
			{Method: "DELETE", Path: "/v1/campaigns/:id", Access: api.Editor, Tag: tag, OperationID: "archiveCampaign",
				Summary: "Archive a campaign (archiving an archived one changes nothing)", Handler: a.archiveCampaign, Response: "Campaign", Params: versioned, Headers: etag,
				Statuses:    []int{200, 400, 404, 412, 503},
				StatusNotes: map[int]string{503: "Saved, but not yet published to the engines"}},
			{Method: "POST", Path: "/v1/campaigns/:id/activate", Access: api.Editor, Tag: tag, OperationID: "activateCampaign",
				Summary: "Activate a campaign (it goes live at once)", Handler: a.activateCampaign, Response: "Campaign", Params: versioned, Headers: etag,
				Statuses:    []int{200, 400, 404, 409, 412, 503},
				StatusNotes: map[int]string{409: "The campaign is archived; only PUT with a status brings it back", 503: "Saved, but not yet published to the engines"}},
			{Method: "POST", Path: "/v1/campaigns/:id/pause", Access: api.Editor, Tag: tag, OperationID: "pauseCampaign",
				Summary: "Pause a campaign", Handler: a.pauseCampaign, Response: "Campaign", Params: versioned, Headers: etag,
				Statuses:    []int{200, 400, 404, 409, 412, 503},
				StatusNotes: map[int]string{409: "The campaign is archived; only PUT with a status brings it back", 503: "Saved, but not yet published to the engines"}},
			{Method: "GET", Path: "/v1/campaigns/:id/versions", Access: api.Viewer, Tag: tag, OperationID: "listCampaignVersions",
				Summary: "Every saved version of a campaign, oldest first", Handler: a.listCampaignVersions, Response: "CampaignVersionList",
				Statuses: []int{200, 400, 404}},
			{Method: "GET", Path: "/v1/campaigns/:id/stats", Access: api.Viewer, Tag: tag, OperationID: "getCampaignStats",
				Summary: "A campaign's rewards, users, points granted and budget used and left", Handler: a.campaignStats, Response: "CampaignStats",
				Statuses: []int{200, 400, 404}},
		},
		Schemas: campaignSchemas(),
		Examples: map[string]any{
			"Campaign": fiber.Map{
				"id": "ten-percent", "name": "10% back", "status": "active",
				"rule":   `event.type == "purchase" && event.amount > 50`,
				"reward": fiber.Map{"type": "points", "points": "int(event.amount * 0.1)", "expires_in": "8760h"},
				"limits": fiber.Map{"per_user_per_day": 3, "total_points": 1000000},
			},
		},
	}
}

// campaignSchemas are the campaign routes' schemas.
func campaignSchemas() map[string]any {
	return map[string]any{
		"Campaign": obj([]string{"name", "rule", "reward"}, fiber.Map{
			"id":          fiber.Map{"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$", "description": "Generated from the name when absent"},
			"name":        fiber.Map{"type": "string", "minLength": 1, "maxLength": campaign.MaxNameChars},
			"description": fiber.Map{"type": "string", "maxLength": campaign.MaxDescriptionChars},
			"rule":        fiber.Map{"type": "string", "maxLength": campaign.MaxExprChars, "description": "Boolean CEL expression over event, user and now"},
			"reward":      ref("Reward"),
			"status":      fiber.Map{"type": "string", "enum": []string{"draft", "active", "paused", "archived"}, "default": "draft"},
			"starts_at":   dateTime,
			"ends_at":     dateTime,
			"priority":    fiber.Map{"type": "integer", "description": "Higher first"},
			"exclusive":   fiber.Map{"type": "boolean", "description": "When it matches, campaigns of lower priority do not apply"},
			"limits": obj(nil, fiber.Map{
				"per_user":         fiber.Map{"type": "integer", "minimum": 0, "description": "Rewards per user, ever"},
				"per_user_per_day": fiber.Map{"type": "integer", "minimum": 0, "description": "Rewards per user per day of time_zone"},
				"total_rewards":    fiber.Map{"type": "integer", "minimum": 0, "description": "Budget: rewards in all"},
				"total_points":     fiber.Map{"type": "integer", "minimum": 0, "description": "Budget: points in all"}}),
			"time_zone":  fiber.Map{"type": "string", "maxLength": campaign.MaxTimeZoneChars, "description": "IANA zone whose days limits.per_user_per_day counts; UTC when unset"},
			"version":    fiber.Map{"type": "integer", "readOnly": true},
			"created_at": fiber.Map{"type": "string", "format": "date-time", "readOnly": true},
			"updated_at": fiber.Map{"type": "string", "format": "date-time", "readOnly": true},
		}),
		"Reward": obj([]string{"type"}, fiber.Map{
			"type":       fiber.Map{"type": "string", "enum": []string{campaign.RewardPoints, campaign.RewardCoupon, campaign.RewardFreeShipping, campaign.RewardNotification}},
			"points":     pointsExpr,
			"expires_in": fiber.Map{"type": "string", "description": "For points rewards: how long granted points stay valid, e.g. 8760h"},
			"data":       fiber.Map{"type": "object", "description": fmt.Sprintf("Free-form, passed on with the reward (e.g. a coupon code); at most %d bytes as JSON", campaign.MaxDataBytes)},
			"pool": fiber.Map{"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$",
				"description": "For coupon and free_shipping rewards: the coupon code pool the reward takes one code from (payload.coupon_code); " +
					"a reward whose pool has no code left is not granted (stats: rewards_refused)"},
		}),
		"CampaignList": listOf("campaigns", "Campaign"),
		"CampaignVersionList": obj([]string{"versions"}, fiber.Map{"versions": fiber.Map{"type": "array", "items": obj(nil, fiber.Map{
			"version": integer, "created_by": str(), "created_at": dateTime, "campaign": ref("Campaign")})}}),
		"CampaignStats": obj(nil, fiber.Map{
			"campaign_id": str(), "version": integer, "status": str(), "rewards": integer, "users": integer, "points_granted": integer,
			"rewards_refused": fiber.Map{"type": "integer", "description": "Rewards the campaign matched but did not grant: its coupon code pool had no code left"},
			"refused_by_reason": fiber.Map{"type": "object", "additionalProperties": integer,
				"description": "rewards_refused by reason (pool_exhausted)"},
			"pool": obj([]string{"id", "left", "low_water", "low"}, fiber.Map{"id": str(),
				"left": fiber.Map{"type": "integer", "description": "Free, unexpired codes left"}, "low_water": integer, "low": boolean}),
			"rule_errors": fiber.Map{"type": "integer", "description": "Events on which the rule or points expression failed at run time (no match)"},
			"budget": obj(nil, fiber.Map{
				"total_rewards": integer, "total_points": integer, "rewards_used": integer, "points_used": integer,
				"rewards_left": integer, "points_left": integer,
				"exhausted": fiber.Map{"type": "boolean", "description": "The campaign no longer matches for lack of budget"}}),
			"daily": fiber.Map{"type": "array", "minItems": statsDays, "maxItems": statsDays,
				"description": fmt.Sprintf("What the campaign granted on each of the last %d UTC days, oldest first and today last, "+
					"days without rewards included; a reward counts on the day of its event's occurred_at", statsDays),
				"items": obj([]string{"day", "rewards", "points", "rule_errors"}, fiber.Map{
					"day": fiber.Map{"type": "string", "format": "date"}, "rewards": integer, "points": integer, "rule_errors": integer})}}),
	}
}

// pointsExpr is the schema of a points expression: a string holding an integer CEL
// expression, or an integer constant.
var pointsExpr = fiber.Map{"description": "Integer CEL expression (a string), or an integer constant, for points rewards",
	"oneOf": []fiber.Map{{"type": "string", "maxLength": campaign.MaxExprChars}, {"type": "integer"}}}
