package ingress

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/ingress/api"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// maxBatchBody bounds a batch request: 1000 events of typical size. Single events are
// bounded by event.MaxSize.
const maxBatchBody = 8 << 20

// eventAccepted is the answer to one stored event.
type eventAccepted struct {
	ID        string `json:"id"`
	Duplicate bool   `json:"duplicate"`
}

// batchItem is the answer for one event of a batch.
type batchItem struct {
	ID        string       `json:"id,omitempty"`
	Status    int          `json:"status"`
	Duplicate bool         `json:"duplicate,omitempty"`
	Error     *api.Problem `json:"error,omitempty"`
}

func (s *Server) publishCtx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), s.cfg.PublishTimeout)
}

// unavailable is the answer when JetStream did not acknowledge (the cause is logged by
// the caller, not shown).
func unavailable() *api.Problem {
	return api.Unavailable("the event store did not acknowledge the event; retry with the same id")
}

// admissible checks what ingest adds to the event contract: no engine-only type, and no
// date more than the allowed skew after now, the time received.
func (s *Server) admissible(ev *event.Event, now time.Time) error {
	if err := ev.CheckIngestable(); err != nil {
		return err
	}
	return ev.CheckNotFuture(now, s.cfg.MaxSkew)
}

func (s *Server) postEvent(c *fiber.Ctx) error {
	if err := api.RequireJSON(c); err != nil {
		return err
	}
	body := c.Body()
	if len(body) > event.MaxSize {
		s.metrics.rejected.WithLabelValues("too_large").Inc()
		return event.ErrTooLarge
	}
	now := time.Now().UTC()
	ev, err := event.Decode(body, now)
	if err == nil {
		err = s.admissible(&ev, now)
	}
	if err != nil {
		s.metrics.rejected.WithLabelValues("invalid").Inc()
		return err
	}
	ctx, cancel := s.publishCtx(c)
	defer cancel()
	res := s.deps.Publisher.PublishEvents(ctx, []*event.Event{&ev}, api.CorrelationID(c))[0]
	if res.Err != nil {
		s.metrics.rejected.WithLabelValues("unavailable").Inc()
		s.log.Warn("publish event", "event_id", ev.ID, "correlation_id", api.CorrelationID(c), "err", res.Err)
		return unavailable()
	}
	if s.log.Enabled(c.UserContext(), slog.LevelDebug) {
		s.log.Debug("event stored", "event_id", ev.ID, "user_id", ev.UserID, "seq", res.Seq,
			"duplicate", res.Duplicate, "correlation_id", api.CorrelationID(c))
	}
	if res.Duplicate {
		s.metrics.duplicate.Inc()
		return c.Status(fiber.StatusOK).JSON(eventAccepted{ID: ev.ID, Duplicate: true})
	}
	s.metrics.accepted.Inc()
	return c.Status(fiber.StatusAccepted).JSON(eventAccepted{ID: ev.ID})
}

func (s *Server) postEventBatch(c *fiber.Ctx) error {
	if err := api.RequireJSON(c); err != nil {
		return err
	}
	var req struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(c.Body(), &req); err != nil {
		return &event.FieldError{Field: "events", Reason: "body must be {\"events\":[…]}: " + err.Error()}
	}
	if len(req.Events) == 0 || len(req.Events) > s.cfg.MaxBatch {
		return &event.FieldError{Field: "events", Reason: "must hold 1 to " + strconv.Itoa(s.cfg.MaxBatch) + " events"}
	}
	now := time.Now().UTC()
	items := make([]batchItem, len(req.Events))
	evs := make([]*event.Event, 0, len(req.Events))
	idx := make([]int, 0, len(req.Events))
	for i, raw := range req.Events {
		ev, err := event.Decode(raw, now)
		if err == nil {
			err = s.admissible(&ev, now)
		}
		if err != nil {
			s.metrics.rejected.WithLabelValues("invalid").Inc()
			p := problemFor(err)
			if p == nil {
				p = api.Problemf(fiber.StatusBadRequest, err.Error())
			}
			if p.Field != "" {
				p.Field = "events[" + strconv.Itoa(i) + "]." + p.Field
			}
			items[i] = batchItem{ID: ev.ID, Status: p.Status, Error: p}
			continue
		}
		evs = append(evs, &ev)
		idx = append(idx, i)
	}
	if len(evs) > 0 {
		ctx, cancel := s.publishCtx(c)
		defer cancel()
		results := s.deps.Publisher.PublishEvents(ctx, evs, api.CorrelationID(c))
		failed := 0
		for k, res := range results {
			i := idx[k]
			switch {
			case res.Err != nil:
				failed++
				s.metrics.rejected.WithLabelValues("unavailable").Inc()
				items[i] = batchItem{ID: evs[k].ID, Status: fiber.StatusServiceUnavailable, Error: unavailable()}
			case res.Duplicate:
				s.metrics.duplicate.Inc()
				items[i] = batchItem{ID: evs[k].ID, Status: fiber.StatusOK, Duplicate: true}
			default:
				s.metrics.accepted.Inc()
				items[i] = batchItem{ID: evs[k].ID, Status: fiber.StatusAccepted}
			}
		}
		if failed == len(req.Events) {
			return unavailable()
		}
	}
	return c.Status(fiber.StatusOK).JSON(fiber.Map{"results": items})
}
