package actors

import (
	"context"

	"github.com/anthdm/hollywood/actor"

	"github.com/campaignmanager/campaignmanager/persistence"
)

type loadRequest struct {
	userID string
	pid    *actor.PID
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

func (l *loader) load(userID string, pid *actor.PID) { l.in <- loadRequest{userID, pid} }

func (l *loader) run(ctx context.Context) {
	batch := make([]loadRequest, 0, l.maxBatch)
	ids := make([]string, 0, l.maxBatch)
	for {
		batch, ids = batch[:0], ids[:0]
		select {
		case <-ctx.Done():
			return
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
		for _, r := range batch {
			ids = append(ids, r.userID)
		}
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
}
