package cel

import (
	"reflect"
	"testing"
	"time"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

func TestRuleKnowsTheEventTypesItCanMatch(t *testing.T) {
	cases := []struct {
		name string
		rule string
		want []string // nil: any type
	}{
		{"an equality names one type", `event.type == "purchase" && event.amount > 50`, []string{"purchase"}},
		{"either side of ==", `"review" == event.type`, []string{"review"}},
		{"in a list", `event.type in ["purchase", "refund"] && true`, []string{"purchase", "refund"}},
		{"or unites", `event.type == "a" || event.type == "b"`, []string{"a", "b"}},
		{"and intersects", `event.type in ["a", "b"] && event.type == "b"`, []string{"b"}},
		{"contradiction matches nothing", `event.type == "a" && event.type == "b"`, []string{}},
		{"or with an unconstrained side is any", `event.type == "a" || user.points > 3`, nil},
		{"a rule about the user is any", `user.tier == "gold"`, nil},
		{"a negation is not read", `!(event.type == "a")`, nil},
		{"inequality is not read", `event.type != "a"`, nil},
		{"a non-literal list is not read", `event.type in event.attributes.kinds`, nil},
		{"the engine's own type by name", `event.type == "points.adjust"`, []string{"points.adjust"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Compile(tc.rule)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Types(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Types() = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestRulesSeeTheEnginesOwnEventsOnlyWhenTheyAskByType(t *testing.T) {
	always := validCampaign("always")
	always.Rule = "true"
	adjust := validCampaign("on-adjust")
	adjust.Rule = `event.type == "points.adjust"`
	rs, errs := NewRuleSet([]campaign.Campaign{always, adjust})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for typ, want := range map[string][]string{
		"purchase":          {"always"},
		event.TypeAdjust:    {"on-adjust"},
		event.TypeExpire:    nil,
		"points.future_one": nil,
	} {
		ms, _, err := rs.Evaluate(&Input{Event: &event.Event{ID: "e", UserID: "u", Type: typ, Amount: 10, OccurredAt: at}, User: &loyalty.User{}})
		if err != nil {
			t.Fatal(err)
		}
		if got := matchIDs(ms); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: matched %v, want %v", typ, got, want)
		}
	}
}
