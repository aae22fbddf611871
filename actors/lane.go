package actors

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/actors/supervisor"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/event"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// lane consumes one durable consumer of EVENTS (a range of partitions) and routes each
// event to its user's actor. It is a supervisor stage: Run consumes until its context
// ends, then drains (every event it handed out is committed and acked, or left for
// redelivery at the drain's deadline) and stops its users' actors. Its goroutine spawns
// actors; the passivation sweep removes idle ones (under mu).
type lane struct {
	name       string
	span       bus.Lane           // the partitions
	consumer   jetstream.Consumer // under mu: replace swaps it
	epochs     persistence.Epochs // of the lane's partitions, as claimed
	engine     *actor.Engine
	deps       *userDeps
	spawned    *atomic.Uint64 // the engine's count of user actors spawned: their ids
	recover    actor.MiddlewareFunc
	log        *slog.Logger
	metrics    *metrics
	maxDeliver uint64
	maxPending int
	inboxSize  int
	maxSkew    time.Duration // how far after storedAt an event may be dated

	mu       sync.Mutex
	iter     jetstream.MessagesContext // Run's iterator, under mu
	floor    uint64                    // the last ack floor the keeper saw, under mu
	floorOf  time.Time                 // the creation time of the stream floor is of, under mu
	actors   map[string]*resident
	inflight sync.WaitGroup
}

// Run consumes the lane's consumer until ctx ends, then drains by supervisor.Draining(ctx)
// and stops the lane's actors. When the consumer disappears (deleted, or with its
// stream) it waits for the lane keeper to create it again (see replace) and goes on
// with the new one; its users' states stay as they are. An error means the consumer
// could not be read (the supervisor restarts the lane).
func (p *lane) Run(ctx context.Context) error {
	for {
		p.mu.Lock()
		c := p.consumer
		p.mu.Unlock()
		err := p.consume(ctx, c)
		if ctx.Err() != nil {
			return p.drain(supervisor.Draining(ctx))
		}
		if err != nil {
			return err
		}
		for !p.replaced(c) { // the keeper looks every keepEvery
			if !supervisor.Sleep(ctx, 50*time.Millisecond) {
				return p.drain(supervisor.Draining(ctx))
			}
		}
	}
}

// A lane's pull request lives pullExpiry, and the server sends a heartbeat on it every
// pullHeartbeat while it has nothing to deliver. A pull the server lost (its consumer's
// leader moved to another node, a route dropped) is noticed by two missing heartbeats and
// made again: nats.go's defaults (30 s, 15 s) left a lane with a lost pull idle for 30 s
// with events waiting; these bound that to about 2 s.
const (
	pullExpiry    = 5 * time.Second
	pullHeartbeat = time.Second
)

// consume hands c's messages to the users' actors until ctx ends or c's message stream
// ends: nil then (the consumer went away, or replace ended it). An error means c could
// not be read at all.
func (p *lane) consume(ctx context.Context, c jetstream.Consumer) error {
	p.mu.Lock()
	iter, err := c.Messages(jetstream.PullMaxMessages(p.maxPending),
		jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat))
	p.iter = iter
	p.mu.Unlock()
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("consume %s: %w", p.name, err)
	}
	stop := context.AfterFunc(ctx, iter.Stop)
	defer stop()
	defer iter.Stop()
	for {
		msg, err := iter.Next()
		switch {
		case errors.Is(err, jetstream.ErrMsgIteratorClosed),
			errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
			return nil
		case err != nil:
			p.log.Warn("fetch from consumer", "consumer", p.name, "err", err)
			if !supervisor.Sleep(ctx, 100*time.Millisecond) { // the iterator reconnects by itself
				return nil
			}
		default:
			p.handle(msg)
		}
	}
}

// replaced reports whether the lane's consumer is no longer c.
func (p *lane) replaced(c jetstream.Consumer) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.consumer != c
}

// replace makes c the lane's consumer (the old one disappeared) and ends Run's iterator,
// so the supervisor starts Run again on c.
func (p *lane) replace(c jetstream.Consumer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.consumer = c
	if p.iter != nil {
		p.iter.Stop()
	}
}

// sawFloor records the ack floor of the lane's consumer on the stream created at
// created.
func (p *lane) sawFloor(created time.Time, floor uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.floor, p.floorOf = floor, created
}

// floorIn is the last ack floor seen on the stream created at created; 0 when it was of
// another stream (EVENTS was created again: its sequences start afresh).
func (p *lane) floorIn(created time.Time) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.floorOf.Equal(created) {
		return 0
	}
	return p.floor
}

