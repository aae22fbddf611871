package cel

import (
	"reflect"
	"testing"
	"time"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

func TestHistoryWindowsCountWholeDaysUpToTheEventTime(t *testing.T) {
	now := time.Date(2026, 6, 30, 15, 0, 0, 0, time.UTC)
	day := func(daysAgo int) int32 { return loyalty.DayOf(now) - int32(daysAgo) }
	u := &loyalty.User{History: []loyalty.DayStat{
		{Day: day(200), Spent: 1000, Counts: map[string]int64{"purchase": 5}},
		{Day: day(60), Spent: 300, Counts: map[string]int64{"purchase": 2}},
		{Day: day(6), Spent: 150, Counts: map[string]int64{"purchase": 1, "review": 1}},
		{Day: day(0), Spent: 100, Counts: map[string]int64{"purchase": 1}},
		{Day: day(-3), Spent: 999, Counts: map[string]int64{"purchase": 9}}, // after now: never counted
	}}
	before := *u
	cases := []struct {
		name string
		rule string
		want bool
	}{
		{"spend over 90 days excludes older days", `user.spent_within(duration("2160h")) == 550.0`, true},
		{"spend over 400 days includes everything up to now", `user.spent_within(duration("9600h")) == 1550.0`, true},
		{"purchases in the last 7 days include today", `user.count_within("purchase", duration("168h")) == 2`, true},
		{"a window of one day is today only", `user.count_within("purchase", duration("24h")) == 1`, true},
		{"a window under a day still means today", `user.count_within("purchase", duration("1h")) == 1`, true},
		{"types never seen count zero", `user.count_within("refund", duration("9600h")) == 0`, true},
		{"days active counts days, not events", `user.days_active_within(duration("1440h")) == 2`, true},
		{"threshold rule from the docs", `user.spent_within(duration("2160h")) > 500.0`, true},
		{"no history is zero", `user.days_active_within(duration("24h")) > 5`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Compile(tc.rule)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			got, err := r.Eval(&Input{Event: &event.Event{ID: "e", UserID: "u", Type: "purchase", OccurredAt: now}, User: u})
			if err != nil {
				t.Fatalf("eval: %v", err)
			}
			if got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	if !reflect.DeepEqual(*u, before) {
		t.Fatal("evaluation must not modify the caller's User")
	}
}

func TestHistoryFunctionsAreTypeChecked(t *testing.T) {
	for _, rule := range []string{
		`user.spent_within(90)`,
		`user.count_within(duration("24h"), "purchase") > 1`,
		`event.spent_within(duration("24h")) > 1.0`,
	} {
		if _, err := Compile(rule); err == nil {
			t.Errorf("%s: compiled, want a type error", rule)
		}
	}
}

func TestPerDayLimitCountsDaysInTheCampaignsTimeZone(t *testing.T) {
	// 03:00 UTC on 2 January is still 1 January in New York.
	at := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	mk := func(id, zone string) campaign.Campaign {
		return campaign.Campaign{ID: id, Name: id, Status: campaign.StatusActive, Version: 1, Rule: "true", TimeZone: zone,
			Reward: campaign.Reward{Type: campaign.RewardCoupon}, Limits: campaign.Limits{PerUserPerDay: 1}}
	}
	rs, errs := NewRuleSet([]campaign.Campaign{mk("ny", "America/New_York"), mk("utc", "")})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	u := &loyalty.User{RewardDays: map[string]loyalty.DayCount{
		"ny":  {Day: "2026-01-01", Count: 1}, // granted earlier that New York day
		"utc": {Day: "2026-01-01", Count: 1}, // a UTC day that is over
	}}
	ms, _, err := rs.Evaluate(&Input{Event: &event.Event{ID: "e", UserID: "u", Type: "t", OccurredAt: at}, User: u})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Campaign.ID != "utc" {
		t.Fatalf("matches %v, want only utc", ms)
	}
	bad := mk("bad", "Mars/Olympus")
	if err := ValidateCampaign(&bad); err == nil {
		t.Fatal("an unknown time zone must be refused")
	}
}
