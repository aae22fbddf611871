package loyalty

import "time"

// Decision is everything one event changes: the user's new state (Version = the version
// read + 1), the rewards it grants, and the record that it was processed.
type Decision struct {
	EventID   string
	EventType string
	StreamSeq int64
	// OccurredAt is the event's time (UTC).
	OccurredAt time.Time
	User       User
	Rewards    []Reward
	// Ledger holds the points changes, in order; their sum is the change of User.Points.
	Ledger []LedgerEntry
	// Effect, when set, records what the event did for later refunds.
	Effect *EventEffect
	// Refund, when set, counts a refund against an earlier event's effect.
	Refund *RefundApplied
	// TierChange, when set, is recorded in the user's tier history.
	TierChange *TierChange
	// Budget is what the decision takes from each campaign's budget.
	Budget map[string]BudgetDelta
	// Rejected, when not empty, is why the event was refused: it is recorded as processed
	// with that reason and changes nothing but User.LastRejection.
	Rejected string
	// RuleErrors are the campaigns whose rule or points expression failed at run time on
	// this event (no match for them); they count in the campaigns' stats.
	RuleErrors []string
	// Refused are the campaigns that matched but whose rewards were not granted (their
	// pools had no code left); they count in the campaigns' stats.
	Refused []Refusal
}

// RefusedPoolExhausted is the reason of a reward refused because its coupon code pool had
// no code left.
const RefusedPoolExhausted = "pool_exhausted"

// Refusal is a campaign that matched an event without granting its reward.
type Refusal struct {
	CampaignID string
	// Pool is the coupon code pool that had no code left.
	Pool   string
	Reason string
}

// RefundApplied is the part of an earlier event a refund reversed.
type RefundApplied struct {
	EventID string
	Amount  float64
	Points  int64
}

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

// TierChange is a change of a user's tier.
type TierChange struct {
	From, To, Reason string
	OccurredAt       time.Time
}

// BudgetDelta is what one decision takes from (or, negative, gives back to) a campaign's
// budget. MaxRewards and MaxPoints are the campaign's limits (0: none), checked at commit.
type BudgetDelta struct {
	Rewards, Points       int64
	MaxRewards, MaxPoints int64
}

// BudgetUsed is what a campaign has granted.
type BudgetUsed struct {
	Rewards int64 `json:"rewards_used"`
	Points  int64 `json:"points_used"`
}

// PointsExpired is the body of a LOYALTY points_expired notice.
type PointsExpired struct {
	Type         string    `json:"type"` // "points_expired"
	UserID       string    `json:"user_id"`
	Points       int64     `json:"points"`
	ExpiredAt    time.Time `json:"expired_at"`
	EventID      string    `json:"event_id"`
	BalanceAfter int64     `json:"balance_after"`
}

// PointsExpiredOf is the notice of the expiry ledger entry l of user userID.
func PointsExpiredOf(userID string, l *LedgerEntry) PointsExpired {
	return PointsExpired{Type: "points_expired", UserID: userID, Points: -l.Points, ExpiredAt: l.OccurredAt,
		EventID: l.EventID, BalanceAfter: l.BalanceAfter}
}

// TierChanged is the body of a LOYALTY tier_changed notice.
type TierChanged struct {
	Type       string    `json:"type"` // "tier_changed"
	UserID     string    `json:"user_id"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	Reason     string    `json:"reason"`
	EventID    string    `json:"event_id"`
	OccurredAt time.Time `json:"occurred_at"`
}

// TierChangedOf is the notice of the tier change c that the event eventID of user userID
// caused.
func TierChangedOf(userID, eventID string, c *TierChange) TierChanged {
	return TierChanged{Type: "tier_changed", UserID: userID, From: c.From, To: c.To, Reason: c.Reason,
		EventID: eventID, OccurredAt: c.OccurredAt}
}

// CouponRedeemed is the body of a LOYALTY coupon_redeemed notice: a storefront redeemed
// a coupon code issued to the user.
type CouponRedeemed struct {
	Type       string    `json:"type"` // "coupon_redeemed"
	UserID     string    `json:"user_id"`
	Code       string    `json:"code"`
	PoolID     string    `json:"pool_id"`
	RewardID   string    `json:"reward_id"`
	CampaignID string    `json:"campaign_id"`
	OrderID    string    `json:"order_id"`
	RedeemedAt time.Time `json:"redeemed_at"`
}
