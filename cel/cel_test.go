package cel

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

var t0 = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

func testInput() *Input {
	return &Input{
		Event: &event.Event{
			ID: "evt-1", UserID: "u-1", Type: "purchase", Amount: 60, Currency: "EUR",
			OccurredAt: t0,
			Attributes: map[string]any{"rating": 5.0, "sku": "ABC-1", "vip": true, "items": []any{1.0, 2.0}},
		},
		User: &loyalty.User{
			Tier: "gold", Points: 120, LifetimePoints: 900, PurchaseCount: 3, TotalSpent: 250.5,
			FirstSeen: t0.Add(-48 * time.Hour), LastPurchaseAt: ptr(t0.Add(-24 * time.Hour)),
			EventCounts:  map[string]int64{"purchase": 3},
			RewardCounts: map[string]int64{"welcome": 1},
		},
	}
}

func TestRuleEvaluatesDocumentedExamples(t *testing.T) {
	newUser := testInput()
	newUser.User = &loyalty.User{}
	noRating := testInput()
	noRating.Event.Attributes = nil
	tests := []struct {
		name string
		rule string
		in   *Input
		want bool
	}{
		{"purchase gold over 50", `event.type == "purchase" && event.amount > 50.0 && user.tier == "gold"`, testInput(), true},
		{"returning user rating within 30 days", `user.purchase_count == 0 || (event.attributes.rating >= 4 && now - user.first_seen < duration("720h"))`, testInput(), true},
		{"first purchase short-circuits missing attribute", `user.purchase_count == 0 || (event.attributes.rating >= 4 && now - user.first_seen < duration("720h"))`, newUser, true},
		{"int literal compares with double amount", `event.amount > 10`, testInput(), true},
		{"double compares with int field", `user.total_spent > 250`, testInput(), true},
		{"now equals event time", `now == event.occurred_at && now == timestamp("2025-03-14T15:09:26Z")`, testInput(), true},
		{"event counts by index", `user.event_counts["purchase"] >= 3`, testInput(), true},
		{"rewards membership", `"welcome" in user.rewards && !("other" in user.rewards)`, testInput(), true},
		{"has guards missing attribute", `has(event.attributes.coupon) && event.attributes.coupon == "X"`, testInput(), false},
		{"optional guards missing attribute", `event.attributes.?coupon.orValue("") == ""`, noRating, true},
		{"nil user is a new user", `user.purchase_count == 0 && !has(user.first_seen)`, &Input{Event: testInput().Event}, true},
		{"string extension", `event.attributes.sku.startsWith("ABC") && event.currency.lowerAscii() == "eur"`, testInput(), true},
		{"comprehension over attribute list", `event.attributes.items.exists(i, i > 1)`, testInput(), true},
		{"dyn bool compared", `event.attributes.vip == true`, testInput(), true},
		{"timestamp accessor in UTC", `now.getHours() == 15`, testInput(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Compile(tt.rule)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			got, err := r.Eval(tt.in)
			if err != nil {
				t.Fatalf("Eval: %v", err)
			}
			if got != tt.want {
				t.Errorf("Eval = %v, want %v", got, tt.want)
			}
			if r.Cost() == 0 || r.Cost() > MaxCost {
				t.Errorf("Cost = %d, want in (0, %d]", r.Cost(), MaxCost)
			}
		})
	}
}

