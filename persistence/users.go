package persistence

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
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
	// RewardDays counts rewards per campaign on one UTC day (for per-day limits).
	RewardDays map[string]DayCount `json:"reward_days,omitempty"`
	// LastSeq is the EVENTS stream sequence of the last event applied for this user.
	LastSeq int64 `json:"-"`
	// Version moves by one with every commit; it fences a stale owner.
	Version   int64     `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

// DayCount is a count on one day (YYYY-MM-DD).
type DayCount struct {
	Day   string `json:"day"`
	Count int64  `json:"count"`
}

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
	first_seen, last_purchase_at, event_counts, reward_counts, reward_days, last_seq, version, updated_at`

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.UserID, &u.Tier, &u.Points, &u.LifetimePoints, &u.PurchaseCount,
		&u.TotalSpent, &u.FirstSeen, &u.LastPurchaseAt, &u.EventCounts, &u.RewardCounts, &u.RewardDays,
		&u.LastSeq, &u.Version, &u.UpdatedAt)
	if err != nil {
		return User{}, translate(err)
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
