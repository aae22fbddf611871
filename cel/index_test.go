package cel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// ruleGen writes random rules over a few event types, mixing type tests with tests
// that fail at run time (missing attributes), comprehensions and costly functions.
type ruleGen struct{ r *rand.Rand }

var genTypes = []string{"purchase", "refund", "signup", "view", "points.adjust"}

func (g ruleGen) typ() string { return genTypes[g.r.IntN(len(genTypes))] }

func (g ruleGen) atom() string {
	if g.r.IntN(3) == 0 {
		return g.attributeAtom()
	}
	switch g.r.IntN(16) {
	case 0:
		return fmt.Sprintf(`event.type == %q`, g.typ())
	case 1:
		return fmt.Sprintf(`%q == event.type`, g.typ())
	case 2:
		return fmt.Sprintf(`event.type != %q`, g.typ())
	case 3:
		return fmt.Sprintf(`event.type in [%q, %q]`, g.typ(), g.typ())
	case 4:
		return fmt.Sprintf(`event.amount > %d.0`, g.r.IntN(100))
	case 5:
		return fmt.Sprintf(`event.attributes.k == %d`, g.r.IntN(3)) // fails without k
	case 6:
		return `user.tier == "gold"`
	case 7:
		return `has(event.attributes.k)`
	case 8:
		return fmt.Sprintf(`[event.type].exists(t, t == %q)`, g.typ())
	case 9:
		return fmt.Sprintf(`[%q, %q].exists(t, event.type == t)`, g.typ(), g.typ())
	case 10:
		return fmt.Sprintf(`[%q, %q].all(t, event.type != t)`, g.typ(), g.typ())
	case 11:
		return `event.attributes.items.exists(i, i > 1)` // fails without items
	case 12:
		return fmt.Sprintf(`dyn(event.type) == %q`, g.typ())
	case 13:
		if g.r.IntN(2) == 0 {
			return `event.attributes.s.replace("a", "b") == "bb"` // fails without s
		}
		return `event.attributes.s.lowerAscii() == "x"` // over the cost limit with bigString
	case 14:
		return `(event.attributes.k > 0 ? event.type == "purchase" : user.points > 5)`
	}
	return []string{"true", "false"}[g.r.IntN(2)]
}

// attributeAtom tests attributes k (numbers), c (strings) and b (bools), which the
// events carry or not, with values of their own type or another.
func (g ruleGen) attributeAtom() string {
	n := func() string { return []string{"0", "1", "2", "1.0", "2u", "-0.0", "1.5"}[g.r.IntN(7)] }
	switch g.r.IntN(13) {
	case 11:
		return `event.attributes.c != ` + n() // a string c is never a number
	case 0:
		return `event.attributes.k == ` + n()
	case 1:
		return `event.attributes["k"] in [` + n() + `, ` + n() + `]`
	case 2:
		return `event.attributes.k != ` + n()
	case 3:
		return fmt.Sprintf(`event.attributes.c == %q`, []string{"x", "y", "1"}[g.r.IntN(3)])
	case 4:
		return `event.attributes.b == ` + []string{"true", "false"}[g.r.IntN(2)]
	case 5:
		return `has(event.attributes.c)`
	case 6:
		return `string(event.attributes.k) == "1"`
	case 7:
		return `dyn(event.attributes.k) == ` + n()
	case 8:
		return `[1, 2].exists(v, event.attributes.k == v)`
	case 9:
		return `event.attributes.c in ["x", "1"] || event.attributes.k == 1`
	case 10:
		return `event.attributes.k > 0`
	}
	return `!(event.attributes.b)`
}

func (g ruleGen) rule(depth int) string {
	if depth == 0 || g.r.IntN(3) == 0 {
		return g.atom()
	}
	switch g.r.IntN(4) {
	case 0:
		return "!(" + g.rule(depth-1) + ")"
	case 1:
		return "(" + g.rule(depth-1) + " && " + g.rule(depth-1) + ")"
	case 2:
		return "(" + g.rule(depth-1) + " || " + g.rule(depth-1) + ")"
	}
	return "(" + g.rule(depth-1) + " ? " + g.rule(depth-1) + " : " + g.rule(depth-1) + ")"
}

func (g ruleGen) campaigns(n int) []campaign.Campaign {
	cs := make([]campaign.Campaign, n)
	for i := range cs {
		cs[i] = validCampaign(fmt.Sprintf("c%03d", i))
		cs[i].Rule = g.rule(4)
		cs[i].Priority = g.r.IntN(4)
		cs[i].Exclusive = g.r.IntN(10) == 0
		if g.r.IntN(3) == 0 {
			cs[i].Reward.Points = `int(event.attributes.k) + 1` // fails without k
		}
	}
	return cs
}

func (g ruleGen) input() *Input {
	types := append([]string{"review", "points.expire", "points.future"}, genTypes...)
	attrs := map[string]any{}
	pick := func(vs ...any) any { return vs[g.r.IntN(len(vs))] }
	if g.r.IntN(4) > 0 {
		attrs["k"] = pick(0.0, 1.0, 2.0, 1.5, math.Copysign(0, -1), "1", true, []any{1.0}, nil)
	}
	if g.r.IntN(2) == 0 {
		attrs["c"] = pick("x", "y", "1", 1.0, "\x00n1")
	}
	if g.r.IntN(2) == 0 {
		attrs["b"] = pick(true, false, "true")
	}
	if g.r.IntN(2) == 0 {
		attrs["items"] = []any{float64(g.r.IntN(3))}
	}
	// A string past the bounds ingress enforces stops lowerAscii at RuntimeCostLimit, an
	// error the index must not hide either. (A comprehension stopped there takes ~40 ms.)
	switch g.r.IntN(20) {
	case 0, 1, 2, 3, 4, 5, 6, 7:
		attrs["s"] = strings.Repeat("a", g.r.IntN(3))
	case 8:
		attrs["s"] = bigString
	}
	u := &loyalty.User{Points: int64(g.r.IntN(10))}
	if g.r.IntN(2) == 0 {
		u.Tier = "gold"
	}
	return &Input{
		Event: &event.Event{ID: "e", UserID: "u", Type: types[g.r.IntN(len(types))], Amount: float64(g.r.IntN(100)), OccurredAt: t0, Attributes: attrs},
		User:  u,
	}
}

