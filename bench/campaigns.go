package bench

import (
	"fmt"

	"github.com/campaignmanager/campaignmanager/cel"
)

// CampaignID is the id of bench campaign i.
func CampaignID(i int) string { return fmt.Sprintf("bench-%03d", i) }

// Campaigns returns the n bench campaigns. Campaign 0 matches every event the Generator
// makes (purchases over 10 earn 10% in points, other types 1 point), so every event has
// at least one reward to wait for; campaign i > 0 matches purchases whose "segment"
// attribute is i, so with Segments = 1000 a purchase matches a second campaign with
// probability (n-1)/1000 and the rule set grows without multiplying rewards.
func Campaigns(n int) []cel.Campaign {
	out := make([]cel.Campaign, n)
	for i := range n {
		c := cel.Campaign{
			ID:     CampaignID(i),
			Name:   fmt.Sprintf("bench campaign %d", i),
			Status: cel.StatusActive,
		}
		if i == 0 {
			c.Rule = `event.type == "purchase" && event.amount > 10.0 || event.type != "purchase"`
			c.Reward = cel.Reward{Type: cel.RewardPoints, Points: `event.type == "purchase" ? int(event.amount * 0.1) : 1`}
		} else {
			c.Rule = fmt.Sprintf(`event.type == "purchase" && event.attributes.segment == %d && user.purchase_count >= 0`, i)
			if i%2 == 0 {
				c.Reward = cel.Reward{Type: cel.RewardPoints, Points: "int(event.amount * 0.05) + 1"}
			} else {
				c.Reward = cel.Reward{Type: cel.RewardFreeShipping}
			}
		}
		out[i] = c
	}
	return out
}
