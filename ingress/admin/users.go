package admin

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/ingress/api"
	"github.com/campaignmanager/campaignmanager/ingress/event"
	"github.com/campaignmanager/campaignmanager/persistence"
)

func (a *API) getUser(c *fiber.Ctx) error {
	id, err := api.PathParam(c, "id")
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	u, err := a.deps.Store.GetUser(ctx, id)
	if err != nil {
		return api.About(err, "user "+strconv.Quote(id))
	}
	return c.JSON(u)
}

// listUserRewards pages a user's rewards oldest first; next_cursor is set when the page
// is full. A user never seen is 404.
func (a *API) listUserRewards(c *fiber.Ctx) error {
	return userPage(a, c, "rewards", a.deps.Store.ListRewards, func(r loyalty.Reward) int64 { return r.Seq })
}

// userPage answers one page of a per-user listing, oldest first: the items under key and
// next_cursor when the page is full. A user never seen is 404.
func userPage[T any](a *API, c *fiber.Ctx, key string,
	list func(ctx context.Context, userID string, after int64, limit int) ([]T, error), cursor func(T) int64) error {
	id, err := api.PathParam(c, "id")
	if err != nil {
		return err
	}
	limit, after, err := api.Page(c)
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	items, err := list(ctx, id, after, limit)
	if err != nil {
		return err
	}
	if len(items) == 0 && after == 0 {
		if _, err := a.deps.Store.GetUser(ctx, id); errors.Is(err, persistence.ErrNotFound) {
			return api.About(err, "user "+strconv.Quote(id))
		} else if err != nil {
			return err
		}
	}
	if items == nil {
		items = []T{}
	}
	out := fiber.Map{key: items}
	if len(items) == limit {
		out["next_cursor"] = strconv.FormatInt(cursor(items[len(items)-1]), 10)
	}
	return c.JSON(out)
}

type auditList struct {
	Entries    []persistence.AuditEntry `json:"entries"`
	NextCursor string                   `json:"next_cursor,omitempty"`
}

// listAudit pages the audit log oldest first, filtered by actor, target_type and
// target_id.
func (a *API) listAudit(c *fiber.Ctx) error {
	limit, after, err := api.Page(c)
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	es, err := a.deps.Store.ListAudit(ctx, persistence.AuditFilter{
		Actor: c.Query("actor"), TargetType: c.Query("target_type"), TargetID: c.Query("target_id"),
		AfterID: after, Limit: limit,
	})
	if err != nil {
		return err
	}
	out := auditList{Entries: es}
	if out.Entries == nil {
		out.Entries = []persistence.AuditEntry{}
	}
	if len(es) == limit {
		out.NextCursor = strconv.FormatInt(es[len(es)-1].ID, 10)
	}
	return c.JSON(out)
}

// listLedger pages a user's points ledger oldest first (404 for a user never seen).
func (a *API) listLedger(c *fiber.Ctx) error {
	return userPage(a, c, "entries", a.deps.Store.ListLedger, func(e loyalty.LedgerEntry) int64 { return e.ID })
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
func (a *API) postAdjustment(c *fiber.Ctx) error {
	id, err := api.PathParam(c, "id")
	if err != nil {
		return err
	}
	var req adjustment
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	if req.Points == 0 || req.Points > 1e12 || req.Points < -1e12 {
		return fieldError("points", "must be a whole number other than 0, at most 10^12 in size")
	}
	if strings.TrimSpace(req.Reason) == "" {
		return fieldError("reason", "is required")
	}
	admin := adminOf(c).Username
	ev := &event.Event{
		ID: "adj_" + uuid.NewString(), UserID: id, Type: event.TypeAdjust, OccurredAt: time.Now().UTC(),
		Attributes: map[string]any{"points": float64(req.Points), "reason": req.Reason, "admin": admin},
	}
	if err := ev.Validate(); err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	res := a.deps.Publisher.PublishEvents(ctx, []*event.Event{ev}, api.CorrelationID(c))[0]
	if res.Err != nil {
		a.log.Warn("publish adjustment", "user_id", id, "correlation_id", api.CorrelationID(c), "err", res.Err)
		return api.Unavailable("the event store did not acknowledge the adjustment; retry")
	}
	a.audit(c, "user.adjust_points", "user", id, nil, map[string]any{"event_id": ev.ID, "points": req.Points, "reason": req.Reason})
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"event_id": ev.ID, "user_id": id, "points": req.Points})
}

