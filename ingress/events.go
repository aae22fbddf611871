package ingress

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

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
	ID        string   `json:"id,omitempty"`
	Status    int      `json:"status"`
	Duplicate bool     `json:"duplicate,omitempty"`
	Error     *Problem `json:"error,omitempty"`
}

func requireJSON(c *fiber.Ctx) error {
	mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || (mt != fiber.MIMEApplicationJSON && !hasSuffix(mt, "+json")) {
		return problemf(fiber.StatusUnsupportedMediaType, "the body must be JSON (Content-Type: application/json)")
	}
	return nil
}

func hasSuffix(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}

// decodeProblem turns an event decoding error into the problem the client gets.
func decodeProblem(err error) *Problem {
	if errors.Is(err, event.ErrTooLarge) {
		return problemf(fiber.StatusRequestEntityTooLarge, "an event may be at most 64 KiB")
	}
	var ve *event.ValidationError
	if errors.As(err, &ve) {
		p := problemf(fiber.StatusBadRequest, ve.Error())
		p.Field = ve.Field
		return p
	}
	return problemf(fiber.StatusBadRequest, err.Error())
}

func (s *Server) publishCtx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), s.cfg.PublishTimeout)
}

// unavailable is the answer when JetStream did not acknowledge (the cause is logged by
// the caller, not shown).
func unavailable(error) *Problem {
	p := problemf(fiber.StatusServiceUnavailable, "the event store did not acknowledge the event; retry with the same id")
	p.RetryAfter = 1
	return p
}

func (s *Server) postEvent(c *fiber.Ctx) error {
	if err := requireJSON(c); err != nil {
		return err
	}
	body := c.Body()
	if len(body) > event.MaxSize {
		s.metrics.rejected.WithLabelValues("too_large").Inc()
		return decodeProblem(event.ErrTooLarge)
	}
	ev, err := event.Decode(body, time.Now().UTC())
	if err == nil {
		err = refuseSystemType(&ev)
	}
	if err != nil {
		s.metrics.rejected.WithLabelValues("invalid").Inc()
		return decodeProblem(err)
	}
	ctx, cancel := s.publishCtx(c)
	defer cancel()
	res := s.deps.Publisher.PublishEvents(ctx, []*event.Event{&ev}, correlationID(c))[0]
	if res.Err != nil {
		s.metrics.rejected.WithLabelValues("unavailable").Inc()
		s.log.Warn("publish event", "event_id", ev.ID, "correlation_id", correlationID(c), "err", res.Err)
		return unavailable(res.Err)
	}
	if s.log.Enabled(c.UserContext(), slog.LevelDebug) {
		s.log.Debug("event stored", "event_id", ev.ID, "user_id", ev.UserID, "seq", res.Seq,
			"duplicate", res.Duplicate, "correlation_id", correlationID(c))
	}
	if res.Duplicate {
		s.metrics.duplicate.Inc()
		return c.Status(fiber.StatusOK).JSON(eventAccepted{ID: ev.ID, Duplicate: true})
	}
	s.metrics.accepted.Inc()
	return c.Status(fiber.StatusAccepted).JSON(eventAccepted{ID: ev.ID})
}

func (s *Server) postEventBatch(c *fiber.Ctx) error {
	if err := requireJSON(c); err != nil {
		return err
	}
	var req struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(c.Body(), &req); err != nil {
		p := problemf(fiber.StatusBadRequest, "body must be {\"events\":[…]}: "+err.Error())
		p.Field = "events"
		return p
	}
	if len(req.Events) == 0 || len(req.Events) > s.cfg.MaxBatch {
		p := problemf(fiber.StatusBadRequest, "events must hold 1 to 1000 events")
		p.Field = "events"
		return p
	}
	now := time.Now().UTC()
	items := make([]batchItem, len(req.Events))
	evs := make([]*event.Event, 0, len(req.Events))
	idx := make([]int, 0, len(req.Events))
	for i, raw := range req.Events {
		ev, err := event.Decode(raw, now)
		if err == nil {
			err = refuseSystemType(&ev)
		}
		if err != nil {
			s.metrics.rejected.WithLabelValues("invalid").Inc()
			p := decodeProblem(err)
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
		results := s.deps.Publisher.PublishEvents(ctx, evs, correlationID(c))
		failed := 0
		for k, res := range results {
			i := idx[k]
			switch {
			case res.Err != nil:
				failed++
				s.metrics.rejected.WithLabelValues("unavailable").Inc()
				items[i] = batchItem{ID: evs[k].ID, Status: fiber.StatusServiceUnavailable, Error: unavailable(res.Err)}
			case res.Duplicate:
				s.metrics.duplicate.Inc()
				items[i] = batchItem{ID: evs[k].ID, Status: fiber.StatusOK, Duplicate: true}
			default:
				s.metrics.accepted.Inc()
				items[i] = batchItem{ID: evs[k].ID, Status: fiber.StatusAccepted}
			}
		}
		if failed == len(req.Events) {
			return unavailable(results[0].Err)
		}
	}
	return c.Status(fiber.StatusOK).JSON(fiber.Map{"results": items})
}