func TestCompileRefusesInvalidRulesWithPositions(t *testing.T) {
	tests := []struct {
		name       string
		rule       string
		line, col  int
		msgContain string
	}{
		{"misspelt field", `event.amout > 10`, 1, 6, "undefined field 'amout'"},
		{"mismatched types", `user.tier > 3`, 1, 11, "no matching overload"},
		{"multi-line position is 1-based", "event.type == \"purchase\" &&\n  event.amout > 10", 2, 8, "undefined field"},
		{"unknown variable", "true &&\n\n   customer.tier == \"gold\"", 3, 4, "undeclared reference to 'customer'"},
		{"syntax error", `event.type == `, 1, 15, "Syntax error"},
		{"non-boolean rule", `event.amount`, 1, 1, "must be a boolean"},
		{"dyn rule", `event.attributes.vip`, 1, 1, "must be a boolean"},
		{"empty rule", "  ", 1, 1, "empty"},
		{"nested comprehension over attributes is too costly", `event.attributes.all(k, event.attributes.all(j, k != j))`, 1, 1, fmt.Sprintf("limit of %d", MaxCost)},
		{"objects cannot be constructed", `campaign.Event{id: "x"} == event`, 1, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Compile(tt.rule)
			if err == nil {
				if tt.msgContain == "" {
					// Acceptable to compile, but must not construct at runtime.
					if _, err := r.Eval(testInput()); err == nil {
						t.Fatal("Eval succeeded constructing campaign.Event")
					}
					return
				}
				t.Fatal("Compile succeeded, want error")
			}
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not *CompileError", err)
			}
			if ce.Field != "rule" || len(ce.Issues) == 0 {
				t.Fatalf("CompileError = %+v", ce)
			}
			is := ce.Issues[0]
			if tt.msgContain == "" {
				return
			}
			if is.Line != tt.line || is.Column != tt.col || !strings.Contains(is.Message, tt.msgContain) {
				t.Errorf("issue = %+v, want %d:%d containing %q", is, tt.line, tt.col, tt.msgContain)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("rule:%d:%d:", tt.line, tt.col)) {
				t.Errorf("Error() = %q lacks position", err.Error())
			}
		})
	}
}

