package actors

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"maps"

	"github.com/campaignmanager/campaignmanager/cel"
	"github.com/campaignmanager/campaignmanager/ingress/event"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// newUser is the state of a user never seen before.
func newUser(id string) persistence.User {
	return persistence.User{UserID: id, EventCounts: map[string]int64{}, RewardCounts: map[string]int64{}, RewardDays: map[string]persistence.DayCount{}}
}

// ruleView is what rules see of u for an event on day.
func ruleView(u *persistence.User, day string) cel.User {
	v := cel.User{
		Tier:           u.Tier,
		Points:         u.Points,
		LifetimePoints: u.LifetimePoints,
		PurchaseCount:  u.PurchaseCount,
		TotalSpent:     u.TotalSpent,
		FirstSeen:      u.FirstSeen,
		EventCounts:    u.EventCounts,
		Rewards:        u.RewardCounts,
	}
	if u.LastPurchaseAt != nil {
		v.LastPurchaseAt = *u.LastPurchaseAt
	}
	for id, dc := range u.RewardDays {
		if dc.Day == day {
			if v.RewardsToday == nil {
				v.RewardsToday = make(map[string]int64, len(u.RewardDays))
			}
			v.RewardsToday[id] = dc.Count
		}
	}
	return v
}

// apply returns the state after ev and the rewards granted by matches. u is not changed:
// the caller adopts the result only once it is committed.
func apply(u *persistence.User, ev *event.Event, seq uint64, matches []cel.Match) (persistence.User, []persistence.Reward) {
	next := *u
	next.EventCounts = maps.Clone(u.EventCounts)
	if next.EventCounts == nil {
		next.EventCounts = map[string]int64{}
	}
	next.RewardCounts = maps.Clone(u.RewardCounts)
	if next.RewardCounts == nil {
		next.RewardCounts = map[string]int64{}
	}
	next.RewardDays = maps.Clone(u.RewardDays)
	if next.RewardDays == nil {
		next.RewardDays = map[string]persistence.DayCount{}
	}
	at := ev.OccurredAt.UTC()
	if next.FirstSeen.IsZero() || at.Before(next.FirstSeen) {
		next.FirstSeen = at
	}
	next.EventCounts[ev.Type]++
	if ev.Type == "purchase" {
		next.PurchaseCount++
		next.TotalSpent += ev.Amount
		if next.LastPurchaseAt == nil || at.After(*next.LastPurchaseAt) {
			next.LastPurchaseAt = &at
		}
	}
	var rewards []persistence.Reward
	day := at.Format("2006-01-02")
	for _, m := range matches {
		c := m.Campaign
		r := persistence.Reward{
			ID:              rewardID(ev.ID, c.ID),
			UserID:          u.UserID,
			CampaignID:      c.ID,
			CampaignVersion: c.Version,
			EventID:         ev.ID,
			Type:            c.Reward.Type,
			OccurredAt:      at,
		}
		payload := map[string]any{}
		if len(c.Reward.Data) > 0 {
			payload["data"] = c.Reward.Data
		}
		switch c.Reward.Type {
		case cel.RewardPoints:
			r.Points = m.Points
			next.Points += m.Points
			next.LifetimePoints += m.Points
		case cel.RewardCoupon:
			payload["coupon_code"] = couponCode(r.ID)
		}
		r.Payload = payload
		next.RewardCounts[c.ID]++
		dc := next.RewardDays[c.ID]
		if dc.Day != day {
			dc = persistence.DayCount{Day: day}
		}
		dc.Count++
		next.RewardDays[c.ID] = dc
		rewards = append(rewards, r)
	}
	next.LastSeq = int64(seq)
	next.Version = u.Version + 1
	return next, rewards
}

// rewardID is derived from the event and the campaign, so a reprocessed event yields the
// same id and the REWARDS stream deduplicates it.
func rewardID(eventID, campaignID string) string {
	h := sha256.Sum256([]byte(eventID + "\x00" + campaignID))
	return "rw_" + hex.EncodeToString(h[:16])
}

// couponCode is a deterministic, human-typable code for a coupon reward.
func couponCode(rewardID string) string {
	h := sha256.Sum256([]byte("coupon\x00" + rewardID))
	return "CPN-" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h[:8])
}
