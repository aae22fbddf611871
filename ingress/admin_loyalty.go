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
		{method: "POST", path: "/v1/users/:id/adjustments", access: accessAdmin, summary: "Adjust a user's points (audited); applied in order with the user's events", handler: s.postAdjustment, request: "Adjustment", response: "AdjustmentAccepted"},
	}
}

type ledgerList struct {
	Entries    []persistence.LedgerEntry `json:"entries"`
	NextCursor string                    `json:"next_cursor,omitempty"`
}

func (s *Server) listLedger(c *fiber.Ctx) error {
	id, err := pathParamValue(c, "id")
	if err != nil {
		return err
	}
	limit, after, err := pageParams(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	es, err := s.deps.Store.ListLedger(ctx, id, after, limit)
	if err != nil {
		return err
	}
	out := ledgerList{Entries: es}
	if out.Entries == nil {
		out.Entries = []persistence.LedgerEntry{}
	}
	if len(es) == limit {
		out.NextCursor = strconv.FormatInt(es[len(es)-1].ID, 10)
	}
	return c.JSON(out)
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
