package campaign

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Campaign statuses.
const (
	StatusDraft    = "draft"
	StatusActive   = "active"
	StatusPaused   = "paused"
	StatusArchived = "archived"
)

// Reward types.
const (
	RewardPoints       = "points"
	RewardCoupon       = "coupon"
	RewardFreeShipping = "free_shipping"
	RewardNotification = "notification"
)

// Campaign is a marketing campaign as stored, published in the campaigns KV bucket and
// compiled into a cel.RuleSet.
type Campaign struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	Rule        string     `json:"rule"`
	Reward      Reward     `json:"reward"`
	Status      string     `json:"status"`
	StartsAt    *time.Time `json:"starts_at,omitempty"`
	EndsAt      *time.Time `json:"ends_at,omitempty"`
	Priority    int        `json:"priority"`
	Exclusive   bool       `json:"exclusive"`
	Limits      Limits     `json:"limits"`
	// TimeZone is the IANA zone whose days limits.per_user_per_day counts; empty: UTC.
	TimeZone  string    `json:"time_zone,omitempty"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Reward is what a matching campaign grants.
type Reward struct {
	Type string `json:"type"`
	// Points is an integer CEL expression, for points rewards.
	Points PointsExpr `json:"points,omitempty"`
	// ExpiresIn, for points rewards, is how long granted points stay valid (a Go duration
	// such as 8760h); empty means they never expire.
	ExpiresIn string `json:"expires_in,omitempty"`
	// Data is free-form payload passed to downstream senders (coupon template, message).
	Data map[string]any `json:"data,omitempty"`
	// Pool, for coupon and free_shipping rewards, is the coupon code pool the reward
	// takes one code from, assigned in the reward's own commit; a reward whose pool has
	// no code left is not granted. Empty: no pool (a coupon then gets a deterministic
	// code, a free_shipping reward none).
	Pool string `json:"pool,omitempty"`
}

// TakesCode reports whether the reward takes a code from a pool.
func (r *Reward) TakesCode() bool {
	return r.Pool != "" && (r.Type == RewardCoupon || r.Type == RewardFreeShipping)
}

// Limits caps how often a campaign grants. Zero means no limit.
type Limits struct {
	PerUser       int64 `json:"per_user,omitempty"`
	PerUserPerDay int64 `json:"per_user_per_day,omitempty"`
	TotalRewards  int64 `json:"total_rewards,omitempty"`
	TotalPoints   int64 `json:"total_points,omitempty"`
}

// PointsExpr is the CEL source of a points expression. In JSON it is a string, or an
// integer accepted as a constant.
type PointsExpr string

// UnmarshalJSON accepts a string or a JSON integer.
func (p *PointsExpr) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*p = PointsExpr(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("points must be a string holding an integer CEL expression or an integer")
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil {
		return fmt.Errorf("points must be an integer, got %s", n)
	}
	*p = PointsExpr(strconv.FormatInt(i, 10))
	return nil
}

var zones sync.Map // name -> *time.Location

// Location is the campaign's time zone (UTC when unset or unknown; Validate refuses
// unknown zones).
func (c *Campaign) Location() *time.Location {
	if c.TimeZone == "" {
		return time.UTC
	}
	if l, ok := zones.Load(c.TimeZone); ok {
		return l.(*time.Location)
	}
	l, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return time.UTC
	}
	zones.Store(c.TimeZone, l)
	return l
}

// Day is the date of t in the campaign's time zone, YYYY-MM-DD: the day that
// limits.per_user_per_day counts.
func (c *Campaign) Day(t time.Time) string { return t.In(c.Location()).Format("2006-01-02") }

// Match is a campaign whose rule matched an event, with the points its reward grants
// (points rewards only). Campaign points into the rule set that matched it and must not
// be modified.
type Match struct {
	Campaign *Campaign
	Points   int64
}
