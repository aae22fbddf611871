package cel

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

func TestRuleKnowsTheEventTypesItCanMatch(t *testing.T) {
	only := func(names ...string) valueSet { return valueSet{kind: setOnly, names: append([]string{}, names...)} }
	except := func(names ...string) valueSet { return valueSet{kind: setExcept, names: names} }
	anyType := valueSet{kind: setAny}
	cases := []struct {
		name string
		rule string
		want valueSet
	}{
		{"an equality names one type", `event.type == "purchase" && event.amount > 50`, only("purchase")},
		{"either side of ==", `"review" == event.type`, only("review")},
		{"in a list", `event.type in ["purchase", "refund"] && true`, only("purchase", "refund")},
		{"or unites", `event.type == "b" || event.type == "a"`, only("a", "b")},
		{"and intersects", `event.type in ["a", "b"] && event.type == "b"`, only("b")},
		{"nested and of ors", `(event.type == "a" || event.type == "b") && (user.points > 1 || event.type == "c") && (event.type == "b" || event.type == "c")`, only("b")},
		{"contradiction matches nothing", `event.type == "a" && event.type == "b"`, only()},
		{"or with an unconstrained side is any", `event.type == "a" || user.points > 3`, anyType},
		{"a rule about the user is any", `user.tier == "gold"`, anyType},
		{"other literals are not types", `event.type == "purchase" && user.tier == "gold"`, only("purchase")},
		{"inequality excludes", `event.type != "a"`, except("a")},
		{"a negated equality excludes", `!(event.type == "a") && user.points > 1`, except("a")},
		{"a negated inequality names", `!(event.type != "a")`, only("a")},
		{"a negated list excludes", `!(event.type in ["a", "b"])`, except("a", "b")},
		{"de Morgan over or", `!(event.type == "a" || event.type == "b")`, except("a", "b")},
		{"de Morgan over and", `!(event.type != "a" && event.type != "b")`, only("a", "b")},
		{"double negation", `!!(event.type == "a")`, only("a")},
		{"a negated unknown is unknown", `!(user.points > 1) || event.type == "a"`, anyType},
		{"conditional on the type", `event.type == "a" ? event.amount > 1.0 : false`, only("a")},
		{"conditional with typed branches", `event.type == "a" ? user.points > 1 : event.type == "b"`, only("a", "b")},
		{"an unknown condition may fail", `event.attributes.x == 1 ? event.type == "a" : false`, anyType},
		{"through a variable", `[event.type].exists(t, t == "purchase")`, only("purchase")},
		{"a literal list of types bound to a variable", `["purchase", "refund"].exists(t, event.type == t)`, only("purchase", "refund")},
		{"all over a literal list", `["a", "b"].all(t, event.type != t)`, except("a", "b")},
		{"a macro over data after the type", `event.type == "purchase" && event.attributes.items.exists(i, i == 1)`, only("purchase")},
		{"a macro over data before the type may hit the cost limit", `event.attributes.items.exists(i, i == 1) && event.type == "purchase"`, anyType},
		{"a costly function before the type may hit the cost limit", `event.attributes.s.replace("x", "y") == "z" && event.type == "a"`, anyType},
		{"a costly function after the type", `event.type == "a" && event.attributes.s.replace("x", "y") == "z"`, only("a")},
		{"errors before the type are absorbed", `event.attributes.rating >= 4 && event.type == "review"`, only("review")},
		{"has before the type", `has(event.attributes.x) && event.type == "a"`, only("a")},
		{"conversions keep the type", `dyn(event.type) == "a" || string(event.type) == "b"`, only("a", "b")},
		{"the type against itself", `event.type == event.type && event.type != "a"`, except("a")},
		{"exists_one counts", `["a"].exists_one(t, event.type == t)`, only("a")},
		{"a non-literal list is not read", `event.type in event.attributes.kinds`, anyType},
		{"a list with an unknown element is not read", `event.type in ["a", event.user_id]`, anyType},
		{"a comparison with data is not read", `event.type == event.attributes.kind`, anyType},
		{"a prefix is not read", `event.type.startsWith("pur")`, anyType},
		{"the engine's own type by name", `event.type == "points.adjust"`, only("points.adjust")},
		{"constant true", `true`, anyType},
		{"constant false", `false || event.type == "a"`, only("a")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Compile(tc.rule)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.types, tc.want) {
				t.Fatalf("types = %+v, want %+v", r.types, tc.want)
			}
			wantTypes := []string(nil)
			if tc.want.kind == setOnly {
				wantTypes = tc.want.names
			}
			if got := r.Types(); !reflect.DeepEqual(got, wantTypes) {
				t.Fatalf("Types() = %#v, want %#v", got, wantTypes)
			}
		})
	}
}