// drain waits until every event the lane handed out is finished, or ctx ends (those
// left are delivered again to the next owner), then stops every actor of the lane and
// waits for them, and lets go of the users' compact states.
func (p *lane) drain(ctx context.Context) error {
	drained := make(chan struct{})
	go func() { p.inflight.Wait(); close(drained) }()
	var err error
	select {
	case <-drained:
	case <-ctx.Done():
		err = fmt.Errorf("lane %s: in-flight events left for redelivery: %w", p.name, ctx.Err())
	}
	p.mu.Lock()
	var stopping []context.Context
	for id, r := range p.actors {
		if r.pid != nil {
			stopping = append(stopping, p.engine.PoisonCtx(ctx, r.pid))
			p.metrics.actors.Dec()
		}
		if r.compact != nil {
			p.metrics.compact.Dec()
		}
		delete(p.actors, id)
		p.metrics.users.Dec()
	}
	p.mu.Unlock()
	for _, done := range stopping {
		<-done.Done() // stopped, or ctx ended (hollywood derives it from ctx)
	}
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("lane %s: actors not stopped in time: %w", p.name, ctx.Err())
	}
	return err
}

func (p *lane) handle(msg jetstream.Msg) {
	stored, subjectOK := bus.ParseStoredSubject(msg.Subject())
	ev := &EventReceived{Msg: msg, Partition: stored.Partition, Epoch: p.epochs[stored.Partition], Subject: msg.Subject(), done: p.inflight.Done}
	p.inflight.Add(1)
	if h := msg.Headers(); h != nil {
		ev.CorrelationID = h.Get(bus.HeaderCorrelationID)
	}
	meta, err := msg.Metadata()
	if err != nil {
		p.log.Error("message without JetStream metadata; terminated", "consumer", p.name, "err", err)
		_ = msg.Term()
		ev.finish()
		return
	}
	ev.Seq, ev.Deliveries = meta.Sequence.Stream, meta.NumDelivered
	ev.stages.stored, ev.stages.received = meta.Timestamp, time.Now()
	p.metrics.received.Inc()
	if reason := p.admit(ev, stored, subjectOK, meta.Timestamp); reason != "" {
		p.park(ev, reason)
		return
	}
	userID := ev.Event.UserID
	if p.maxDeliver > 0 && ev.Deliveries >= p.maxDeliver {
		p.park(ev, "delivered "+strconv.FormatUint(ev.Deliveries, 10)+" times without being committed")
		return
	}
	p.mu.Lock()
	r, ok := p.actors[userID]
	if !ok {
		r = &resident{}
		p.actors[userID] = r
		p.metrics.users.Inc()
	}
	if r.pid == nil {
		// No actor: spawn one, from the compact state when the user has one (the actor
		// decodes it).
		if r.compact != nil {
			r.state.Store(&heldState{packed: r.compact})
			r.compact = nil
			p.metrics.compact.Dec()
		}
		p.spawn(userID, r)
		p.metrics.actors.Inc()
	}
	r.inflight.Add(1)
	r.touch()
	p.mu.Unlock()
	ev.done = func() {
		r.touch()
		r.inflight.Add(-1)
		p.inflight.Done()
	}
	p.engine.Send(r.pid, ev)
}

// spawn starts the actor of userID, whose entry is r, from the state r holds. Under p.mu.
func (p *lane) spawn(userID string, r *resident) {
	// A fresh id per incarnation, unique in the engine: hollywood ignores a spawn whose id
	// is still registered (a passivated actor may not be gone yet), and would drop the
	// event. A short one: hollywood keeps it twice per actor (the user id is in the
	// receiver, for the logs).
	r.pid = p.engine.Spawn(newUserActor(p.deps, userID, r), "user",
		actor.WithID(strconv.FormatUint(p.spawned.Add(1), 36)),
		actor.WithInboxSize(p.inboxSize), actor.WithMiddleware(p.recover))
}

// admit decodes the event into ev and says why it must be parked instead of applied, or
// "": the subject must parse, its token match the event's user_id, the event decode and
// validate and be dated at most maxSkew after storedAt, and the subject's kind match the type (the engine's own types only on ops.*,
// which ingest identities cannot publish to; customer types only on events.*).
func (p *lane) admit(ev *EventReceived, stored bus.StoredSubject, subjectOK bool, storedAt time.Time) string {
	if !subjectOK {
		return fmt.Sprintf("invalid stored subject %q", ev.Subject)
	}
	userID, err := event.ParseToken(stored.Token)
	if err != nil {
		return fmt.Sprintf("invalid subject token %q: %v", stored.Token, err)
	}
	e, err := event.Decode(ev.Msg.Data(), storedAt)
	if err != nil {
		return "invalid event: " + err.Error()
	}
	ev.Event = e
	if err := e.CheckNotFuture(storedAt, p.maxSkew); err != nil {
		return "invalid event: " + err.Error()
	}
	switch {
	case e.UserID != userID:
		return fmt.Sprintf("user_id %q does not match the subject token %q (expected token %q)", e.UserID, stored.Token, event.Token(e.UserID))
	case stored.Kind == bus.KindEvents && event.IsReserved(e.Type):
		return fmt.Sprintf("invalid event: type: %q is reserved for the engine (types starting with %s travel on %s.*, which only the engine publishes)",
			e.Type, event.ReservedPrefix, bus.KindOps)
	case stored.Kind == bus.KindOps && !event.IsReserved(e.Type):
		return fmt.Sprintf("invalid event: type: %q is not one of the engine's own types, which alone travel on %s.*", e.Type, bus.KindOps)
	}
	return ""
}

