package loyalty

import "time"

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
