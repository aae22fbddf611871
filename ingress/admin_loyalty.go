package ingress

import (
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/campaignmanager/campaignmanager/ingress/event"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// systemTypePrefix marks event types the engine sends itself (admin adjustments, expiry
// sweeps). Storefronts may not send them.
const systemTypePrefix = "points."

// loyaltyRoutes are the points ledger and admin adjustments.
func (s *Server) loyaltyRoutes() []route {
	return []route{
		{method: "GET", path: "/v1/users/:id/ledger", access: accessViewer, summary: "A user's points ledger, oldest first (limit, cursor); the balance is its sum", handler: s.listLedger, response: "LedgerList"},
		{method: "PUT", path: "/v1/auth/password", access: accessViewer, summary: "Change your own password (current_password, new_password)", handler: s.putOwnPassword, request: "PasswordChange"},
		{method: "GET", path: "/v1/tiers", access: accessViewer, summary: "The tier configuration (ETag is its version)", handler: s.getTiers, response: "TierConfig"},
		{method: "PUT", path: "/v1/tiers", access: accessAdmin, summary: "Replace the tier configuration (If-Match: <version> optional, 412 on mismatch); audited, in force on every engine at once", handler: s.putTiers, request: "TierConfig", response: "TierConfig"},
		{method: "GET", path: "/v1/campaigns/:id/stats", access: accessViewer, summary: "A campaign's rewards, users, points granted and budget used and left", handler: s.campaignStats, response: "CampaignStats"},
		{method: "POST", path: "/v1/users/:id/adjustments", access: accessAdmin, summary: "Adjust a user's points (audited); applied in order with the user's events", handler: s.postAdjustment, request: "Adjustment", response: "AdjustmentAccepted"},
	}
}

// listLedger pages a user's points ledger oldest first (404 for a user never seen).
func (s *Server) listLedger(c *fiber.Ctx) error {
	return userPage(s, c, "entries", s.deps.Store.ListLedger, func(e persistence.LedgerEntry) int64 { return e.ID })
}

type adjustment struct {
	Points int64  `json:"points"`
	Reason string `json:"reason"`
}

// postAdjustment turns an admin adjustment into a points.adjust event of the user, so it
// is applied by the user's actor in order with the user's other events, exactly once.
// The answer comes once JetStream has the event; the ledger shows it once applied. An
// adjustment that would take the balance below zero is refused there and recorded as
// the user's last_rejection (and parked in the DLQ).
func (s *Server) postAdjustment(c *fiber.Ctx) error {
	id, err := pathParamValue(c, "id")
	if err != nil {
		return err
	}
	var req adjustment
	if err := decodeAdminJSON(c, &req); err != nil {
		return err
	}
	if req.Points == 0 || req.Points > 1e12 || req.Points < -1e12 {
		p := problemf(fiber.StatusBadRequest, "points must be a whole number other than 0")
		p.Field = "points"
		return p
	}
	if strings.TrimSpace(req.Reason) == "" {
		p := problemf(fiber.StatusBadRequest, "reason is required")
		p.Field = "reason"
		return p
	}
	admin := adminOf(c).Username
	ev := &event.Event{
		ID: "adj_" + uuid.NewString(), UserID: id, Type: "points.adjust", OccurredAt: time.Now().UTC(),
		Attributes: map[string]any{"points": float64(req.Points), "reason": req.Reason, "admin": admin},
	}
	if err := ev.Validate(); err != nil {
		return decodeProblem(err)
	}
	ctx, cancel := s.publishCtx(c)
	defer cancel()
	res := s.deps.Publisher.PublishEvents(ctx, []*event.Event{ev}, correlationID(c))[0]
	if res.Err != nil {
		return unavailable(res.Err)
	}
	s.audit(c, "user.adjust_points", "user", id, nil, map[string]any{"event_id": ev.ID, "points": req.Points, "reason": req.Reason})
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"event_id": ev.ID, "user_id": id, "points": req.Points})
}

// refuseSystemType keeps storefronts from sending the engine's own event types.
func refuseSystemType(ev *event.Event) error {
	if strings.HasPrefix(ev.Type, systemTypePrefix) {
		return &event.ValidationError{Field: "type", Reason: "types starting with " + systemTypePrefix + " are reserved for the engine"}
	}
	return nil
}