var bigString = strings.Repeat("A", 100<<10)

type evalResult struct {
	Matches  []string
	Points   []int64
	RuleErrs []string
	Err      string
}

func resultOf(ms []campaign.Match, ruleErrs []EvalError, err error) evalResult {
	var r evalResult
	for _, m := range ms {
		r.Matches = append(r.Matches, m.Campaign.ID)
		r.Points = append(r.Points, m.Points)
	}
	for _, e := range ruleErrs {
		r.RuleErrs = append(r.RuleErrs, e.Error())
	}
	if err != nil {
		r.Err = err.Error()
	}
	return r
}

func TestTypeIndexNeverChangesWhatEvaluateReturns(t *testing.T) {
	g := ruleGen{r: rand.New(rand.NewPCG(15, 4))}
	skipped, evaluated, attrIndexed := 0, 0, 0
	for set := range 15 {
		rs, errs := NewRuleSet(g.campaigns(40))
		if len(errs) > 0 {
			t.Fatalf("set %d: %v", set, errs)
		}
		attrIndexed += len(rs.byAttr)
		for range 60 {
			in := g.input()
			want := resultOf(rs.evaluateAll(in))
			got := resultOf(rs.Evaluate(in))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("set %d, event type %q attributes %v: with the index %+v, without %+v\nrules: %v",
					set, in.Event.Type, in.Event.Attributes, got, want, rules(rs))
			}
			n := len(rs.candidates(in.Event))
			evaluated += n
			skipped += rs.Len() - n
		}
	}
	if skipped == 0 || attrIndexed == 0 {
		t.Fatalf("the index skipped %d rules, with %d attribute indexes: the test does not exercise it", skipped, attrIndexed)
	}
	t.Logf("the index left out %d of %d rule evaluations (%d attribute indexes)", skipped, skipped+evaluated, attrIndexed)
}

func rules(rs *RuleSet) []string {
	var out []string
	for i := range rs.compiled {
		out = append(out, rs.compiled[i].Campaign.ID+": "+rs.compiled[i].Campaign.Rule)
	}
	return out
}

func TestTypeIndexListsCampaignsInEvaluationOrder(t *testing.T) {
	mk := func(id, rule string, prio int) campaign.Campaign {
		c := validCampaign(id)
		c.Rule, c.Priority = rule, prio
		return c
	}
	rs, errs := NewRuleSet([]campaign.Campaign{
		mk("a-purchase", `event.type == "purchase"`, 1),
		mk("b-any", `user.points >= 0`, 5),
		mk("c-not-purchase", `event.type != "purchase"`, 3),
		mk("d-adjust", `event.type == "points.adjust"`, 0),
		mk("e-signup-or-purchase", `event.type in ["signup", "purchase"]`, 9),
	})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	ids := func(typ string) []string {
		var out []string
		for _, i := range rs.candidates(&event.Event{Type: typ}) {
			out = append(out, rs.compiled[i].Campaign.ID)
		}
		return out
	}
	for typ, want := range map[string][]string{
		"purchase":      {"e-signup-or-purchase", "b-any", "a-purchase"},
		"signup":        {"e-signup-or-purchase", "b-any", "c-not-purchase"},
		"view":          {"b-any", "c-not-purchase"},
		"points.adjust": {"d-adjust"},
		"points.expire": nil,
	} {
		if got := ids(typ); !reflect.DeepEqual(got, want) {
			t.Errorf("candidates(%q) = %v, want %v", typ, got, want)
		}
	}
}

func TestNewRuleSetFromCompilesOnlyWhatChanged(t *testing.T) {
	cs := ruleGen{r: rand.New(rand.NewPCG(7, 7))}.campaigns(30)
	cs[3].Status = campaign.StatusPaused
	prev, errs := NewRuleSet(cs)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	changed := slices.Clone(cs)
	changed[5].Rule = `event.type == "signup"`
	changed[3].Status = campaign.StatusActive // its rule was compiled while paused
	next, errs := NewRuleSetFrom(prev, changed)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for i := range next.compiled {
		c := &next.compiled[i]
		old, reused := prev.exprs.rules[c.Campaign.Rule]
		if c.Campaign.ID == changed[5].ID {
			if reused {
				t.Errorf("%s: the changed rule was found compiled", c.Campaign.ID)
			}
			continue
		}
		if !reused || old != c.rule {
			t.Errorf("%s: rule compiled again", c.Campaign.ID)
		}
	}
	if next.exprs.prev != nil {
		t.Error("the new set keeps the previous one's cache alive")
	}
	fresh, _ := NewRuleSet(changed)
	g := ruleGen{r: rand.New(rand.NewPCG(8, 8))}
	for range 200 {
		in := g.input()
		if got, want := resultOf(next.Evaluate(in)), resultOf(fresh.Evaluate(in)); !reflect.DeepEqual(got, want) {
			t.Fatalf("reused set %+v, fresh set %+v", got, want)
		}
	}
}
