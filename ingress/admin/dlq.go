package admin

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/campaignmanager/campaignmanager/ingress/api"
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

// dlqRoutes are the dead-letter stream's entries: list, replay, delete.
func (a *API) dlqRoutes() api.Group {
	entry := obj(nil, fiber.Map{
		"id": fiber.Map{"type": "string", "description": "The DLQ stream sequence"}, "reason": str(), "partition": integer,
		"deliveries": integer, "stream_seq": fiber.Map{"type": "integer", "description": "The event's sequence in EVENTS"},
		"subject": str(), "event_id": str(), "event": fiber.Map{"description": "The parked payload: JSON when it decodes, else a string"},
		"parked_at": dateTime,
	})
	const tag = "DLQ"
	return api.Group{
		Tags:    []api.Tag{{Name: tag, Description: "Events the engine could not apply, parked in the `DLQ` stream with the reason. Admin role; every change is audited."}},
		Schemas: map[string]any{"DLQEntry": entry, "DLQList": listOf("entries", "DLQEntry")},
		Routes: []api.Route{
			{Method: "GET", Path: "/v1/dlq", Access: api.Admin, Tag: tag, OperationID: "listDLQ",
				Summary: "Events parked in the dead-letter stream, oldest first (limit, cursor)", Handler: a.listDLQ, Response: "DLQList", Params: api.Pagination,
				Statuses: []int{200, 400}, StatusNotes: map[int]string{400: "A bad limit or cursor"}},
			{Method: "POST", Path: "/v1/dlq/:id/replay", Access: api.Admin, Tag: tag, OperationID: "replayDLQEntry",
				Summary: "Publish a parked event to EVENTS again (same event id) and remove it from the DLQ", Handler: a.replayDLQ, Response: "DLQEntry",
				Statuses: []int{200, 400, 404, 409, 422},
				StatusNotes: map[int]string{
					400: "The id is not a DLQ entry id (a positive integer)",
					409: "The event id is still inside JetStream's duplicate window, so the replay was dropped; the entry is kept",
					422: "The entry does not name its original events subject; it cannot be replayed",
				}},
			{Method: "DELETE", Path: "/v1/dlq/:id", Access: api.Admin, Tag: tag, OperationID: "deleteDLQEntry",
				Summary: "Discard a parked event", Handler: a.deleteDLQ, Response: "DLQEntry",
				Statuses: []int{200, 400, 404}, StatusNotes: map[int]string{400: "The id is not a DLQ entry id (a positive integer)"}},
		},
	}
}

// registerDLQGauge registers the campaign_dlq_messages gauge; registering it again keeps
// the first.
func (a *API) registerDLQGauge() {
	dlq := a.deps.DLQ
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
	if err := a.deps.Registerer.Register(g); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			a.log.Error("register campaign_dlq_messages", "err", err)
		}
	}
}

func (a *API) listDLQ(c *fiber.Ctx) error {
	limit, after, err := api.Page(c)
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	ms, err := a.deps.DLQ.List(ctx, uint64(after), limit) //nolint:gosec // G115: api.Page refuses a negative cursor
	if err != nil {
		return err
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

func (a *API) replayDLQ(c *fiber.Ctx) error {
	id, err := dlqID(c)
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	m, err := a.deps.DLQ.Replay(ctx, id)
	if err != nil {
		return api.About(err, "DLQ entry "+strconv.FormatUint(id, 10))
	}
	v := viewDLQ(m)
	a.audit(c, "dlq.replay", "dlq", v.ID, v, nil)
	return c.JSON(v)
}

func (a *API) deleteDLQ(c *fiber.Ctx) error {
	id, err := dlqID(c)
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	m, err := a.deps.DLQ.Get(ctx, id)
	if err != nil {
		return api.About(err, "DLQ entry "+strconv.FormatUint(id, 10))
	}
	if err := a.deps.DLQ.Delete(ctx, id); err != nil {
		return api.About(err, "DLQ entry "+strconv.FormatUint(id, 10))
	}
	v := viewDLQ(m)
	a.audit(c, "dlq.delete", "dlq", v.ID, v, nil)
	return c.JSON(v)
}

func dlqID(c *fiber.Ctx) (uint64, error) {
	id, err := strconv.ParseUint(c.Params("id"), 10, 64)
	if err != nil || id == 0 {
		return 0, fieldError("id", "must be a DLQ entry id (a positive integer)")
	}
	return id, nil
}
