package persistence

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/campaignmanager/campaignmanager/cel"
)

// User is a customer's loyalty state as stored.
type User struct {
	UserID         string           `json:"user_id"`
	Tier           string           `json:"tier"`
	Points         int64            `json:"points"`
	LifetimePoints int64            `json:"lifetime_points"`
	PurchaseCount  int64            `json:"purchase_count"`
	TotalSpent     float64          `json:"total_spent"`
	FirstSeen      time.Time        `json:"first_seen"`
	LastPurchaseAt *time.Time       `json:"last_purchase_at,omitempty"`
	EventCounts    map[string]int64 `json:"event_counts"`
	RewardCounts   map[string]int64 `json:"reward_counts"`
	// RewardDays counts rewards per campaign on one day of the campaign's time zone (for
	// limits.per_user_per_day).
	RewardDays map[string]DayCount `json:"reward_days,omitempty"`
	// History is the daily activity (only active days, oldest first, 400 days at most).
	History []cel.DayStat `json:"history"`
	// Lots are the unspent earned points, soonest-expiring first (no expiry last).
	Lots []Lot `json:"lots"`
	// NextExpiry is when the first lot expires; nil when none expires.
	NextExpiry *time.Time `json:"next_expiry,omitempty"`
	// LastRejection is the last event of this user that was refused (e.g. an over-redeem).
	LastRejection *Rejection `json:"last_rejection,omitempty"`
	// TierReviewed is the month (YYYY-MM) the tier was last set or reviewed.
	TierReviewed string `json:"tier_reviewed,omitempty"`
	// LastSeq is the EVENTS stream sequence of the last event applied for this user.
	LastSeq int64 `json:"-"`
	// Version moves by one with every commit; it fences a stale owner.
	Version   int64     `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Lot is a quantity of unspent earned points with its expiry.
type Lot struct {
	Points    int64      `json:"points"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// Rejection says why an event of the user was refused.
type Rejection struct {
	EventID string    `json:"event_id"`
	Type    string    `json:"type"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// LedgerEntry is one change of a user's points.
type LedgerEntry struct {
	ID              int64      `json:"id"`
	UserID          string     `json:"user_id"`
	Kind            string     `json:"kind"` // earn, redeem, expire, reverse, adjust
	Points          int64      `json:"points"`
	BalanceAfter    int64      `json:"balance_after"`
	EventID         string     `json:"event_id"`
	RewardID        string     `json:"reward_id,omitempty"`
	CampaignID      string     `json:"campaign_id,omitempty"`
	CampaignVersion int64      `json:"campaign_version,omitempty"`
	Actor           string     `json:"actor,omitempty"`
	Reason          string     `json:"reason,omitempty"`
	ExpiresAt       *time.Time `json:"expires_at,omitempty"`
	OccurredAt      time.Time  `json:"occurred_at"`
	CreatedAt       time.Time  `json:"created_at"`
}

// Ledger kinds.
const (
	LedgerEarn    = "earn"
	LedgerRedeem  = "redeem"
	LedgerExpire  = "expire"
	LedgerReverse = "reverse"
	LedgerAdjust  = "adjust"
)

// EventEffect is what an event with an amount or points did, kept so a refund can reverse
// it proportionally and only once.
type EventEffect struct {
	EventID        string           `json:"event_id"`
	UserID         string           `json:"user_id"`
	EventType      string           `json:"event_type"`
	Amount         float64          `json:"amount"`
	Points         int64            `json:"points"`
	CampaignPoints map[string]int64 `json:"campaign_points,omitempty"`
	RefundedAmount float64          `json:"refunded_amount"`
	RefundedPoints int64            `json:"refunded_points"`
	OccurredAt     time.Time        `json:"occurred_at"`
}

// DayCount is a count on one day of a campaign's time zone.
type DayCount = cel.DayCount

// Reward is one granted reward.
type Reward struct {
	Seq             int64          `json:"-"`
	ID              string         `json:"id"`
	UserID          string         `json:"user_id"`
	CampaignID      string         `json:"campaign_id"`
	CampaignVersion int64          `json:"campaign_version"`
	EventID         string         `json:"event_id"`
	Type            string         `json:"type"`
	Points          int64          `json:"points"`
	Payload         map[string]any `json:"payload,omitempty"`
	OccurredAt      time.Time      `json:"occurred_at"`
	CreatedAt       time.Time      `json:"created_at"`
}

const userColumns = `user_id, tier, points, lifetime_points, purchase_count, total_spent,
	first_seen, last_purchase_at, event_counts, reward_counts, reward_days, history, lots, next_expiry, last_rejection, tier_reviewed, last_seq, version, updated_at`

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.UserID, &u.Tier, &u.Points, &u.LifetimePoints, &u.PurchaseCount,
		&u.TotalSpent, &u.FirstSeen, &u.LastPurchaseAt, &u.EventCounts, &u.RewardCounts, &u.RewardDays,
		&u.History, &u.Lots, &u.NextExpiry, &u.LastRejection, &u.TierReviewed,
		&u.LastSeq, &u.Version, &u.UpdatedAt)
	if err != nil {
		return User{}, translate(err)
	}
	if len(u.RewardDays) == 0 {
		u.RewardDays = nil // most users have none: keep no empty map in memory
	}
	return u, nil
}

// GetUser returns a user's loyalty state, or ErrNotFound for a user never seen.
func (s *Store) GetUser(ctx context.Context, userID string) (User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE user_id = $1`, userID))
	if err != nil {
		return User{}, fmt.Errorf("get user: %w", err)
	}
	return u, nil
}

// ListRewards returns up to limit rewards of a user, oldest first, starting after the
// cursor afterSeq (0 for the first page). The next cursor is the last reward's Seq.
func (s *Store) ListRewards(ctx context.Context, userID string, afterSeq int64, limit int) ([]Reward, error) {
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

func scanReward(r pgx.CollectableRow) (Reward, error) {
	var rw Reward
	err := r.Scan(&rw.Seq, &rw.ID, &rw.UserID, &rw.CampaignID, &rw.CampaignVersion, &rw.EventID,
		&rw.Type, &rw.Points, &rw.Payload, &rw.OccurredAt, &rw.CreatedAt)
	return rw, err
}

// GetEventEffect returns what an event did, or ErrNotFound.
func (s *Store) GetEventEffect(ctx context.Context, eventID string) (EventEffect, error) {
	var e EventEffect
	err := s.pool.QueryRow(ctx, `SELECT event_id, user_id, event_type, amount, points, campaign_points,
		refunded_amount, refunded_points, occurred_at FROM event_effects WHERE event_id = $1`, eventID).
		Scan(&e.EventID, &e.UserID, &e.EventType, &e.Amount, &e.Points, &e.CampaignPoints,
			&e.RefundedAmount, &e.RefundedPoints, &e.OccurredAt)
	if err != nil {
		return EventEffect{}, fmt.Errorf("get event effect: %w", translate(err))
	}
	return e, nil
}

// ListLedger returns up to limit ledger entries of a user after the cursor afterID,
// oldest first.
func (s *Store) ListLedger(ctx context.Context, userID string, afterID int64, limit int) ([]LedgerEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, user_id, kind, points, balance_after, event_id,
		coalesce(reward_id, ''), coalesce(campaign_id, ''), coalesce(campaign_version, 0),
		coalesce(actor, ''), coalesce(reason, ''), expires_at, occurred_at, created_at
		FROM points_ledger WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3`, userID, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list ledger: %w", err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (LedgerEntry, error) {
		var e LedgerEntry
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
