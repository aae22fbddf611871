package actors

import (
	"context"
	"errors"

	"github.com/anthdm/hollywood/actor"

	"github.com/campaignmanager/campaignmanager/persistence"
)

// loadRequest asks for a user's state, or, with effectOf set, for the effect of the event
// effectOf (named by the refund eventID).
type loadRequest struct {
	userID   string
	eventID  string
	effectOf string
	pid      *actor.PID
}

// loader batches the state loads of actors that start, one query per batch.
type loader struct {
	store    *persistence.Store
	engine   *actor.Engine
	maxBatch int
	in       chan loadRequest
}

func newLoader(store *persistence.Store, engine *actor.Engine, maxBatch, queue int) *loader {
	return &loader{store: store, engine: engine, maxBatch: maxBatch, in: make(chan loadRequest, queue)}
}

// load asks for userID's stored state; the answer is a UserLoaded to pid.
func (l *loader) load(userID string, pid *actor.PID) { l.in <- loadRequest{userID: userID, pid: pid} }

// loadEffect asks for the effect of the event original, which the refund eventID names;
// the answer is an EffectLoaded to pid.
func (l *loader) loadEffect(eventID, original string, pid *actor.PID) {
	l.in <- loadRequest{eventID: eventID, effectOf: original, pid: pid}
}

// Run answers load requests, a batch per query, until ctx ends.
func (l *loader) Run(ctx context.Context) error {
	batch := make([]loadRequest, 0, l.maxBatch)
	ids := make([]string, 0, l.maxBatch)
	for {
		batch, ids = batch[:0], ids[:0]
		select {
		case <-ctx.Done():
			return nil
		case r := <-l.in:
			batch = append(batch, r)
		}
	fill:
		for len(batch) < l.maxBatch {
			select {
			case r := <-l.in:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		users := batch[:0:0]
		for _, r := range batch {
			if r.effectOf != "" {
				l.effect(ctx, r)
				continue
			}
			users = append(users, r)
			ids = append(ids, r.userID)
		}
		if len(users) == 0 {
			continue
		}
		l.users(ctx, users, ids)
	}
}

// users answers a batch of state loads with one query.
func (l *loader) users(ctx context.Context, batch []loadRequest, ids []string) {
	users, err := l.store.LoadUsers(ctx, ids)
	for _, r := range batch {
		if err != nil {
			l.engine.Send(r.pid, UserLoaded{Err: err})
			continue
		}
		u, ok := users[r.userID]
		l.engine.Send(r.pid, UserLoaded{User: u, Found: ok})
	}
}

// effect answers one refund's request (refunds are rare: one query each).
func (l *loader) effect(ctx context.Context, r loadRequest) {
	e, err := l.store.GetEventEffect(ctx, r.effectOf)
	switch {
	case err == nil:
		l.engine.Send(r.pid, EffectLoaded{EventID: r.eventID, Effect: &e})
	case errors.Is(err, persistence.ErrNotFound):
		l.engine.Send(r.pid, EffectLoaded{EventID: r.eventID})
	default:
		l.engine.Send(r.pid, EffectLoaded{EventID: r.eventID, Err: err})
	}
}
