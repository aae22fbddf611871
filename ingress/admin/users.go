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
	f := persistence.AuditFilter{AfterID: after, Limit: limit}
	for _, q := range []struct {
		name string
		to   *string
	}{{"actor", &f.Actor}, {"target_type", &f.TargetType}, {"target_id", &f.TargetID}} {
		if *q.to, err = api.Query(c, q.name); err != nil {
			return err
		}
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	es, err := a.deps.Store.ListAudit(ctx, f)
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
	const tag = "Users"
	counts := fiber.Map{"type": "object", "additionalProperties": integer}
	page := append([]api.Param(nil), api.Pagination...)
	return api.Group{
		Tags: []api.Tag{{Name: tag, Description: "Loyalty users as the engine keeps them: state, granted rewards, the points ledger, and admin adjustments. " +
			"A user id in a path is URL-escaped; any UTF-8 id works."}},
		Routes: []api.Route{
			{Method: "GET", Path: "/v1/users/:id", Access: api.Viewer, Tag: tag, OperationID: "getUser",
				Summary: "A user's loyalty state", Handler: a.getUser, Response: "User",
				Statuses: []int{200, 400, 404}, StatusNotes: map[int]string{404: "No event of this user was ever processed"}},
			{Method: "GET", Path: "/v1/users/:id/rewards", Access: api.Viewer, Tag: tag, OperationID: "listUserRewards",
				Summary: "A user's rewards, oldest first (limit, cursor)", Handler: a.listUserRewards, Response: "RewardList", Params: page,
				Statuses: []int{200, 400, 404}, StatusNotes: map[int]string{400: "A bad limit or cursor", 404: "No event of this user was ever processed"}},
			{Method: "GET", Path: "/v1/users/:id/ledger", Access: api.Viewer, Tag: tag, OperationID: "listUserLedger",
				Summary: "A user's points ledger, oldest first (limit, cursor); the balance is its sum", Handler: a.listLedger, Response: "LedgerList", Params: page,
				Statuses: []int{200, 400, 404}, StatusNotes: map[int]string{400: "A bad limit or cursor", 404: "No event of this user was ever processed"}},
			{Method: "POST", Path: "/v1/users/:id/adjustments", Access: api.Admin, Tag: tag, OperationID: "adjustUserPoints",
				Summary: "Adjust a user's points (audited); applied in order with the user's events",
				Description: "The adjustment becomes a `points.adjust` event of the user, applied exactly once in order with the user's events. " +
					"One that would take the balance below zero is refused when applied (the user's `last_rejection` says so).",
				Handler: a.postAdjustment, Request: "Adjustment", Response: "AdjustmentAccepted",
				Statuses:    []int{202, 400, 415, 503},
				StatusNotes: map[int]string{202: "Stored in the event stream; the ledger shows it once applied", 503: "The event store did not acknowledge the adjustment; retry"}},
		},
		Schemas: map[string]any{
			"User": obj([]string{"user_id", "points"}, fiber.Map{"user_id": str(), "tier": fiber.Map{"type": "string", "description": "\"\" below the first tier"},
				"points":          fiber.Map{"type": "integer", "description": "Spendable balance: the sum of the ledger"},
				"lifetime_points": fiber.Map{"type": "integer", "description": "Points ever earned from campaigns"},
				"purchase_count":  integer, "total_spent": number, "first_seen": dateTime, "last_purchase_at": dateTime,
				"event_counts": counts, "reward_counts": counts,
				"reward_days": fiber.Map{"type": "object", "description": "Rewards per campaign on the current day of its time zone",
					"additionalProperties": obj(nil, fiber.Map{"day": fiber.Map{"type": "string", "format": "date"}, "count": integer})},
				"history": nullable(fiber.Map{"type": "array", "description": "Days with activity, oldest first (at most 400)", "items": obj(nil, fiber.Map{
					"d": fiber.Map{"type": "integer", "description": "Days since 1970-01-01 (UTC)"},
					"s": fiber.Map{"type": "number", "description": "Purchase amount of the day, net of refunds"},
					"c": fiber.Map{"type": "object", "description": "Events per type that day", "additionalProperties": integer}})}),
				"lots": nullable(fiber.Map{"type": "array", "description": "Unspent earned points, soonest-expiring first", "items": obj(nil, fiber.Map{
					"points": integer, "expires_at": dateTime})}),
				"next_expiry":    dateTime,
				"last_rejection": obj(nil, fiber.Map{"event_id": str(), "type": str(), "reason": str(), "at": dateTime}),
				"tier_reviewed":  fiber.Map{"type": "string", "description": "The month (YYYY-MM) the tier was last set or reviewed"},
				"version":        integer, "updated_at": dateTime}),
			"GrantedReward": obj(nil, fiber.Map{"id": str(), "user_id": str(), "campaign_id": str(), "campaign_version": integer,
				"event_id": str(), "type": str(), "points": integer, "payload": fiber.Map{"type": "object"}, "occurred_at": dateTime, "created_at": dateTime}),
			"RewardList": listOf("rewards", "GrantedReward"),
			"LedgerList": listOf("entries", "LedgerEntry"),
			"LedgerEntry": obj(nil, fiber.Map{
				"id": integer, "user_id": str(), "kind": fiber.Map{"type": "string", "enum": []string{loyalty.LedgerEarn, loyalty.LedgerRedeem, loyalty.LedgerExpire, loyalty.LedgerReverse, loyalty.LedgerAdjust}},
				"points": integer, "balance_after": integer, "event_id": str(), "reward_id": str(), "campaign_id": str(),
				"campaign_version": integer, "actor": str(), "reason": str(), "expires_at": dateTime, "occurred_at": dateTime, "created_at": dateTime}),
			"Adjustment": obj([]string{"points", "reason"}, fiber.Map{
				"points": fiber.Map{"type": "integer", "minimum": -1e12, "maximum": 1e12, "description": "Not 0: positive credits, negative debits (never below a zero balance)"},
				"reason": fiber.Map{"type": "string", "minLength": 1}}),
			"AdjustmentAccepted": obj(nil, fiber.Map{"event_id": str(), "user_id": str(), "points": integer}),
		},
		Examples: map[string]any{
			"Adjustment": fiber.Map{"points": -50, "reason": "goodwill for order 1001 reversed"},
			"User": fiber.Map{"user_id": "alice", "tier": "silver", "points": 1250, "lifetime_points": 1400, "purchase_count": 7, "total_spent": 812.5,
				"first_seen": "2025-01-04T10:00:00Z", "last_purchase_at": "2025-06-01T12:00:00Z",
				"event_counts": fiber.Map{"purchase": 7, "review": 2}, "reward_counts": fiber.Map{"ten-percent": 5},
				"version": 9, "updated_at": "2025-06-01T12:00:01Z"},
		},
	}
}