// resident is a user held in memory: by its actor (pid set), or, once the actor was
// passivated for being idle, by its committed state in compact form. inflight counts the
// user's events not yet finished (acked or left for redelivery): a user with none has
// nothing queued, so its actor may be stopped.
type resident struct {
	pid      *actor.PID // nil while only the compact state is held (under lane.mu)
	compact  []byte     // the committed state while pid is nil (under lane.mu)
	inflight atomic.Int32
	last     atomic.Int64 // unix nanos of the last activity
	// state is the user's last committed state while its actor runs, published by the
	// committer when it commits (before the event is finished), by the actor when it loads
	// or decodes it, and packed by the actor when it has nothing to do (see
	// userActor.pack); nil when unknown.
	state atomic.Pointer[heldState]
}

func (r *resident) touch() { r.last.Store(time.Now().UnixNano()) }

// passivate stops the actors idle for longer than idle, keeping their users' committed
// state in compact form. Then, while more than limit users are held, it lets go of the
// least recently used idle ones, compact states before actors: the next event of such a
// user reloads it from Postgres. A user with events in flight is never touched, so no
// queued message is lost. It returns how many actors it stopped.
func (p *lane) passivate(idle time.Duration, limit int) int {
	now := time.Now().UnixNano()
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	if idle > 0 {
		for _, r := range p.actors {
			if r.pid != nil && r.inflight.Load() == 0 && now-r.last.Load() >= int64(idle) {
				p.stopActor(r, true)
				n++
			}
		}
	}
	if limit <= 0 || len(p.actors) <= limit {
		return n
	}
	type cand struct {
		id    string
		r     *resident
		actor bool
		last  int64
	}
	var idleOnes []cand
	for id, r := range p.actors {
		if r.inflight.Load() == 0 {
			idleOnes = append(idleOnes, cand{id, r, r.pid != nil, r.last.Load()})
		}
	}
	slices.SortFunc(idleOnes, func(a, b cand) int {
		if a.actor != b.actor {
			if a.actor {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.last, b.last)
	})
	for _, c := range idleOnes {
		if len(p.actors) <= limit*9/10 {
			break
		}
		if c.actor {
			p.stopActor(c.r, false)
			n++
		} else {
			c.r.compact = nil
			p.metrics.compact.Dec()
		}
		delete(p.actors, c.id)
		p.metrics.users.Dec()
	}
	return n
}

// stopActor stops r's actor; with keep, the user's committed state stays in compact form.
// Under p.mu, with nothing in flight for the user.
func (p *lane) stopActor(r *resident, keep bool) {
	p.engine.Poison(r.pid)
	r.pid = nil
	h := r.state.Swap(nil)
	if !keep || h == nil {
		return
	}
	r.compact = h.packed
	if r.compact == nil {
		r.compact = loyalty.EncodeCompact(h.user)
	}
	p.metrics.compact.Inc()
}

// park sends an event that no actor will apply to the DLQ.
func (p *lane) park(ev *EventReceived, reason string) {
	p.metrics.rejected.Inc()
	p.deps.publisher.park(parkJob{ev: ev, reason: reason})
}

// recoverMiddleware keeps a panic in a receiver from reaching hollywood, which would
// restart the actor (losing its state) and, past the restart limit, end the process.
func recoverMiddleware(log *slog.Logger) func(actor.ReceiveFunc) actor.ReceiveFunc {
	return func(next actor.ReceiveFunc) actor.ReceiveFunc {
		return func(c *actor.Context) {
			defer func() {
				if r := recover(); r != nil {
					u, ok := c.Receiver().(*userActor)
					userID := ""
					if ok {
						userID = u.id
					}
					log.Error("actor receiver panicked", "pid", c.PID().String(), "user_id", userID, "panic", fmt.Sprint(r))
					if ok {
						u.recovered(fmt.Sprint(r))
					}
				}
			}()
			next(c)
		}
	}
}