func TestCompilePointsAcceptsOnlyIntegers(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		want    int64
		wantErr string
	}{
		{"ten percent of amount", "int(event.amount * 0.1)", 6, ""},
		{"constant", "100", 100, ""},
		{"depends on user", `user.tier == "gold" ? 20 : 10`, 20, ""},
		{"double refused", "event.amount * 0.1", 0, "must be an integer"},
		{"string refused", `"100"`, 0, "must be an integer"},
		{"dyn refused", `event.attributes.rating`, 0, "must be an integer"},
		{"the largest constant", "1000000000000", loyalty.MaxPoints, ""},
		{"constant folded from operators", "[1, 2, 3].map(x, x * 10).size() + 7", 10, ""},
		{"negative constant refused", "-100", 0, "constant and always fails: result -100 is negative"},
		{"division by zero refused", "1/0", 0, "constant and always fails: division by zero"},
		{"int64 overflow refused", "9223372036854775807 + 1", 0, "constant and always fails: integer overflow"},
		{"constant over the maximum refused", "9223372036854775807", 0, "over the maximum of 1000000000000 points per reward"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := CompilePoints(tt.src)
			if tt.wantErr != "" {
				var ce *CompileError
				if !errors.As(err, &ce) || ce.Field != "reward.points" || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("CompilePoints err = %v, want *CompileError containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("CompilePoints: %v", err)
			}
			got, err := p.Eval(testInput())
			if err != nil || got != tt.want {
				t.Errorf("Eval = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestPointsOverTheMaximumIsError(t *testing.T) {
	p, err := CompilePoints("int(event.amount * 0.1)")
	if err != nil {
		t.Fatal(err)
	}
	in := testInput()
	in.Event.Amount = 9.2e19 // the audit's amount; ingress refuses more than event.MaxAmount
	if _, err := p.Eval(in); err == nil || !strings.Contains(err.Error(), "out of range") && !strings.Contains(err.Error(), "over the maximum") {
		t.Fatalf("Eval err = %v, want an error", err)
	}
	in.Event.Amount = 1e13 + 10
	if n, err := p.Eval(in); err == nil || !strings.Contains(err.Error(), "over the maximum") {
		t.Fatalf("Eval = %d, %v; want over the maximum", n, err)
	}
}

func TestPointsNegativeIsError(t *testing.T) {
	p, err := CompilePoints("user.points - 1000")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Eval(testInput()); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("Eval err = %v, want negative error", err)
	}
}

// panicVal is an attribute value whose methods panic, standing in for a bug in the
// evaluator.
type panicVal struct{}

func (panicVal) ConvertToNative(reflect.Type) (any, error) { panic("boom") }
func (panicVal) ConvertToType(ref.Type) ref.Val            { panic("boom") }
func (panicVal) Equal(ref.Val) ref.Val                     { panic("boom") }
func (panicVal) Type() ref.Type                            { return types.IntType }
func (panicVal) Value() any                                { panic("boom") }

func TestEvalErrorsAreNotPanics(t *testing.T) {
	panicky := testInput()
	panicky.Event.Attributes["p"] = panicVal{}
	tests := []struct {
		name      string
		rule      string
		in        *Input
		wantPanic bool
		wantMsg   string
	}{
		{"missing attribute key is a runtime error", `event.attributes.nope == 1`, testInput(), false, "no such key"},
		{"division by zero is a runtime error", `1 / (user.points - 120) == 1`, testInput(), false, "division by zero"},
		{"nil event is an error", `true`, &Input{}, false, "no event"},
		{"nil input is an error", `true`, nil, false, "no event"},
		{"panic inside evaluation wraps ErrPanic", `event.attributes.p == 1`, panicky, true, "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Compile(tt.rule)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Eval(tt.in)
			if err == nil || got {
				t.Fatalf("Eval = %v, %v; want error", got, err)
			}
			if errors.Is(err, ErrPanic) != tt.wantPanic || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %v; want ErrPanic=%v containing %q", err, tt.wantPanic, tt.wantMsg)
			}
		})
	}
}

func TestRuntimeCostLimitStopsRunawayRule(t *testing.T) {
	big := make([]any, 50000)
	for i := range big {
		big[i] = float64(i)
	}
	in := testInput()
	in.Event.Attributes["big"] = big
	r, err := Compile(`event.attributes.big.exists(i, i < 0.0)`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Eval(in)
	if err == nil || errors.Is(err, ErrPanic) || !strings.Contains(err.Error(), "cost limit") {
		t.Fatalf("Eval err = %v, want cost limit error", err)
	}
}

// TestRuntimeCostLimitCoversFunctionsTheEstimateCannotBound evaluates, on inputs beyond
// the declared bounds, expressions without a comprehension: one whose function cel-go
// prices only roughly (lowerAscii) stops at the runtime limit, one of linear operators
// runs to the end.
func TestRuntimeCostLimitCoversFunctionsTheEstimateCannotBound(t *testing.T) {
	in := testInput()
	in.Event.Attributes["s"] = strings.Repeat("a", 4<<20) // 4 MiB: more than ingress lets in
	r, err := Compile(`string(event.attributes.s).lowerAscii().size() > 0`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Eval(in); err == nil || !strings.Contains(err.Error(), "cost limit") {
		t.Fatalf("Eval err = %v, want the runtime cost limit", err)
	}
	r, err = Compile(`string(event.attributes.s).size() > 0 && string(event.attributes.s).startsWith("a")`)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := r.Eval(in); !ok || err != nil {
		t.Fatalf("Eval = %v, %v; want true", ok, err)
	}
}

func TestCostEstimateUsesTheEventBounds(t *testing.T) {
	// The audit's rule: replace costs the product of its inputs' sizes.
	_, err := Compile(`string(event.attributes.s).replace("", string(event.attributes.s)).size() > 0`)
	if err == nil || !strings.Contains(err.Error(), "exceeds the limit") {
		t.Fatalf("Compile err = %v, want the cost limit", err)
	}
	// A loop over a list of up to 1,000 entries is fine, one inside it is not.
	if _, err := Compile(`event.attributes.tags.exists(t, t == "vip")`); err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(`event.attributes.tags.exists(t, event.attributes.tags.exists(u, u == t))`); err == nil {
		t.Fatal("a nested loop over attributes compiled")
	}
}

func TestBoundedByEstimateOnlyForLinearExpressions(t *testing.T) {
	for src, want := range map[string]bool{
		`event.type == "purchase" && event.amount > 50.0 && user.tier == "gold"`:                true,
		`event.attributes.?rating.orValue(0) >= 4`:                                              true,
		`now.getDayOfWeek("Europe/Berlin") in [0, 6] && user.spent_within(duration("24h")) > 1`: true,
		`string(event.attributes.sku).matches("^A[0-9]+$")`:                                     true,
		`event.attributes.tags.exists(t, t == "vip")`:                                           false,
		`string(event.attributes.s).replace("a", "b") == "b"`:                                   false,
		`math.greatest(1, 2) == 2`:                                                              false,
	} {
		ast, iss := celEnv.Compile(src)
		if iss.Err() != nil {
			t.Fatal(iss.Err())
		}
		if got := boundedByEstimate(ast); got != want {
			t.Errorf("boundedByEstimate(%s) = %v, want %v", src, got, want)
		}
	}
}

func validCampaign(id string) campaign.Campaign {
	return campaign.Campaign{
		ID: id, Name: "Campaign " + id, Status: campaign.StatusActive,
		Rule:   `event.type == "purchase"`,
		Reward: campaign.Reward{Type: campaign.RewardPoints, Points: "int(event.amount * 0.1)"},
	}
}

func TestValidateCampaignReportsEveryProblem(t *testing.T) {
	start, end := t0, t0.Add(-time.Hour)
	tests := []struct {
		name   string
		mutate func(c *campaign.Campaign)
		fields []string // expected FieldError fields, in order
	}{
		{"valid campaign passes", func(c *campaign.Campaign) {}, nil},
		{"coupon without points passes", func(c *campaign.Campaign) { c.Reward = campaign.Reward{Type: campaign.RewardCoupon} }, nil},
		{"coupon from a pool passes", func(c *campaign.Campaign) {
			c.Reward = campaign.Reward{Type: campaign.RewardCoupon, Pool: "spring-codes"}
		}, nil},
		{"free shipping from a pool passes", func(c *campaign.Campaign) {
			c.Reward = campaign.Reward{Type: campaign.RewardFreeShipping, Pool: "ship-1"}
		}, nil},
		{"pool only for coupon and free shipping", func(c *campaign.Campaign) { c.Reward.Pool = "spring-codes" }, []string{"reward.pool"}},
		{"pool id must be a slug", func(c *campaign.Campaign) {
			c.Reward = campaign.Reward{Type: campaign.RewardCoupon, Pool: "Spring Codes"}
		}, []string{"reward.pool"}},
		{"bad id", func(c *campaign.Campaign) { c.ID = "Bad_ID" }, []string{"id"}},
		{"id too long", func(c *campaign.Campaign) { c.ID = strings.Repeat("a", 65) }, []string{"id"}},
		{"empty name", func(c *campaign.Campaign) { c.Name = " " }, []string{"name"}},
		{"unknown status", func(c *campaign.Campaign) { c.Status = "live" }, []string{"status"}},
		{"unknown reward type", func(c *campaign.Campaign) { c.Reward.Type = "cash" }, []string{"reward.type"}},
		{"points reward needs points", func(c *campaign.Campaign) { c.Reward.Points = "" }, []string{"reward.points"}},
		{"points only for points rewards", func(c *campaign.Campaign) { c.Reward.Type = campaign.RewardNotification }, []string{"reward.points"}},
		{"ends before starts", func(c *campaign.Campaign) { c.StartsAt, c.EndsAt = &start, &end }, []string{"ends_at"}},
		{"negative limits", func(c *campaign.Campaign) { c.Limits = campaign.Limits{PerUser: -1, TotalPoints: -1} }, []string{"limits.per_user", "limits.total_points"}},
		{"rule and points compile errors carry fields and positions", func(c *campaign.Campaign) {
			c.Rule = "event.amout > 1"
			c.Reward.Points = "event.amount"
		}, []string{"rule", "reward.points"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validCampaign("spring-sale")
			tt.mutate(&c)
			err := ValidateCampaign(&c)
			if tt.fields == nil {
				if err != nil {
					t.Fatalf("ValidateCampaign: %v", err)
				}
				return
			}
			fields := event.Fields(err)
			if len(fields) == 0 {
				t.Fatalf("err = %v, want *event.FieldError", err)
			}
			var got []string
			for _, f := range fields {
				got = append(got, f.Field)
			}
			if !reflect.DeepEqual(got, tt.fields) {
				t.Errorf("fields = %v, want %v (%v)", got, tt.fields, err)
			}
			for _, f := range fields {
				if strings.Contains(tt.name, "compile") && f.Line < 1 {
					t.Errorf("compile problem %+v has no position", f)
				}
			}
		})
	}
}

func TestValidateCampaignReportsRuleIssues(t *testing.T) {
	c := validCampaign("x")
	c.Rule = "event.type == \"purchase\" &&\n  user.tier > 3"
	fields := event.Fields(ValidateCampaign(&c))
	if len(fields) != 1 || fields[0].Field != "rule" || fields[0].Line != 2 || fields[0].Column != 13 {
		t.Errorf("fields = %+v, want one rule issue at 2:13", fields)
	}
}

func TestNewRuleSetKeepsActiveValidCampaignsInPriorityOrder(t *testing.T) {
	a, b, c, d := validCampaign("b-low"), validCampaign("a-high"), validCampaign("c-high"), validCampaign("paused")
	a.Priority, b.Priority, c.Priority, d.Priority = 1, 10, 10, 100
	d.Status = campaign.StatusPaused
	bad := validCampaign("bad")
	bad.Rule = "event.nope"
	dup := validCampaign("a-high")
	rs, errs := NewRuleSet([]campaign.Campaign{a, b, bad, c, d, dup})
	if len(errs) != 2 {
		t.Fatalf("errs = %v, want 2 (bad rule, duplicate)", errs)
	}
	if len(event.Fields(errs[0])) == 0 || !strings.Contains(errs[0].Error(), "bad") {
		t.Errorf("errs[0] = %v, want field errors naming the campaign", errs[0])
	}
	var ids []string
	for _, c := range rs.Campaigns() {
		ids = append(ids, c.ID)
	}
	if want := []string{"a-high", "c-high", "b-low"}; !reflect.DeepEqual(ids, want) || rs.Len() != 3 {
		t.Errorf("order = %v, want %v", ids, want)
	}
}

func matchIDs(ms []campaign.Match) []string {
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.Campaign.ID)
	}
	return ids
}

func TestEvaluate(t *testing.T) {
	at := func(d time.Duration) *time.Time { x := t0.Add(d); return &x }
	tests := []struct {
		name      string
		campaigns func() []campaign.Campaign
		in        func(in *Input)
		want      []string
		wantErrs  []string
	}{
		{"matches in priority order with points", func() []campaign.Campaign {
			a, b := validCampaign("a"), validCampaign("b")
			b.Priority = 5
			return []campaign.Campaign{a, b}
		}, nil, []string{"b", "a"}, nil},
		{"exclusive match stops lower campaigns", func() []campaign.Campaign {
			a, b, c := validCampaign("a"), validCampaign("b"), validCampaign("c")
			a.Priority, b.Priority = 10, 5
			b.Exclusive = true
			return []campaign.Campaign{a, b, c}
		}, nil, []string{"a", "b"}, nil},
		{"exclusive campaign that does not match stops nothing", func() []campaign.Campaign {
			a, b := validCampaign("a"), validCampaign("b")
			a.Priority, a.Exclusive, a.Rule = 10, true, "false"
			return []campaign.Campaign{a, b}
		}, nil, []string{"b"}, nil},
		{"schedule window starts inclusive ends exclusive", func() []campaign.Campaign {
			open, notYet, ended, endsNow, startsNow := validCampaign("open"), validCampaign("not-yet"), validCampaign("ended"), validCampaign("ends-now"), validCampaign("starts-now")
			open.StartsAt, open.EndsAt = at(-time.Hour), at(time.Hour)
			notYet.StartsAt = at(time.Second)
			ended.EndsAt = at(-time.Second)
			endsNow.EndsAt = at(0)
			startsNow.StartsAt = at(0)
			return []campaign.Campaign{open, notYet, ended, endsNow, startsNow}
		}, nil, []string{"open", "starts-now"}, nil},
		{"per user limit reached skips", func() []campaign.Campaign {
			a, b := validCampaign("welcome"), validCampaign("other")
			a.Limits.PerUser = 1
			b.Limits.PerUser = 2
			return []campaign.Campaign{a, b}
		}, func(in *Input) { in.User.RewardCounts["other"] = 1 }, []string{"other"}, nil},
		{"per user per day limit reached skips", func() []campaign.Campaign {
			a, b := validCampaign("a"), validCampaign("b")
			a.Limits.PerUserPerDay, b.Limits.PerUserPerDay = 1, 1
			return []campaign.Campaign{a, b}
		}, func(in *Input) {
			in.User.RewardDays = map[string]loyalty.DayCount{"a": {Day: in.Event.OccurredAt.UTC().Format("2006-01-02"), Count: 1},
				"b": {Day: "1999-01-01", Count: 5}}
		}, []string{"b"}, nil},
		{"runtime error is no match and reported", func() []campaign.Campaign {
			a, b := validCampaign("a"), validCampaign("b")
			a.Rule = "event.attributes.missing > 1"
			return []campaign.Campaign{a, b}
		}, nil, []string{"b"}, []string{"a"}},
		{"points error is no match and reported", func() []campaign.Campaign {
			a := validCampaign("a")
			a.Reward.Points = "user.points - 1000"
			return []campaign.Campaign{a}
		}, nil, nil, []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, errs := NewRuleSet(tt.campaigns())
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			in := testInput()
			if tt.in != nil {
				tt.in(in)
			}
			ms, ruleErrs, err := rs.Evaluate(in)
			if err != nil {
				t.Fatal(err)
			}
			if got := matchIDs(ms); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("matches = %v, want %v", got, tt.want)
			}
			for _, m := range ms {
				if m.Points != 6 {
					t.Errorf("match %s points = %d, want 6", m.Campaign.ID, m.Points)
				}
			}
			var errIDs []string
			for _, e := range ruleErrs {
				errIDs = append(errIDs, e.CampaignID)
				if e.Err == nil || errors.Is(e, ErrPanic) {
					t.Errorf("rule error %v", e)
				}
			}
			if !reflect.DeepEqual(errIDs, tt.wantErrs) {
				t.Errorf("rule errors = %v, want %v", ruleErrs, tt.wantErrs)
			}
		})
	}
}

