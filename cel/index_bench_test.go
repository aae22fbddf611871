package cel_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/bench"
	"github.com/campaignmanager/campaignmanager/cel"
	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// mixedTypes are the event types of the mixed rule set: each campaign is about one or
// two of them, as a shop's campaigns are (a signup bonus, a review reward, ...).
var mixedTypes = []string{"purchase", "refund", "signup", "review", "view", "add_to_cart",
	"wishlist", "login", "share", "subscribe", "referral", "survey"}

// mixedCampaigns returns n campaigns spread over mixedTypes, in the rule shapes the type
// analysis reads (==, in, a negated !=, a variable), one in 20 about the user only (so
// evaluated for every event).
func mixedCampaigns(n int) []campaign.Campaign {
	cs := make([]campaign.Campaign, n)
	for i := range cs {
		t, u := mixedTypes[i%len(mixedTypes)], mixedTypes[(i+5)%len(mixedTypes)]
		var rule string
		switch {
		case i%20 == 19:
			rule = fmt.Sprintf(`user.purchase_count > %d && event.attributes.segment == %d`, i%7, i)
		case i%4 == 0:
			rule = fmt.Sprintf(`event.type == %q && event.attributes.segment == %d && user.purchase_count >= 0`, t, i)
		case i%4 == 1:
			rule = fmt.Sprintf(`event.type in [%q, %q] && event.amount > %d.0 && user.tier == "gold"`, t, u, i%50)
		case i%4 == 2:
			rule = fmt.Sprintf(`!(event.type != %q) && event.attributes.segment == %d`, t, i)
		default:
			rule = fmt.Sprintf(`[event.type].exists(x, x == %q) && user.points > %d`, t, i)
		}
		cs[i] = campaign.Campaign{
			ID: fmt.Sprintf("mixed-%04d", i), Name: "mixed", Status: campaign.StatusActive, Rule: rule,
			Reward: campaign.Reward{Type: campaign.RewardPoints, Points: "1"},
		}
	}
	return cs
}

// benchInputs are 1,024 inputs: the bench suite's generated events ("bench": purchase
// 90, view 7, signup 3) or events spread evenly over mixedTypes ("mixed").
func benchInputs(b *testing.B, set string) []cel.Input {
	b.Helper()
	users, err := bench.NewUsers(10_000, "uniform", 0)
	if err != nil {
		b.Fatal(err)
	}
	mix := "purchase:90,view:7,signup:3"
	if set == "mixed" {
		mix = ""
		for _, t := range mixedTypes {
			mix += t + ":1,"
		}
	}
	m, err := bench.ParseMix(mix)
	if err != nil {
		b.Fatal(err)
	}
	gen := &bench.Generator{Users: users, Mix: m, PayloadSize: 256}
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Now().UTC()
	inputs := make([]cel.Input, 1024)
	for i := range inputs {
		_, ev := gen.Append(nil, r, "cel-", uint64(i), now)
		e, err := event.Decode(ev.JSON, now)
		if err != nil {
			b.Fatal(err)
		}
		inputs[i] = cel.Input{Event: &e, User: &loyalty.User{Tier: "gold", Points: int64(i % 300), PurchaseCount: int64(i % 7), FirstSeen: now.Add(-time.Hour)}}
	}
	return inputs
}

// BenchmarkEvaluateTypeIndex evaluates 10, 100 and 1,000 active campaigns with the type
// index (Evaluate) and without it (every rule), on the bench suite's campaigns and
// events ("bench": all but one campaign are about purchases, 90 % of events are
// purchases) and on campaigns and events spread over 12 types ("mixed"). Compare the
// index and all lines of one run: their ratio is what the index saves.
func BenchmarkEvaluateTypeIndex(b *testing.B) {
	for _, set := range []string{"bench", "mixed"} {
		inputs := benchInputs(b, set)
		for _, n := range []int{10, 100, 1000} {
			cs := bench.Campaigns(n)
			if set == "mixed" {
				cs = mixedCampaigns(n)
			}
			rs, errs := cel.NewRuleSet(cs)
			if len(errs) > 0 || rs.Len() != n {
				b.Fatalf("NewRuleSet: %v", errs)
			}
			for _, mode := range []string{"index", "all"} {
				eval := rs.Evaluate
				if mode == "all" {
					eval = rs.EvaluateAll
				}
				b.Run(fmt.Sprintf("%s/campaigns=%d/%s", set, n, mode), func(b *testing.B) {
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						if _, _, err := eval(&inputs[i%len(inputs)]); err != nil {
							b.Fatal(err)
						}
						i++
					}
				})
			}
		}
	}
}

// BenchmarkRuleSetAfterOneChange builds the rule set of 1,000 bench campaigns after one
// of them changed, as the engine does at every change of the campaigns bucket: from
// scratch (NewRuleSet) and reusing the previous set's compiled expressions
// (NewRuleSetFrom).
func BenchmarkRuleSetAfterOneChange(b *testing.B) {
	cs := bench.Campaigns(1000)
	prev, errs := cel.NewRuleSet(cs)
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	cs[500].Rule = `event.type == "purchase" && event.attributes.segment == 5000`
	for _, mode := range []string{"scratch", "reuse"} {
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var errs []error
				if mode == "scratch" {
					_, errs = cel.NewRuleSet(cs)
				} else {
					_, errs = cel.NewRuleSetFrom(prev, cs)
				}
				if len(errs) > 0 {
					b.Fatal(errs)
				}
			}
		})
	}
}
