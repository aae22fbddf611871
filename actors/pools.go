package actors

import (
	"context"
	"sync"
	"time"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// pools keeps the engine's view of the coupon code pools, the way budgets does for
// budgets: how many codes each has left (loaded from Postgres at start, every
// refresh and after a PoolChanged commit, less what committed since) and how many the
// engine's decisions in flight have reserved. An actor reserves a code for a reward from
// a pool before it submits the decision, and refuses the reward (the campaign does not
// apply; the refusal is committed with the event) when the pool has none. The view is a
// hint that saves round trips: the commit takes the codes and checks every refusal
// against Postgres (see persistence.CommitBatch), so no code is issued twice and no
// reward refused while its pool has codes, with any number of engines. A pool the view
// does not know yet (created since the last load) is not refused here. Safe for
// concurrent use.
type pools struct {
	mu       sync.Mutex
	left     map[string]int64
	reserved map[string]int64
	metrics  *metrics
}

func newPools(m *metrics) *pools {
	return &pools{left: map[string]int64{}, reserved: map[string]int64{}, metrics: m}
}

// load replaces the counts left with the stored ones and sets the pool gauges (a
// deleted pool's go).
func (p *pools) load(ctx context.Context, store *persistence.Store) error {
	levels, err := store.LoadPoolLevels(ctx)
	if err != nil {
		return err
	}
	left := make(map[string]int64, len(levels))
	for id, l := range levels {
		left[id] = l.Left
		p.metrics.poolLeft.WithLabelValues(id).Set(float64(l.Left))
		p.metrics.poolLowWater.WithLabelValues(id).Set(float64(l.LowWater))
		p.metrics.poolCampaigns.WithLabelValues(id).Set(float64(l.ActiveCampaigns))
	}
	p.mu.Lock()
	gone := p.left
	p.left = left
	p.mu.Unlock()
	for id := range gone {
		if _, ok := left[id]; !ok {
			p.metrics.poolLeft.DeleteLabelValues(id)
			p.metrics.poolLowWater.DeleteLabelValues(id)
			p.metrics.poolCampaigns.DeleteLabelValues(id)
		}
	}
	return nil
}

// reserve takes one code of pool for a decision about to be submitted, or reports false
// when the pool has none left (known and fully reserved).
func (p *pools) reserve(pool string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	left, known := p.left[pool]
	if known && p.reserved[pool] >= left {
		return false
	}
	p.reserved[pool]++
	return true
}

// release gives back reservations that no decision will use (one per entry).
func (p *pools) release(taken []string) {
	if len(taken) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range taken {
		p.reserved[id] = max(p.reserved[id]-1, 0)
	}
}

// settle ends the reservations of rewards (those from a pool): committed ones took
// their codes, the others are given back.
func (p *pools) settle(rewards []loyalty.Reward, committed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k := range rewards {
		id := rewards[k].Pool
		if id == "" {
			continue
		}
		p.reserved[id] = max(p.reserved[id]-1, 0)
		if left, known := p.left[id]; committed && known {
			p.left[id] = max(left-1, 0)
		}
	}
}

// refresh reloads the pools every interval until ctx ends, so codes imported meanwhile
// (by any process) reach the engine and the gauges stay current.
func (p *pools) refresh(store *persistence.Store, every time.Duration, onErr func(error)) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := p.load(lctx, store); err != nil && ctx.Err() == nil {
				onErr(err)
			}
			cancel()
		}
	}
}
