package bench

import (
	"fmt"

	"github.com/campaignmanager/campaignmanager/cel/campaign"
)

// CampaignID is the id of bench campaign i.
func CampaignID(i int) string { return fmt.Sprintf("bench-%03d", i) }

// Campaigns returns the n bench campaigns. Campaign 0 matches every event the Generator
// makes (purchases over 10 earn 10% in points, other types 1 point), so every event has
// at least one reward to wait for; campaign i > 0 matches purchases whose "segment"
// attribute is i, so with Segments = 1000 a purchase matches a second campaign with
// probability (n-1)/1000 and the rule set grows without multiplying rewards.
func Campaigns(n int) []campaign.Campaign {
	out := make([]campaign.Campaign, n)
	for i := range n {
		c := campaign.Campaign{
			ID:     CampaignID(i),
			Name:   fmt.Sprintf("bench campaign %d", i),
			Status: campaign.StatusActive,
		}
		if i == 0 {
			c.Rule = `event.type == "purchase" && event.amount > 10.0 || event.type != "purchase"`
			c.Reward = campaign.Reward{Type: campaign.RewardPoints, Points: `event.type == "purchase" ? int(event.amount * 0.1) : 1`}
		} else {
			c.Rule = fmt.Sprintf(`event.type == "purchase" && event.attributes.segment == %d && user.purchase_count >= 0`, i)
			if i%2 == 0 {
				c.Reward = campaign.Reward{Type: campaign.RewardPoints, Points: "int(event.amount * 0.05) + 1"}
			} else {
				c.Reward = campaign.Reward{Type: campaign.RewardFreeShipping}
			}
		}
		out[i] = c
	}
	return out
}
