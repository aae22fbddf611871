package ingress

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/cel"
)

func TestValidateRuleAnswersCostAndLimit(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	out := env.expect(t, 200, "POST", "/v1/rules/validate", env.tokens["viewer"],
		map[string]any{"rule": `event.amount > 50 && user.tier == "gold"`, "points": "int(event.amount * 0.1)"})
	cost, _ := out["cost"].(float64)
	if out["valid"] != true || cost < 1 || cost > cel.MaxCost || out["cost_limit"] != float64(cel.MaxCost) {
		t.Fatalf("answer = %v, want valid with 0 < cost <= cost_limit = %d", out, cel.MaxCost)
	}
}

func TestRuleProblemsPointAtTheSource(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	viewer := env.tokens["viewer"]
	tests := []struct {
		name     string
		path     string
		body     map[string]any
		field    string
		line     float64
		column   float64
		snippet  string
		contains string
	}{
		{"a syntax error on line 2 shows that line and a caret", "/v1/rules/validate",
			map[string]any{"rule": "event.type == \"purchase\" &&\n  event.amount >"}, "rule", 2, 17,
			"  event.amount >\n                ^", "Syntax error"},
		{"an unknown field is placed at the field", "/v1/rules/validate",
			map[string]any{"rule": "user.nope > 1"}, "rule", 1, 5, "user.nope > 1\n    ^", "nope"},
		{"a rule over the cost limit is refused naming the limit", "/v1/rules/validate",
			map[string]any{"rule": `event.attributes.all(k, event.attributes.all(j, k != j))`}, "rule", 1, 1,
			"event.attributes.all(k, event.attributes.all(j, k != j))\n^", fmt.Sprintf("limit of %d", cel.MaxCost)},
		{"a points error shows the points source", "/v1/rules/validate",
			map[string]any{"rule": "true", "points": "event.amount * 0.1"}, "reward.points", 1, 1,
			"event.amount * 0.1\n^", "int(...)"},
		{"rule test reports compile errors the same way", "/v1/rules/test",
			map[string]any{"rule": "event.amount >", "event": map[string]any{"id": "e", "user_id": "u", "type": "purchase"}}, "rule", 1, 15,
			"event.amount >\n              ^", "Syntax error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := env.expect(t, 400, "POST", tt.path, viewer, tt.body)
			if out["field"] != tt.field {
				t.Fatalf("field = %v, want %s (%v)", out["field"], tt.field, out)
			}
			errs, _ := out["errors"].([]any)
			if len(errs) == 0 {
				t.Fatalf("no errors: %v", out)
			}
			e := errs[0].(map[string]any)
			if e["line"] != tt.line || e["column"] != tt.column || e["snippet"] != tt.snippet {
				t.Fatalf("error at %v:%v snippet\n%v\nwant %v:%v\n%s", e["line"], e["column"], e["snippet"], tt.line, tt.column, tt.snippet)
			}
			if msg, _ := e["message"].(string); !strings.Contains(msg, tt.contains) {
				t.Fatalf("message %q does not mention %q", msg, tt.contains)
			}
			if d, _ := out["detail"].(string); !strings.Contains(d, tt.contains) {
				t.Fatalf("detail %q does not mention %q", d, tt.contains)
			}
		})
	}
}

