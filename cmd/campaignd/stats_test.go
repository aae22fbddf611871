package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCampaignStatsCountRewardsAndPointsPerUTCDayForThirtyDays checks the daily series of
// GET /v1/campaigns/{id}/stats through the whole path: events posted over HTTP, applied
// by the engine, committed, then counted on the UTC day of their occurred_at, thirty
// days oldest first with today last and empty days as zeros; older rewards stay in the
// totals only.
func TestCampaignStatsCountRewardsAndPointsPerUTCDayForThirtyDays(t *testing.T) {
	e := newEnv(t)
	e.createCampaign(tenPercent)
	day := time.Now().UTC().Truncate(24 * time.Hour)
	at := func(daysAgo int, hour int) string {
		return day.Add(-time.Duration(daysAgo)*24*time.Hour + time.Duration(hour)*time.Hour).Format(time.RFC3339)
	}
	events := []struct {
		daysAgo, hour int
		user          string
		amount        float64
	}{
		{0, 0, "d1", 100},   // today: 10
		{0, 0, "d2", 250},   // today: 25
		{1, 23, "d1", 60},   // yesterday, late: 6
		{29, 0, "d3", 80},   // the oldest day shown: 8
		{30, 23, "d3", 500}, // a day too old: totals only
		{3, 12, "d4", 20},   // no match (amount <= 50)
	}
	for i, ev := range events {
		e.postEvent(map[string]any{"id": fmt.Sprintf("day-%d", i), "user_id": ev.user, "type": "purchase",
			"amount": ev.amount, "occurred_at": at(ev.daysAgo, ev.hour)}, http.StatusAccepted)
	}
	e.waitEngineIdle(patience)

	var st struct {
		Rewards       int64 `json:"rewards"`
		PointsGranted int64 `json:"points_granted"`
		Daily         []struct {
			Day     string `json:"day"`
			Rewards int64  `json:"rewards"`
			Points  int64  `json:"points"`
		} `json:"daily"`
	}
	e.do("GET", "/v1/campaigns/ten-percent/stats", e.token, nil, http.StatusOK, &st)
	require.Equal(t, int64(5), st.Rewards, "the totals count every reward")
	require.Equal(t, int64(10+25+6+8+50), st.PointsGranted)
	require.Len(t, st.Daily, 30)
	want := map[int][2]int64{0: {2, 35}, 1: {1, 6}, 29: {1, 8}}
	for i, d := range st.Daily {
		daysAgo := len(st.Daily) - 1 - i
		require.Equal(t, day.Add(-time.Duration(daysAgo)*24*time.Hour).Format(time.DateOnly), d.Day, "entry %d", i)
		w := want[daysAgo]
		require.Equal(t, w, [2]int64{d.Rewards, d.Points}, "%s (%d days ago): rewards and points", d.Day, daysAgo)
	}

	// A campaign that granted nothing has thirty zero days.
	e.createCampaign(map[string]any{"id": "nothing-yet", "name": "nothing yet", "rule": "false", "reward": map[string]any{"type": "points", "points": 1}})
	e.do("GET", "/v1/campaigns/nothing-yet/stats", e.token, nil, http.StatusOK, &st)
	require.Len(t, st.Daily, 30)
	for _, d := range st.Daily {
		require.Zero(t, d.Rewards+d.Points, d.Day)
	}
}

// TestRuleErrorsShowInTheCampaignStatsByDay runs a points expression that is negative for
// small purchases: each such event is a rule error of the campaign (no reward), counted
// once in its stats on the UTC day of the event, also when the event comes again.
func TestRuleErrorsShowInTheCampaignStatsByDay(t *testing.T) {
	e := newEnv(t)
	e.createCampaign(map[string]any{"id": "over-100", "name": "points over 100", "status": "active",
		"rule": `event.type == "purchase"`, "reward": map[string]any{"type": "points", "points": "int(event.amount) - 100"}})
	day := time.Now().UTC().Truncate(24 * time.Hour)
	yesterday := day.Add(-12 * time.Hour).Format(time.RFC3339)
	// Today's events are dated no later than now: an hour past midnight is in the future
	// before 00:55 UTC, and refused.
	for i, ev := range []struct {
		amount float64
		at     string
	}{{60, yesterday}, {250, yesterday}, {70, day.Format(time.RFC3339)}, {80, day.Add(min(time.Hour, time.Since(day))).Format(time.RFC3339)}} {
		e.postEvent(map[string]any{"id": fmt.Sprintf("re-%d", i), "user_id": "erin", "type": "purchase",
			"amount": ev.amount, "occurred_at": ev.at}, http.StatusAccepted)
	}
	e.waitUser("erin", 4)
	// A repeated event is not counted again.
	e.postEvent(map[string]any{"id": "re-0", "user_id": "erin", "type": "purchase", "amount": 60, "occurred_at": yesterday}, http.StatusOK)
	e.waitEngineIdle(patience)

	var st struct {
		Rewards    int64 `json:"rewards"`
		RuleErrors int64 `json:"rule_errors"`
		Daily      []struct {
			Day        string `json:"day"`
			Rewards    int64  `json:"rewards"`
			RuleErrors int64  `json:"rule_errors"`
		} `json:"daily"`
	}
	e.do("GET", "/v1/campaigns/over-100/stats", e.token, nil, http.StatusOK, &st)
	require.Equal(t, int64(1), st.Rewards)
	require.Equal(t, int64(3), st.RuleErrors)
	last, before := st.Daily[len(st.Daily)-1], st.Daily[len(st.Daily)-2]
	require.Equal(t, [2]int64{0, 2}, [2]int64{last.Rewards, last.RuleErrors}, "today: %s", last.Day)
	require.Equal(t, [2]int64{1, 1}, [2]int64{before.Rewards, before.RuleErrors}, "yesterday: %s", before.Day)
}
