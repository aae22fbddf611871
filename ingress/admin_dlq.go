package ingress

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
)

// DLQ is the dead-letter stream as the admin API uses it; bus.DLQ implements it. Its
// methods block on JetStream and are safe for concurrent use.
type DLQ interface {
	// List returns up to limit entries with an id greater than after, oldest first.
	List(ctx context.Context, after uint64, limit int) ([]bus.DLQMessage, error)
	// Replay re-publishes entry id's event to EVENTS and deletes the entry. It returns
	// bus.ErrDLQNotFound, bus.ErrDLQNotReplayable or bus.ErrReplayDuplicate.
	Replay(ctx context.Context, id uint64) (bus.DLQMessage, error)
	// Get returns entry id, or bus.ErrDLQNotFound.
	Get(ctx context.Context, id uint64) (bus.DLQMessage, error)
	// Delete removes entry id, or returns bus.ErrDLQNotFound.
	Delete(ctx context.Context, id uint64) error
	// Size is the number of entries.
	Size(ctx context.Context) (uint64, error)
}

// dlqEntryView is a DLQ entry as the admin API shows it.
type dlqEntryView struct {
	ID         string    `json:"id"`
	Reason     string    `json:"reason"`
	Partition  int       `json:"partition"`
	Deliveries uint64    `json:"deliveries"`
	StreamSeq  uint64    `json:"stream_seq"`
	Subject    string    `json:"subject"`
	EventID    string    `json:"event_id,omitempty"`
	Event      any       `json:"event"`
	ParkedAt   time.Time `json:"parked_at"`
}

func viewDLQ(m bus.DLQMessage) dlqEntryView {
	v := dlqEntryView{ID: strconv.FormatUint(m.ID, 10), Reason: m.Reason, Partition: m.Partition,
		Deliveries: m.Deliveries, StreamSeq: m.StreamSeq, Subject: m.Subject, EventID: m.EventID, ParkedAt: m.ParkedAt}
	if json.Valid(m.Data) {
		v.Event = json.RawMessage(m.Data)
	} else {
		v.Event = string(m.Data)
	}
	return v
}

// dlqRoutes lists the DLQ admin API; none when the server has no DLQ. It also registers
// the campaign_dlq_messages gauge (once per registerer).
func (s *Server) dlqRoutes() []route {
	if s.deps.DLQ == nil {
		return nil
	}
	s.registerDLQGauge()
	return []route{
		{method: "GET", path: "/v1/dlq", access: accessAdmin, summary: "Events parked in the dead-letter stream, oldest first (limit, cursor)", handler: s.listDLQ, response: "DLQList"},
		{method: "POST", path: "/v1/dlq/:id/replay", access: accessAdmin, summary: "Publish a parked event to EVENTS again (same event id) and remove it from the DLQ", handler: s.replayDLQ, response: "DLQEntry"},
		{method: "DELETE", path: "/v1/dlq/:id", access: accessAdmin, summary: "Discard a parked event", handler: s.deleteDLQ, response: "DLQEntry"},
	}
}

// registerDLQGauge registers the DLQ size gauge; registering it again (the route table
// is built more than once) keeps the first.
func (s *Server) registerDLQGauge() {
	dlq := s.deps.DLQ
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "campaign_dlq_messages", Help: "Events parked in the DLQ stream now (waiting for replay or deletion).",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := dlq.Size(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
	if err := s.deps.Registerer.Register(g); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			s.log.Error("register campaign_dlq_messages", "err", err)
		}
	}
}

func (s *Server) listDLQ(c *fiber.Ctx) error {
	limit, after, err := pageParams(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	ms, err := s.deps.DLQ.List(ctx, uint64(after), limit)
	if err != nil {
		return dlqUnavailable(err)
	}
	out := make([]dlqEntryView, 0, len(ms))
	for _, m := range ms {
		out = append(out, viewDLQ(m))
	}
	next := ""
	if len(ms) == limit {
		next = strconv.FormatUint(ms[len(ms)-1].ID, 10)
	}
	return c.JSON(fiber.Map{"entries": out, "next_cursor": next})
}

func (s *Server) replayDLQ(c *fiber.Ctx) error {
	id, err := dlqID(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	m, err := s.deps.DLQ.Replay(ctx, id)
	if err != nil {
		return dlqProblem(err, id)
	}
	v := viewDLQ(m)
	s.audit(c, "dlq.replay", "dlq", v.ID, v, nil)
	return c.JSON(v)
}

func (s *Server) deleteDLQ(c *fiber.Ctx) error {
	id, err := dlqID(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	m, err := s.deps.DLQ.Get(ctx, id)
	if err != nil {
		return dlqProblem(err, id)
	}
	if err := s.deps.DLQ.Delete(ctx, id); err != nil {
		return dlqProblem(err, id)
	}
	v := viewDLQ(m)
	s.audit(c, "dlq.delete", "dlq", v.ID, v, nil)
	return c.JSON(v)
}

func dlqID(c *fiber.Ctx) (uint64, error) {
	id, err := strconv.ParseUint(c.Params("id"), 10, 64)
	if err != nil || id == 0 {
		p := problemf(fiber.StatusBadRequest, "id must be a DLQ entry id (a positive integer)")
		p.Field = "id"
		return 0, p
	}
	return id, nil
}

// dlqProblem maps DLQ sentinels to problems; NATS failures are 503.
func dlqProblem(err error, id uint64) error {
	ids := strconv.FormatUint(id, 10)
	switch {
	case errors.Is(err, bus.ErrDLQNotFound):
		return problemf(fiber.StatusNotFound, "DLQ entry "+ids+" not found")
	case errors.Is(err, bus.ErrDLQNotReplayable):
		return problemf(fiber.StatusUnprocessableEntity, "DLQ entry "+ids+" does not name its original events subject; it cannot be replayed")
	case errors.Is(err, bus.ErrReplayDuplicate):
		p := problemf(fiber.StatusConflict, "DLQ entry "+ids+": its event id is still inside JetStream's duplicate window, so the replay was dropped; the entry is kept, replay it once the window has passed")
		return p
	}
	return dlqUnavailable(err)
}

func dlqUnavailable(err error) error {
	p := problemf(fiber.StatusServiceUnavailable, "the DLQ stream is not reachable: "+err.Error())
	p.RetryAfter = 1
	return p
}

func init() {
	integer := fiber.Map{"type": "integer"}
	entry := fiber.Map{"type": "object", "properties": fiber.Map{
		"id": str(), "reason": str(), "partition": integer, "deliveries": integer, "stream_seq": integer,
		"subject": str(), "event_id": str(), "event": fiber.Map{"description": "The parked payload: JSON when it decodes, else a string"},
		"parked_at": fiber.Map{"type": "string", "format": "date-time"},
	}}
	schemas["DLQEntry"] = entry
	schemas["DLQList"] = fiber.Map{"type": "object", "properties": fiber.Map{
		"entries": fiber.Map{"type": "array", "items": fiber.Map{"$ref": "#/components/schemas/DLQEntry"}}, "next_cursor": str()}}
}
