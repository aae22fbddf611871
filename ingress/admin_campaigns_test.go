package ingress

import (
	"fmt"
	"strings"
	"testing"

	"github.com/campaignmanager/campaignmanager/cel/campaign"
)

// TestCampaignListIsPagedOldestFirst: GET /v1/campaigns pages like the other lists
// (limit 1..1000, default 100; next_cursor when the page is full), in creation order.
func TestCampaignListIsPagedOldestFirst(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	viewer := env.tokens["viewer"]
	var want []string
	for i := range 101 {
		// Ids against creation order, so that id order would show.
		c := campaign.Campaign{ID: fmt.Sprintf("c-%03d", 200-i), Name: "x", Rule: "true", Status: campaign.StatusDraft,
			Reward: campaign.Reward{Type: campaign.RewardCoupon}}
		if err := env.store.CreateCampaign(t.Context(), &c, "t"); err != nil {
			t.Fatal(err)
		}
		want = append(want, c.ID)
	}
	ids := func(out map[string]any) []string {
		var s []string
		for _, c := range out["campaigns"].([]any) {
			s = append(s, c.(map[string]any)["id"].(string))
		}
		return s
	}
	first := env.expect(t, 200, "GET", "/v1/campaigns", viewer, nil)
	if got := ids(first); len(got) != 100 || first["next_cursor"] == nil || strings.Join(got, ",") != strings.Join(want[:100], ",") {
		t.Fatalf("default page: %d campaigns, next_cursor %v", len(got), first["next_cursor"])
	}
	rest := env.expect(t, 200, "GET", "/v1/campaigns?cursor="+first["next_cursor"].(string), viewer, nil)
	if got := ids(rest); strings.Join(got, ",") != want[100] || rest["next_cursor"] != nil {
		t.Fatalf("last page = %v, next_cursor %v", got, rest["next_cursor"])
	}
	var got []string
	for cursor := ""; ; {
		page := env.expect(t, 200, "GET", "/v1/campaigns?limit=40"+cursor, viewer, nil)
		got = append(got, ids(page)...)
		next, ok := page["next_cursor"].(string)
		if !ok {
			break
		}
		cursor = "&cursor=" + next
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("pages of 40 = %v", got)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "cursor=-1", "cursor=abc"} {
		resp, out := env.do(t, "GET", "/v1/campaigns?"+q, viewer, nil)
		expectFieldProblem(t, resp, out, strings.Split(q, "=")[0])
	}
}

// TestCampaignFieldsAreSizeLimited: name 200, description 4096, rule and points 8192
// characters, reward.data 16 KiB as JSON, time_zone 64; over a limit is a 400 naming the
// field, at the limit is fine (characters, not bytes).
func TestCampaignFieldsAreSizeLimited(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	editor := env.tokens["editor"]
	base := func() map[string]any {
		return map[string]any{"name": "x", "rule": "true", "reward": map[string]any{"type": "coupon"}}
	}
	longRule := "true" + strings.Repeat(" ", campaign.MaxExprChars-4)
	tests := []struct {
		name  string
		edit  func(c map[string]any)
		field string // "" when accepted
	}{
		{"a name of 200 characters", func(c map[string]any) { c["name"] = strings.Repeat("é", 200) }, ""},
		{"a name of 201 characters", func(c map[string]any) { c["name"] = strings.Repeat("n", 201) }, "name"},
		{"a description of 4096 characters", func(c map[string]any) { c["description"] = strings.Repeat("ü", 4096) }, ""},
		{"a description of 4097 characters", func(c map[string]any) { c["description"] = strings.Repeat("d", 4097) }, "description"},
		{"a rule of 8192 characters", func(c map[string]any) { c["rule"] = longRule }, ""},
		{"a rule of 8193 characters", func(c map[string]any) { c["rule"] = longRule + " " }, "rule"},
		{"points of 8193 characters", func(c map[string]any) {
			c["reward"] = map[string]any{"type": "points", "points": "1" + strings.Repeat(" ", campaign.MaxExprChars)}
		}, "reward.points"},
		{"reward data of 16 KiB", func(c map[string]any) {
			c["reward"] = map[string]any{"type": "coupon", "data": map[string]any{"t": strings.Repeat("x", campaign.MaxDataBytes-len(`{"t":""}`))}}
		}, ""},
		{"reward data over 16 KiB", func(c map[string]any) {
			c["reward"] = map[string]any{"type": "coupon", "data": map[string]any{"t": strings.Repeat("x", campaign.MaxDataBytes)}}
		}, "reward.data"},
		{"a time zone of 65 characters", func(c map[string]any) { c["time_zone"] = "Europe/" + strings.Repeat("x", 58) }, "time_zone"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			c["id"] = fmt.Sprintf("size-%d", i)
			tt.edit(c)
			if tt.field == "" {
				env.expect(t, 201, "POST", "/v1/campaigns", editor, c)
				env.expect(t, 200, "PUT", "/v1/campaigns/"+c["id"].(string), editor, c)
				return
			}
			resp, out := env.do(t, "POST", "/v1/campaigns", editor, c)
			expectFieldProblem(t, resp, out, tt.field)
			good := base()
			env.expect(t, 201, "POST", "/v1/campaigns", editor, map[string]any{"id": c["id"], "name": "x", "rule": "true", "reward": good["reward"]})
			resp, out = env.do(t, "PUT", "/v1/campaigns/"+c["id"].(string), editor, c)
			expectFieldProblem(t, resp, out, tt.field)
		})
	}
}