func TestRuleTestEvaluatesWithoutSideEffects(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	viewer := env.tokens["viewer"]
	firstSeen := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err := env.store.CommitBatch(t.Context(), []loyalty.Decision{{
		EventID: "seed-1", EventType: "purchase", StreamSeq: 1,
		User: loyalty.User{UserID: "alice", Tier: "gold", PurchaseCount: 3, TotalSpent: 300, FirstSeen: firstSeen,
			EventCounts: map[string]int64{"purchase": 3}, RewardCounts: map[string]int64{}, Version: 1},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	purchase := func(user string, amount float64) map[string]any {
		return map[string]any{"id": "order-1", "user_id": user, "type": "purchase", "amount": amount, "currency": "EUR",
			"occurred_at": "2024-06-01T12:00:00Z", "attributes": map[string]any{"category": "shoes"}}
	}
	points := map[string]any{"type": "points", "points": "int(event.amount * 0.1)"}
	rule := `event.type == "purchase" && event.amount > 50 && user.tier == "gold"`

	tests := []struct {
		name        string
		body        map[string]any
		matched     bool
		points      any
		source      string
		operator    string
		explanation []any
		reason      string
		errText     string
	}{
		{"a stored gold user matches and earns points", map[string]any{"rule": rule, "reward": points, "event": purchase("alice", 120)},
			true, float64(12), "stored", "&&", []any{true, true, true}, "", ""},
		{"the failing && clause is named", map[string]any{"rule": rule, "reward": points, "event": purchase("alice", 20)},
			false, nil, "stored", "&&", []any{true, false, true}, "false: event.amount > 50", ""},
		{"a user never seen is new", map[string]any{"rule": rule, "event": purchase("bob", 120)},
			false, nil, "new", "&&", []any{true, true, false}, `false: user.tier == "gold"`, ""},
		{"a given user wins over the stored one", map[string]any{"rule": rule, "event": purchase("alice", 120), "user": map[string]any{"tier": "silver"}},
			false, nil, "given", "&&", []any{true, true, false}, `false: user.tier == "gold"`, ""},
		{"a missing attribute is reported, not a 500", map[string]any{"rule": `event.attributes.rating >= 4 || user.purchase_count > 10`, "event": purchase("alice", 1)},
			false, nil, "stored", "||", []any{"error: no such key: rating", false}, "", "no such key: rating"},
		{"a runtime error in points means no match", map[string]any{"rule": "true", "reward": map[string]any{"type": "points", "points": "int(event.attributes.nope)"}, "event": purchase("alice", 1)},
			false, nil, "stored", "", []any{true}, "", "no such key: nope"},
		{"stored history feeds the rule", map[string]any{"rule": `user.purchase_count == 3 && now - user.first_seen > duration("720h") && event.attributes.category in ["shoes", "bags"]`, "reward": map[string]any{"type": "coupon"}, "event": purchase("alice", 1)},
			true, nil, "stored", "&&", []any{true, true, true}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := env.expect(t, 200, "POST", "/v1/rules/test", viewer, tt.body)
			if out["matched"] != tt.matched || out["points"] != tt.points || out["user_source"] != tt.source {
				t.Fatalf("matched %v points %v user_source %v, want %v %v %v (%v)", out["matched"], out["points"], out["user_source"],
					tt.matched, tt.points, tt.source, out)
			}
			if op, _ := out["operator"].(string); op != tt.operator {
				t.Fatalf("operator = %q, want %q", op, tt.operator)
			}
			var results []any
			for _, e := range out["explanation"].([]any) {
				results = append(results, e.(map[string]any)["result"])
			}
			if !reflect.DeepEqual(results, tt.explanation) {
				t.Fatalf("clause results = %v, want %v (%v)", results, tt.explanation, out["explanation"])
			}
			if r, _ := out["reason"].(string); tt.reason != "" && r != tt.reason {
				t.Fatalf("reason = %q, want %q", r, tt.reason)
			}
			if e, _ := out["error"].(string); !strings.Contains(e, tt.errText) || (tt.errText == "") != (e == "") {
				t.Fatalf("error = %q, want it to hold %q", e, tt.errText)
			}
			if tt.matched {
				if rw, _ := out["reward"].(map[string]any); rw == nil || rw["type"] != tt.body["reward"].(map[string]any)["type"] || rw["points"] != tt.points {
					t.Fatalf("reward = %v", out["reward"])
				}
			}
		})
	}

	u, err := env.store.GetUser(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if u.Version != 1 || u.PurchaseCount != 3 || len(u.RewardCounts) != 0 {
		t.Fatalf("testing a rule changed the stored user: %+v", u)
	}
	if _, err := env.store.GetUser(t.Context(), "bob"); err == nil {
		t.Fatal("testing a rule stored a new user")
	}
	if rs, err := env.store.ListRewards(t.Context(), "alice", 0, 10); err != nil || len(rs) != 0 {
		t.Fatalf("testing a rule granted rewards: %v %v", rs, err)
	}
}

func TestRuleTestShowsTheStateItUsed(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	before := time.Now().UTC().Add(-time.Second)
	out := env.expect(t, 200, "POST", "/v1/rules/test", env.tokens["viewer"], map[string]any{
		"rule":  `has(user.first_seen) && now - user.first_seen < duration("24h")`,
		"event": map[string]any{"id": "e1", "user_id": "carol", "type": "review"},
		"user":  map[string]any{"first_seen": before.Add(-time.Hour).Format(time.RFC3339), "event_counts": map[string]any{"review": 2}},
	})
	if out["matched"] != true {
		t.Fatalf("answer = %v", out)
	}
	ev := out["event"].(map[string]any)
	at, err := time.Parse(time.RFC3339Nano, ev["occurred_at"].(string))
	if err != nil || at.Before(before) {
		t.Fatalf("occurred_at = %v, want it to default to now", ev["occurred_at"])
	}
	user := out["user"].(map[string]any)
	if user["event_counts"].(map[string]any)["review"] != float64(2) {
		t.Fatalf("user = %v", user)
	}
}

func TestRuleTestRequestProblems(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	ev := map[string]any{"id": "e1", "user_id": "u1", "type": "purchase"}
	tests := []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"no rule", map[string]any{"event": ev}, "rule"},
		{"no event", map[string]any{"rule": "true"}, "event"},
		{"an event without user_id", map[string]any{"rule": "true", "event": map[string]any{"id": "e1", "type": "purchase"}}, "event.user_id"},
		{"an event that is not an object", map[string]any{"rule": "true", "event": []int{1}}, "event"},
		{"an unknown reward type", map[string]any{"rule": "true", "event": ev, "reward": map[string]any{"type": "cash"}}, "reward.type"},
		{"points rewards need points", map[string]any{"rule": "true", "event": ev, "reward": map[string]any{"type": "points"}}, "reward.points"},
		{"only points rewards have points", map[string]any{"rule": "true", "event": ev, "reward": map[string]any{"type": "coupon", "points": 5}}, "reward.points"},
		{"an unknown user field is named by its path", map[string]any{"rule": "true", "event": ev, "user": map[string]any{"tierr": "gold"}}, "user.tierr"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is 400 naming "+tt.field, func(t *testing.T) {
			out := env.expect(t, 400, "POST", "/v1/rules/test", env.tokens["viewer"], tt.body)
			if out["field"] != tt.field {
				t.Fatalf("field = %v, want %s (%v)", out["field"], tt.field, out)
			}
		})
	}
}
