package cel

import (
	"fmt"
	"testing"

	"github.com/campaignmanager/campaignmanager/cel/campaign"
)

func benchRuleSet(b *testing.B, n int) *RuleSet {
	b.Helper()
	rules := []string{
		`event.type == "purchase" && event.amount > 50.0 && user.tier == "gold"`,
		`user.purchase_count == 0 || (event.attributes.rating >= 4 && now - user.first_seen < duration("720h"))`,
		`event.type == "signup"`,
		`user.event_counts["purchase"] >= 3 && event.amount > 10`,
	}
	cs := make([]campaign.Campaign, n)
	for i := range cs {
		cs[i] = validCampaign(fmt.Sprintf("c%03d", i))
		cs[i].Rule = rules[i%len(rules)]
		cs[i].Priority = i % 7
	}
	rs, errs := NewRuleSet(cs)
	if len(errs) > 0 || rs.Len() != n {
		b.Fatalf("NewRuleSet: %v", errs)
	}
	return rs
}

func BenchmarkEvaluate(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("campaigns=%d", n), func(b *testing.B) {
			rs := benchRuleSet(b, n)
			in := testInput()
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := rs.Evaluate(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRuleEval(b *testing.B) {
	r, err := Compile(`event.type == "purchase" && event.amount > 50.0 && user.tier == "gold"`)
	if err != nil {
		b.Fatal(err)
	}
	in := testInput()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Eval(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(`user.purchase_count == 0 || (event.attributes.rating >= 4 && now - user.first_seen < duration("720h"))`); err != nil {
			b.Fatal(err)
		}
	}
}