// auditRoutes are the audit log.
func (a *API) auditRoutes() api.Group {
	return api.Group{
		Tags: []api.Tag{{Name: "Audit", Description: "Every change made through the admin API: who, what, when, before and after. Admin role."}},
		Routes: []api.Route{
			{Method: "GET", Path: "/v1/audit", Access: api.Admin, Tag: "Audit", OperationID: "listAudit",
				Summary: "The audit log, oldest first (actor, target_type, target_id, limit, cursor)", Handler: a.listAudit, Response: "AuditList",
				Statuses: []int{200, 400}, StatusNotes: map[int]string{400: "A bad limit or cursor"},
				Params: append([]api.Param{
					{Name: "actor", In: "query", Description: "Only changes by this admin", Example: "admin"},
					{Name: "target_type", In: "query", Description: "Only changes of this kind of target, e.g. campaign", Example: "campaign"},
					{Name: "target_id", In: "query", Description: "Only changes of this target", Example: "ten-percent"},
				}, api.Pagination...)},
		},
		Schemas: map[string]any{
			"AuditEntry": obj(nil, fiber.Map{"id": integer, "actor": str(), "action": fiber.Map{"type": "string", "description": "e.g. campaign.update, api_key.revoke"},
				"target_type": str(), "target_id": str(),
				"before": fiber.Map{"description": "The target before the change (any JSON), absent for a creation"},
				"after":  fiber.Map{"description": "The target after the change (any JSON)"}, "created_at": dateTime}),
			"AuditList": listOf("entries", "AuditEntry"),
		},
	}
}