func TestEvaluateNonPointsRewardHasNoPoints(t *testing.T) {
	c := validCampaign("coupon")
	c.Reward = campaign.Reward{Type: campaign.RewardCoupon}
	rs, _ := NewRuleSet([]campaign.Campaign{c})
	ms, _, err := rs.Evaluate(testInput())
	if err != nil || len(ms) != 1 || ms[0].Points != 0 {
		t.Fatalf("Evaluate = %+v, %v", ms, err)
	}
}

func TestEvaluatePanicReturnsErrPanic(t *testing.T) {
	a, b := validCampaign("a"), validCampaign("b")
	a.Rule, a.Priority = "event.attributes.p == 1", 1
	rs, _ := NewRuleSet([]campaign.Campaign{a, b})
	in := testInput()
	in.Event.Attributes["p"] = panicVal{}
	ms, ruleErrs, err := rs.Evaluate(in)
	if !errors.Is(err, ErrPanic) || ms != nil || ruleErrs != nil {
		t.Fatalf("Evaluate = %v, %v, %v; want ErrPanic", ms, ruleErrs, err)
	}
}

func TestEvaluateIsSafeForConcurrentUse(t *testing.T) {
	var cs []campaign.Campaign
	for i := range 10 {
		c := validCampaign(fmt.Sprintf("c%d", i))
		c.Rule = `event.amount > 10 && user.tier == "gold" && event.attributes.rating >= 4`
		cs = append(cs, c)
	}
	rs, _ := NewRuleSet(cs)
	done := make(chan error)
	for range 8 {
		go func() {
			for range 200 {
				ms, _, err := rs.Evaluate(testInput())
				if err != nil || len(ms) != 10 {
					done <- fmt.Errorf("Evaluate = %d matches, %v", len(ms), err)
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		`event.type == "purchase" && event.amount > 50.0 && user.tier == "gold"`,
		`user.purchase_count == 0 || (event.attributes.rating >= 4 && now - user.first_seen < duration("720h"))`,
		`event.amount > 10`, `int(event.amount * 0.1)`, `100`, `event.attributes.items.exists(i, i > 1)`,
		`event.attributes.?x.orValue(1) == 1`, `has(user.first_seen)`, "a\n.b(", `"\u00e9" + 'x'`, `[1,2][3]`,
		`campaign.Event{}`, `type(event)`, `event.attributes.all(k, event.attributes.all(j, true))`,
		`!(event.type in ["a", "b"]) && event.attributes.x > 1`, `[event.type].exists(t, t == "a") || event.type != "b"`,
		`event.attributes.k > 0 ? event.type == "a" : event.type == "b"`,
		`event.attributes.segment == 5 && event.attributes["sku"] in ["a", "b"]`, `event.attributes.k != 2u || !(event.attributes.vip == true)`,
	} {
		f.Add(s)
	}
	in := testInput()
	f.Fuzz(func(t *testing.T, src string) {
		r, err := Compile(src)
		if err != nil {
			var ce *CompileError
			if !errors.As(err, &ce) || len(ce.Issues) == 0 {
				t.Fatalf("error %v is not a *CompileError with issues", err)
			}
			for _, is := range ce.Issues {
				if is.Line < 1 || is.Column < 1 {
					t.Fatalf("issue %+v has a position below 1", is)
				}
			}
			return
		}
		if _, err := r.Eval(in); errors.Is(err, ErrPanic) {
			t.Fatalf("Eval(%q) panicked: %v", src, err)
		}
		checkTypesAreSound(t, r, in)
		_, _ = CompilePoints(src)
	})
}

// checkTypesAreSound evaluates r with in's event as each type its type set leaves out
// (of its literals and two others), and with each attribute it constrains set to each
// value its set leaves out: the rule must be false there, without an error.
func checkTypesAreSound(t *testing.T, r *Rule, in *Input) {
	t.Helper()
	ev := *in.Event
	probe := Input{Event: &ev, User: in.User}
	for _, typ := range append(r.types.names, "purchase", "zz.other") {
		if r.types.contains(typ) {
			continue
		}
		ev.Type = typ
		if ok, err := r.Eval(&probe); ok || err != nil {
			t.Fatalf("%q leaves out type %q but evaluates to %v, %v", r.src, typ, ok, err)
		}
	}
	ev.Type = in.Event.Type
	for k, s := range r.attrs {
		for _, v := range append(valuesOfKeys(s.names), 12345.0, "zz", false) {
			if key, ok := constKey(v); !ok || s.contains(key) { // the index filters scalars only
				continue
			}
			ev.Attributes = maps.Clone(in.Event.Attributes)
			if ev.Attributes == nil {
				ev.Attributes = map[string]any{}
			}
			ev.Attributes[k] = v
			if ok, err := r.Eval(&probe); ok || err != nil {
				t.Fatalf("%q leaves out %s = %#v but evaluates to %v, %v", r.src, k, v, ok, err)
			}
		}
	}
}

// valuesOfKeys turns constKeys back into attribute values.
func valuesOfKeys(keys []string) []any {
	var out []any
	for _, k := range keys {
		switch {
		case k == absBool(true).key():
			out = append(out, true)
		case k == absBool(false).key():
			out = append(out, false)
		case strings.HasPrefix(k, keyPrefix+"n"):
			f, _ := strconv.ParseFloat(k[len(keyPrefix)+1:], 64)
			out = append(out, f)
		default:
			out = append(out, k)
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }
