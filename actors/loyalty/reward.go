package loyalty

import "time"

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
	// Pool, when set, is the coupon code pool the reward takes its code from: the commit
	// assigns one and writes it into Payload["coupon_code"] (Payload["pool"] names the
	// pool).
	Pool       string    `json:"-"`
	OccurredAt time.Time `json:"occurred_at"`
	// CreatedAt is when the reward was committed (set by the commit).
	CreatedAt time.Time `json:"created_at"`
}
