package persistence

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
)

const userColumns = `user_id, tier, points, lifetime_points, purchase_count, total_spent,
	first_seen, last_purchase_at, event_counts, reward_counts, reward_days, history, lots, next_expiry, last_rejection, tier_reviewed, last_seq, version, updated_at`

func scanUser(row pgx.Row) (loyalty.User, error) {
	var u loyalty.User
	err := row.Scan(&u.UserID, &u.Tier, &u.Points, &u.LifetimePoints, &u.PurchaseCount,
		&u.TotalSpent, &u.FirstSeen, &u.LastPurchaseAt, &u.EventCounts, &u.RewardCounts, &u.RewardDays,
		&u.History, &u.Lots, &u.NextExpiry, &u.LastRejection, &u.TierReviewed,
		&u.LastSeq, &u.Version, &u.UpdatedAt)
	if err != nil {
		return loyalty.User{}, translate(err)
	}
	if len(u.RewardDays) == 0 {
		u.RewardDays = nil // most users have none: keep no empty map in memory
	}
	return u, nil
}

// GetUser returns a user's loyalty state, or ErrNotFound for a user never seen.
func (s *Store) GetUser(ctx context.Context, userID string) (loyalty.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE user_id = $1`, userID))
	if err != nil {
		return loyalty.User{}, fmt.Errorf("get user: %w", err)
	}
	return u, nil
}

// ListRewards returns up to limit rewards of a user, oldest first, starting after the
// cursor afterSeq (0 for the first page). The next cursor is the last reward's Seq.
func (s *Store) ListRewards(ctx context.Context, userID string, afterSeq int64, limit int) ([]loyalty.Reward, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, id, user_id, campaign_id, campaign_version, event_id,
		type, points, payload, occurred_at, created_at
		FROM rewards WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, userID, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("list rewards: %w", err)
	}
	rewards, err := pgx.CollectRows(rows, scanReward)
	if err != nil {
		return nil, fmt.Errorf("list rewards: %w", err)
	}
	return rewards, nil
}

func scanReward(r pgx.CollectableRow) (loyalty.Reward, error) {
	var rw loyalty.Reward
	err := r.Scan(&rw.Seq, &rw.ID, &rw.UserID, &rw.CampaignID, &rw.CampaignVersion, &rw.EventID,
		&rw.Type, &rw.Points, &rw.Payload, &rw.OccurredAt, &rw.CreatedAt)
	return rw, err
}

// GetEventEffect returns what an event did (the latest application of an event applied
// again after the dedup horizon), or ErrNotFound: never applied with an amount or points,
// or applied before the refund horizon (its day's partition is dropped).
func (s *Store) GetEventEffect(ctx context.Context, eventID string) (loyalty.EventEffect, error) {
	var e loyalty.EventEffect
	err := s.pool.QueryRow(ctx, `SELECT event_id, user_id, event_type, amount, points, campaign_points,
		refunded_amount, refunded_points, occurred_at FROM event_effects WHERE event_id = $1
		ORDER BY day DESC LIMIT 1`, eventID).
		Scan(&e.EventID, &e.UserID, &e.EventType, &e.Amount, &e.Points, &e.CampaignPoints,
			&e.RefundedAmount, &e.RefundedPoints, &e.OccurredAt)
	if err != nil {
		return loyalty.EventEffect{}, fmt.Errorf("get event effect: %w", translate(err))
	}
	return e, nil
}

// ListLedger returns up to limit ledger entries of a user after the cursor afterID,
// oldest first.
func (s *Store) ListLedger(ctx context.Context, userID string, afterID int64, limit int) ([]loyalty.LedgerEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, user_id, kind, points, balance_after, event_id,
		coalesce(reward_id, ''), coalesce(campaign_id, ''), coalesce(campaign_version, 0),
		coalesce(actor, ''), coalesce(reason, ''), expires_at, occurred_at, created_at
		FROM points_ledger WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3`, userID, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list ledger: %w", err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (loyalty.LedgerEntry, error) {
		var e loyalty.LedgerEntry
		err := r.Scan(&e.ID, &e.UserID, &e.Kind, &e.Points, &e.BalanceAfter, &e.EventID, &e.RewardID,
			&e.CampaignID, &e.CampaignVersion, &e.Actor, &e.Reason, &e.ExpiresAt, &e.OccurredAt, &e.CreatedAt)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("list ledger: %w", err)
	}
	return entries, nil
}

// LedgerSum returns the sum of a user's ledger entries, which always equals the stored
// balance.
func (s *Store) LedgerSum(ctx context.Context, userID string) (int64, error) {
	var sum int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(points), 0) FROM points_ledger WHERE user_id = $1`, userID).Scan(&sum)
	if err != nil {
		return 0, fmt.Errorf("ledger sum: %w", err)
	}
	return sum, nil
}

// DueExpiry is a user with points expiring at NextExpiry.
type DueExpiry struct {
	UserID     string
	NextExpiry time.Time
}

// DueExpiries returns up to limit users whose next points expiry is at or before now,
// soonest first.
func (s *Store) DueExpiries(ctx context.Context, now time.Time, limit int) ([]DueExpiry, error) {
	rows, err := s.pool.Query(ctx, `SELECT user_id, next_expiry FROM users
		WHERE next_expiry IS NOT NULL AND next_expiry <= $1 ORDER BY next_expiry LIMIT $2`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("due expiries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DueExpiry, error) {
		var d DueExpiry
		err := r.Scan(&d.UserID, &d.NextExpiry)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("due expiries: %w", err)
	}
	return out, nil
}

// MaxAppliedSeq is the highest EVENTS stream sequence applied for any user (0 when none):
// an EVENTS stream created again after it was lost must start above it.
func (s *Store) MaxAppliedSeq(ctx context.Context) (uint64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT COALESCE(max(last_seq), 0) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("highest applied stream sequence: %w", err)
	}
	return uint64(max(n, 0)), nil
}
