package actors

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// partition consumes one partition of EVENTS and routes each event to its user's actor.
// Only its goroutine touches actors.
type partition struct {
	n          int
	iter       jetstream.MessagesContext
	engine     *actor.Engine
	deps       userDeps
	writer     *writer
	log        *slog.Logger
	metrics    *metrics
	maxDeliver uint64
	inboxSize  int

	actors   map[string]*actor.PID
	inflight sync.WaitGroup
	stopped  chan struct{}
}

func (p *partition) run() {
	defer close(p.stopped)
	for {
		msg, err := p.iter.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return
		}
		if err != nil {
			p.log.Warn("fetch from partition", "partition", p.n, "err", err)
			time.Sleep(100 * time.Millisecond) // the iterator reconnects by itself
			continue
		}
		p.handle(msg)
	}
}

func (p *partition) handle(msg jetstream.Msg) {
	ev := &EventReceived{Msg: msg, Partition: p.n, Subject: msg.Subject(), done: p.inflight.Done}
	p.inflight.Add(1)
	if h := msg.Headers(); h != nil {
		ev.CorrelationID = h.Get(bus.HeaderCorrelationID)
	}
	meta, err := msg.Metadata()
	if err != nil {
		p.log.Error("message without JetStream metadata; terminated", "partition", p.n, "err", err)
		_ = msg.Term()
		ev.finish()
		return
	}
	ev.Seq, ev.Deliveries = meta.Sequence.Stream, meta.NumDelivered
	p.metrics.received.Inc()

	// Stored subject: <partition>.events.<token>
	token := ev.Subject
	if i := strings.Index(token, ".events."); i >= 0 {
		token = token[i+len(".events."):]
	}
	userID, err := event.ParseToken(token)
	if err != nil {
		p.park(ev, fmt.Sprintf("invalid subject token %q: %v", token, err))
		return
	}
	e, err := event.Decode(msg.Data(), meta.Timestamp)
	if err != nil {
		p.park(ev, "invalid event: "+err.Error())
		return
	}
	ev.Event = e
	if e.UserID != userID {
		p.park(ev, fmt.Sprintf("user_id %q does not match the subject token %q (expected token %q)", e.UserID, token, event.Token(e.UserID)))
		return
	}
	if p.maxDeliver > 0 && ev.Deliveries >= p.maxDeliver {
		p.park(ev, "delivered "+strconv.FormatUint(ev.Deliveries, 10)+" times without being committed")
		return
	}
	pid, ok := p.actors[userID]
	if !ok {
		pid = p.engine.Spawn(newUserActor(p.deps, userID), "user",
			actor.WithID(strconv.Itoa(p.n)+"/"+userID),
			actor.WithInboxSize(p.inboxSize),
			actor.WithMiddleware(recoverMiddleware(p.log)))
		p.actors[userID] = pid
		p.metrics.actors.Inc()
	}
	p.engine.Send(pid, ev)
}

// park sends an event that no actor will apply to the DLQ.
func (p *partition) park(ev *EventReceived, reason string) {
	p.metrics.rejected.Inc()
	p.writer.submit(job{kind: jobPark, ev: ev, reason: reason})
}

// recoverMiddleware keeps a panic in a receiver from reaching hollywood, which would
// restart the actor (losing its state) and, past the restart limit, end the process.
func recoverMiddleware(log *slog.Logger) func(actor.ReceiveFunc) actor.ReceiveFunc {
	return func(next actor.ReceiveFunc) actor.ReceiveFunc {
		return func(c *actor.Context) {
			defer func() {
				if r := recover(); r != nil {
					log.Error("actor receiver panicked", "pid", c.PID().String(), "panic", fmt.Sprint(r))
					if u, ok := c.Receiver().(*userActor); ok {
						u.recovered(fmt.Sprint(r))
					}
				}
			}()
			next(c)
		}
	}
}
