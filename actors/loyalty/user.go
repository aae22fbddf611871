package loyalty

import "time"

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
	History []DayStat `json:"history"`
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

// DayCount is a count on one day of a campaign's time zone.
type DayCount struct {
	Day   string `json:"day"` // YYYY-MM-DD
	Count int64  `json:"count"`
}

// NewUser is the state of a user never seen before.
func NewUser(id string) User {
	return User{UserID: id, EventCounts: map[string]int64{}, RewardCounts: map[string]int64{}}
}

// Bounds of points: every sum the engine keeps stays far inside an int64, so nothing
// wraps. An amount is at most event.MaxAmount.
const (
	// MaxPoints is the most points one reward grants or one adjustment moves.
	MaxPoints = 1_000_000_000_000
	// MaxBalance is the highest balance, and lifetime points, a user may reach: an event
	// that would take either past it is refused with the reason.
	MaxBalance = 1_000_000_000_000_000
)

// HistoryDays is how far back the daily history reaches. Windows longer than this see
// only what is kept.
const HistoryDays = 400

// DayStat is a user's activity on one UTC day: the unit of the rolling history that
// rules query with user.spent_within, user.count_within and user.days_active_within.
// Only days with activity are kept, oldest first.
type DayStat struct {
	// Day is the day number: days since 1970-01-01 (UTC).
	Day int32 `json:"d"`
	// Spent is the purchase amount of the day, net of refunds.
	Spent float64 `json:"s,omitempty"`
	// Counts maps an event type to how many such events the day had.
	Counts map[string]int64 `json:"c,omitempty"`
}

// DayOf is the day number of t.
func DayOf(t time.Time) int32 { return int32(t.UTC().Unix() / 86400) }