func (s *Server) getTiers(c *fiber.Ctx) error {
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	cfg, err := s.deps.Store.GetTierConfig(ctx)
	if err != nil {
		return storeProblem(err, "tier configuration")
	}
	c.Set(fiber.HeaderETag, etag(cfg.Version))
	return c.JSON(cfg)
}

func (s *Server) putTiers(c *fiber.Ctx) error {
	var cfg persistence.TierConfig
	if err := decodeAdminJSON(c, &cfg); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		p := problemf(fiber.StatusBadRequest, "invalid tier configuration")
		for _, line := range strings.Split(err.Error(), "\n") {
			field, msg, _ := strings.Cut(line, ": ")
			p.Errors = append(p.Errors, fiber.Map{"field": field, "message": msg})
		}
		return p
	}
	want, err := ifMatch(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	if err := s.deps.Store.PutTierConfig(ctx, &cfg, want, adminOf(c).Username); err != nil {
		return storeProblem(err, "tier configuration")
	}
	if s.deps.Tiers != nil {
		if err := s.deps.Tiers.PutTiers(ctx, &cfg); err != nil {
			p := problemf(fiber.StatusServiceUnavailable, "saved, but not yet broadcast to the engines; retry the PUT")
			p.RetryAfter = 1
			return p
		}
	}
	c.Set(fiber.HeaderETag, etag(cfg.Version))
	return c.JSON(cfg)
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
}

func (s *Server) campaignStats(c *fiber.Ctx) error {
	id, err := pathParamValue(c, "id")
	if err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	camp, err := s.deps.Store.GetCampaign(ctx, id)
	if err != nil {
		return storeProblem(err, "campaign "+strconv.Quote(id))
	}
	st, err := s.deps.Store.GetCampaignStats(ctx, id)
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
	return c.JSON(campaignStats{CampaignID: id, Version: camp.Version, Status: camp.Status, Rewards: st.Rewards,
		Users: st.Users, PointsGranted: st.PointsGranted, Budget: b})
}

func init() {
	integer := fiber.Map{"type": "integer"}
	for name, schema := range map[string]fiber.Map{
		"LedgerList": {"type": "object", "properties": fiber.Map{
			"entries": fiber.Map{"type": "array", "items": fiber.Map{"type": "object", "properties": fiber.Map{
				"id": integer, "kind": fiber.Map{"type": "string", "enum": []string{"earn", "redeem", "expire", "reverse", "adjust"}},
				"points": integer, "balance_after": integer, "event_id": str(), "reward_id": str(), "campaign_id": str(),
				"campaign_version": integer, "actor": str(), "reason": str(),
				"expires_at":  fiber.Map{"type": "string", "format": "date-time"},
				"occurred_at": fiber.Map{"type": "string", "format": "date-time"}}}},
			"next_cursor": str()}},
		"TierConfig": {"type": "object", "required": []string{"basis", "tiers"}, "properties": fiber.Map{
			"version": integer,
			"basis":   fiber.Map{"type": "string", "enum": []string{"lifetime_points", "spend"}},
			"window":  fiber.Map{"type": "string", "description": "for the spend basis: a duration such as 8760h"},
			"tiers": fiber.Map{"type": "array", "items": fiber.Map{"type": "object", "properties": fiber.Map{
				"name": str(), "threshold": fiber.Map{"type": "number"}}}}}},
		"PasswordChange": {"type": "object", "required": []string{"current_password", "new_password"}, "properties": fiber.Map{
			"current_password": str(), "new_password": fiber.Map{"type": "string", "minLength": 8, "maxLength": 72}}},
		"Adjustment": {"type": "object", "required": []string{"points", "reason"}, "properties": fiber.Map{
			"points": fiber.Map{"type": "integer", "description": "positive credits, negative debits (never below a zero balance)"},
			"reason": str()}},
		"AdjustmentAccepted": {"type": "object", "properties": fiber.Map{"event_id": str(), "user_id": str(), "points": integer}},
		"CampaignStats": {"type": "object", "properties": fiber.Map{
			"campaign_id": str(), "version": integer, "status": str(), "rewards": integer, "users": integer, "points_granted": integer,
			"budget": fiber.Map{"type": "object", "properties": fiber.Map{
				"total_rewards": integer, "total_points": integer, "rewards_used": integer, "points_used": integer,
				"rewards_left": integer, "points_left": integer, "exhausted": fiber.Map{"type": "boolean"}}}}},
	} {
		schemas[name] = schema
	}
}