func TestRuleKnowsTheAttributeValuesItCanMatch(t *testing.T) {
	num := func(f float64) string { return absVal{kind: absNumber, f: f}.key() }
	only := func(names ...string) valueSet { return valueSet{kind: setOnly, names: names} }
	except := func(names ...string) valueSet { return valueSet{kind: setExcept, names: names} }
	cases := []struct {
		name string
		rule string
		want map[string]valueSet // nil: no attribute constrained
	}{
		{"the bench campaigns' segment", `event.type == "purchase" && event.attributes.segment == 5 && user.purchase_count >= 0`,
			map[string]valueSet{"segment": only(num(5))}},
		{"an index and a list of int and double", `event.attributes["segment"] in [1, 2.0]`, map[string]valueSet{"segment": only(num(1), num(2))}},
		{"inequality excludes", `event.attributes.segment != 3`, map[string]valueSet{"segment": except(num(3))}},
		{"a bool", `event.attributes.vip == true`, map[string]valueSet{"vip": only(absBool(true).key())}},
		{"strings united", `event.attributes.sku == "B" || event.attributes.sku == "A"`, map[string]valueSet{"sku": only("A", "B")}},
		{"has of a present attribute is true", `has(event.attributes.x) && event.attributes.x == "y"`, map[string]valueSet{"x": only("y")}},
		{"minus zero is zero", `event.attributes.k == -0.0`, map[string]valueSet{"k": only(num(0))}},
		{"unsigned equals the double", `event.attributes.k == 2u`, map[string]valueSet{"k": only(num(2))}},
		{"two attributes in a conjunction", `event.attributes.a == 1 && event.attributes.b == 2`, map[string]valueSet{"a": only(num(1)), "b": only(num(2))}},
		{"a variable over a literal list", `[1, 2].exists(v, event.attributes.k == v)`, map[string]valueSet{"k": only(num(1), num(2))}},
		{"either attribute is neither", `event.attributes.a == 1 || event.attributes.b == 2`, nil},
		{"string() of a number is not the number", `string(event.attributes.k) == "1"`, nil},
		{"an order is not read", `event.attributes.k > 5`, nil},
		{"an integer past 2^53 is not read", `event.attributes.big == 9007199254740993`, nil},
		{"a string that could pass for a number's key is not read", `event.attributes.c == "\u0000n1"`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Compile(tc.rule)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.attrs, tc.want) {
				t.Fatalf("attrs = %+v, want %+v", r.attrs, tc.want)
			}
		})
	}
}

func TestConstKeyMatchesCELEquality(t *testing.T) {
	num := func(f float64) string { return absVal{kind: absNumber, f: f}.key() }
	for _, tc := range []struct {
		v   any
		key string
		ok  bool
	}{
		{5.0, num(5), true}, {5, num(5), true}, {int64(-3), num(-3), true}, {math.Copysign(0, -1), num(0), true},
		{"5", "5", true}, {true, absBool(true).key(), true}, {"\x00n5", "\x00n5", false},
		{[]any{1.0}, "", false}, {map[string]any{}, "", false}, {nil, "", false},
	} {
		key, ok := constKey(tc.v)
		if key != tc.key || ok != tc.ok {
			t.Errorf("constKey(%#v) = %q, %v; want %q, %v", tc.v, key, ok, tc.key, tc.ok)
		}
	}
}

func TestRuleTypesGiveUpPastTheStepBudget(t *testing.T) {
	big := `event.type in [`
	for i := range 1200 {
		big += fmt.Sprintf(`"%d",`, i)
	}
	r, err := Compile(big + `"x"] && event.type != "7"`)
	if err != nil {
		t.Fatal(err)
	}
	if r.types.kind != setOnly || len(r.types.names) != 1200 {
		t.Fatalf("a long list of literal types: types = %v with %d names, want 1200", r.types.kind, len(r.types.names))
	}

	// Unrolling exists over 690 literals for each of them as the type takes millions
	// of steps.
	var b strings.Builder
	b.WriteString(`[`)
	for i := range 690 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"%d"`, i)
	}
	b.WriteString(`].exists(t,t==event.type)`)
	r, err = Compile(b.String())
	if err != nil {
		t.Fatal(err)
	}
	if r.types.kind != setAny {
		t.Fatalf("types = %v, want any past the budget", r.types.kind)
	}
	if !r.Matches("1") || !r.Matches("zzz") || r.Matches("points.adjust") {
		t.Fatal("a rule left as any must match every type outside the engine's own")
	}
}

func TestMatchesKeepsTheEnginesOwnTypesToRulesThatNameThem(t *testing.T) {
	for _, tc := range []struct {
		rule, typ string
		want      bool
	}{
		{`event.type == "points.adjust"`, "points.adjust", true},
		{`event.type == "points.adjust"`, "purchase", false},
		{`event.type != "purchase"`, "points.adjust", false},
		{`event.type != "purchase"`, "signup", true},
		{`event.type != "purchase"`, "purchase", false},
		{`!(event.type != "points.expire")`, "points.expire", true},
		{`true`, "points.expire", false},
		{`true`, "anything", true},
	} {
		r, err := Compile(tc.rule)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Matches(tc.typ); got != tc.want {
			t.Errorf("%s: Matches(%q) = %v, want %v", tc.rule, tc.typ, got, tc.want)
		}
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
