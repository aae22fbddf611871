package actors

import (
	"context"
	"sync"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// budgets keeps campaign budgets (limits.total_rewards, limits.total_points) exact across
// every actor of the engine without a database round trip per event: an actor reserves
// a match's reward and points here before it submits the decision, and settles the
// reservation with the commit's outcome (the committer does, as it learns each outcome). Used counts come from Postgres at start and
// after an over-budget commit (another engine granted meanwhile); the commit itself
// checks the stored totals, so no budget is exceeded even with several engines.
// Safe for concurrent use.
type budgets struct {
	mu       sync.Mutex
	used     map[string]loyalty.BudgetUsed
	reserved map[string]loyalty.BudgetUsed
}

func newBudgets() *budgets {
	return &budgets{used: map[string]loyalty.BudgetUsed{}, reserved: map[string]loyalty.BudgetUsed{}}
}

// load replaces the used counts with the stored ones.
func (b *budgets) load(ctx context.Context, store *persistence.Store) error {
	used, err := store.LoadBudgets(ctx)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.used = used
	b.mu.Unlock()
	return nil
}

func limited(c *campaign.Campaign) bool { return c.Limits.TotalRewards > 0 || c.Limits.TotalPoints > 0 }

// reserve takes one reward of points from c's budget, or reports false when the budget
// cannot hold it.
func (b *budgets) reserve(c *campaign.Campaign, points int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, r := b.used[c.ID], b.reserved[c.ID]
	if l := c.Limits.TotalRewards; l > 0 && u.Rewards+r.Rewards+1 > l {
		return false
	}
	if l := c.Limits.TotalPoints; l > 0 && u.Points+r.Points+points > l {
		return false
	}
	r.Rewards++
	r.Points += points
	b.reserved[c.ID] = r
	return true
}

// exhausted reports whether c cannot grant even a reward of zero points.
func (b *budgets) exhausted(c *campaign.Campaign) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, r := b.used[c.ID], b.reserved[c.ID]
	return (c.Limits.TotalRewards > 0 && u.Rewards+r.Rewards >= c.Limits.TotalRewards) ||
		(c.Limits.TotalPoints > 0 && u.Points+r.Points >= c.Limits.TotalPoints)
}

// settle ends reservations: committed ones become used, the others are released.
// Negative deltas (refunds giving points back) only apply when committed.
func (b *budgets) settle(deltas map[string]loyalty.BudgetDelta, committed bool) {
	if len(deltas) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, d := range deltas {
		if d.Rewards > 0 || d.Points > 0 {
			r := b.reserved[id]
			r.Rewards -= max(d.Rewards, 0)
			r.Points -= max(d.Points, 0)
			b.reserved[id] = r
		}
		if committed {
			u := b.used[id]
			u.Rewards += d.Rewards
			u.Points += d.Points
			b.used[id] = u
		}
	}
}