// userRoutes are a user's state, rewards and ledger, and admin adjustments.
func (a *API) userRoutes() api.Group {
	return api.Group{
		Routes: []api.Route{
			{Method: "GET", Path: "/v1/users/:id", Access: api.Viewer, Summary: "A user's loyalty state", Handler: a.getUser, Response: "User"},
			{Method: "GET", Path: "/v1/users/:id/rewards", Access: api.Viewer, Summary: "A user's rewards, oldest first (limit, cursor)", Handler: a.listUserRewards, Response: "RewardList", Params: api.Pagination},
			{Method: "GET", Path: "/v1/users/:id/ledger", Access: api.Viewer, Summary: "A user's points ledger, oldest first (limit, cursor); the balance is its sum", Handler: a.listLedger, Response: "LedgerList", Params: api.Pagination},
			{Method: "POST", Path: "/v1/users/:id/adjustments", Access: api.Admin, Summary: "Adjust a user's points (audited); applied in order with the user's events", Handler: a.postAdjustment, Request: "Adjustment", Response: "AdjustmentAccepted"},
		},
		Schemas: map[string]any{
			"User": obj(nil, fiber.Map{"user_id": str(), "tier": str(), "points": integer, "lifetime_points": integer,
				"purchase_count": integer, "total_spent": number, "first_seen": dateTime, "last_purchase_at": dateTime,
				"event_counts": fiber.Map{"type": "object"}, "reward_counts": fiber.Map{"type": "object"},
				"last_rejection": obj(nil, fiber.Map{"event_id": str(), "type": str(), "reason": str(), "at": dateTime}),
				"version":        integer, "updated_at": dateTime}),
			"GrantedReward": obj(nil, fiber.Map{"id": str(), "user_id": str(), "campaign_id": str(), "campaign_version": integer,
				"event_id": str(), "type": str(), "points": integer, "payload": fiber.Map{"type": "object"}, "occurred_at": dateTime, "created_at": dateTime}),
			"RewardList": listOf("rewards", "GrantedReward"),
			"LedgerList": obj(nil, fiber.Map{
				"entries": fiber.Map{"type": "array", "items": obj(nil, fiber.Map{
					"id": integer, "kind": fiber.Map{"type": "string", "enum": []string{loyalty.LedgerEarn, loyalty.LedgerRedeem, loyalty.LedgerExpire, loyalty.LedgerReverse, loyalty.LedgerAdjust}},
					"points": integer, "balance_after": integer, "event_id": str(), "reward_id": str(), "campaign_id": str(),
					"campaign_version": integer, "actor": str(), "reason": str(), "expires_at": dateTime, "occurred_at": dateTime})},
				"next_cursor": str()}),
			"Adjustment": obj([]string{"points", "reason"}, fiber.Map{
				"points": fiber.Map{"type": "integer", "description": "positive credits, negative debits (never below a zero balance)"},
				"reason": str()}),
			"AdjustmentAccepted": obj(nil, fiber.Map{"event_id": str(), "user_id": str(), "points": integer}),
		},
	}
}

// auditRoutes are the audit log.
func (a *API) auditRoutes() api.Group {
	return api.Group{
		Routes: []api.Route{
			{Method: "GET", Path: "/v1/audit", Access: api.Admin, Summary: "The audit log, oldest first (actor, target_type, target_id, limit, cursor)", Handler: a.listAudit, Response: "AuditList",
				Params: append([]api.Param{
					{Name: "actor", In: "query", Description: "Only changes by this admin"},
					{Name: "target_type", In: "query", Description: "Only changes of this kind of target, e.g. campaign"},
					{Name: "target_id", In: "query", Description: "Only changes of this target"},
				}, api.Pagination...)},
		},
		Schemas: map[string]any{
			"AuditEntry": obj(nil, fiber.Map{"id": integer, "actor": str(), "action": str(), "target_type": str(), "target_id": str(),
				"before": fiber.Map{}, "after": fiber.Map{}, "created_at": dateTime}),
			"AuditList": listOf("entries", "AuditEntry"),
		},
	}
}
