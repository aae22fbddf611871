package cel

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// Clauses used by the split cases; on testInput() A, B and D are true and C is false.
const (
	clA = `event.amount > 50`
	clB = `user.tier == "gold"`
	clC = `user.points >= 1000`
	clD = `event.currency == "EUR"`
)

// checkClauses fails t unless every clause of x is found in src at its line and column
// and its text compiles on its own to the same expression.
func checkClauses(t *testing.T, src string, x Explanation) {
	t.Helper()
	lines := strings.Split(src, "\n")
	for _, c := range x.Clauses {
		if c.Line < 1 || c.Line > len(lines) || c.Column < 1 {
			t.Fatalf("clause %q at %d:%d is outside the source", c.Text, c.Line, c.Column)
		}
		rest := strings.Join(lines[c.Line-1:], "\n")
		if r := []rune(rest); c.Column-1 > len(r) || !strings.HasPrefix(string(r[c.Column-1:]), c.Text) {
			t.Fatalf("clause %q is not at %d:%d of %q", c.Text, c.Line, c.Column, src)
		}
		if _, iss := celEnv.Compile(c.Text); iss.Err() != nil {
			t.Fatalf("clause %q does not compile on its own: %v", c.Text, iss.Err())
		}
	}
}

func clauseTexts(x Explanation) []string {
	var out []string
	for _, c := range x.Clauses {
		out = append(out, c.Text)
	}
	return out
}

func TestExplainSplitsOnlyAtTheTopLevelOperator(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		op      string
		clauses []string
	}{
		{"top-level && splits", `event.type == "purchase" && event.amount > 50`, "&&",
			[]string{`event.type == "purchase"`, `event.amount > 50`}},
		{"|| binds looser than && so it splits first", clA + ` && ` + clB + ` || ` + clC + ` && ` + clD, "||",
			[]string{clA + ` && ` + clB, clC + ` && ` + clD}},
		{"a group is one clause, without its parentheses",
			`user.purchase_count == 0 || (event.attributes.rating >= 4 && now - user.first_seen < duration("720h"))`, "||",
			[]string{`user.purchase_count == 0`, `event.attributes.rating >= 4 && now - user.first_seen < duration("720h")`}},
		{"a rule wrapped whole is unwrapped", ` ((` + clA + ` && ` + clB + `)) `, "&&", []string{clA, clB}},
		{"parentheses around each clause are left out", `(` + clA + `) && ((` + clB + `))`, "&&", []string{clA, clB}},
		{"parentheses inside a clause stay", `(user.points + 1) * 2 > 10 && event.amount > (1.0 + 2.0)`, "&&",
			[]string{`(user.points + 1) * 2 > 10`, `event.amount > (1.0 + 2.0)`}},
		{"a group at the start of a clause stays", `(user.points + 1) > 2 && (event.amount) > 1`, "&&",
			[]string{`(user.points + 1) > 2`, `(event.amount) > 1`}},
		{"nested same operators are flattened", clA + ` || ` + clB + ` || ` + clC + ` || ` + clD, "||",
			[]string{clA, clB, clC, clD}},
		{"grouped same operators are flattened", `(` + clA + ` || ` + clB + `) || (` + clC + ` || (` + clD + `))`, "||",
			[]string{clA, clB, clC, clD}},
		{"another operator inside a group is not split", clA + ` && (` + clB + ` || ` + clC + `)`, "&&",
			[]string{clA, clB + ` || ` + clC}},
		{"operators in double-quoted strings do not count", `event.type == "a && b" && ` + clB, "&&",
			[]string{`event.type == "a && b"`, clB}},
		{"escaped quotes stay inside the string", `event.type == "say \"&&\"" && ` + clB, "&&",
			[]string{`event.type == "say \"&&\""`, clB}},
		{"operators in single-quoted strings do not count", `event.type == 'a || b'`, "", []string{`event.type == 'a || b'`}},
		{"raw strings end at the quote", `event.type == r"\" && ` + clB, "&&", []string{`event.type == r"\"`, clB}},
		{"triple-quoted strings span quotes and lines", "event.type == \"\"\"a \" &&\nb\"\"\" && " + clB, "&&",
			[]string{"event.type == \"\"\"a \" &&\nb\"\"\"", clB}},
		{"parentheses and comment marks in strings do not count", `event.type == "(" && event.id == "http://x)"`, "&&",
			[]string{`event.type == "("`, `event.id == "http://x)"`}},
		{"strings inside macros are known too", `event.attributes.items.exists(i, string(i) == ")(") && ` + clB, "&&",
			[]string{`event.attributes.items.exists(i, string(i) == ")(")`, clB}},
		{"code points after non-ASCII strings line up", `event.type == "é && ü" && (` + clB + `)`, "&&",
			[]string{`event.type == "é && ü"`, clB}},
		{"quoted field names are not comments", "event.attributes.`a//b` == 1 && " + clB, "&&",
			[]string{"event.attributes.`a//b` == 1", clB}},
		{"brackets and braces nest", `[` + clA + ` && ` + clB + `, ` + clC + `][0] && {"k": ` + clC + ` || ` + clD + `}.k`, "&&",
			[]string{`[` + clA + ` && ` + clB + `, ` + clC + `][0]`, `{"k": ` + clC + ` || ` + clD + `}.k`}},
		{"comments do not count and are left out", clA + " && // " + clB + " || (\n" + clD, "&&", []string{clA, clD}},
		{"a comment before an operator is left out", clA + " // ) or \" \n&& " + clD + " // end", "&&", []string{clA, clD}},
		{"a comment inside a clause stays", "(" + clA + " // big\n  && " + clB + ") || " + clC, "||",
			[]string{clA + " // big\n  && " + clB, clC}},
		{"a top-level conditional is not split", clA + ` && ` + clB + ` ? ` + clC + ` : ` + clD, "",
			[]string{clA + ` && ` + clB + ` ? ` + clC + ` : ` + clD}},
		{"a negated group is not split", `!(` + clA + ` && ` + clB + `)`, "", []string{`!(` + clA + ` && ` + clB + `)`}},
		{"optional selection is not a conditional", `event.attributes.?rating.orValue(0) > 3 && ` + clB, "&&",
			[]string{`event.attributes.?rating.orValue(0) > 3`, clB}},
		{"a lone clause is one clause", ` event.amount > 50 `, "", []string{`event.amount > 50`}},
		{"a lone clause is unwrapped", `( (event.amount > 50) ) // why`, "", []string{`event.amount > 50`}},
		{"has() and functions keep their names", `has(user.first_seen) && int(event.amount) > 3 && math.greatest(1, 2) == 2`, "&&",
			[]string{`has(user.first_seen)`, `int(event.amount) > 3`, `math.greatest(1, 2) == 2`}},
		{"an unterminated string has no clauses", `event.type == "a && b`, "", nil},
		{"unbalanced parentheses have no clauses", `(` + clA + ` && ` + clB, "", nil},
		{"an empty side has no clauses", clA + ` && `, "", nil},
		{"an undeclared name has no clauses", `a && b`, "", nil},
		{"a rule that is not boolean has no clauses", `event.amount`, "", nil},
		{"an empty rule has no clauses", ` `, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := Explain(tt.src, testInput())
			if x.Operator != tt.op || !reflect.DeepEqual(clauseTexts(x), tt.clauses) {
				t.Fatalf("Explain(%q) = %q %q, want %q %q", tt.src, x.Operator, clauseTexts(x), tt.op, tt.clauses)
			}
			checkClauses(t, tt.src, x)
		})
	}
}

func TestExplainPlacesEachClauseAtItsLineAndColumn(t *testing.T) {
	type pos struct{ line, column int }
	tests := []struct {
		name string
		src  string
		want []pos
	}{
		{"one line", clA + ` && ` + clB, []pos{{1, 1}, {1, len(clA) + 5}}},
		{"leading space and parentheses", `  ( ` + clA + `)`, []pos{{1, 5}}},
		{"later lines", "event.type == \"purchase\" &&\n  (" + clA + " &&\n\t" + clB + ")", []pos{{1, 1}, {2, 4}, {3, 2}}},
		{"CRLF line ends", clA + " &&\r\n  " + clB, []pos{{1, 1}, {2, 3}}},
		{"columns count code points", `"é" == event.type || ` + clB, []pos{{1, 1}, {1, 22}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := Explain(tt.src, testInput())
			var got []pos
			for _, c := range x.Clauses {
				got = append(got, pos{c.Line, c.Column})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("positions = %v, want %v (%q)", got, tt.want, clauseTexts(x))
			}
			checkClauses(t, tt.src, x)
		})
	}
}

func TestExplainEvaluatesEachClauseOnItsOwn(t *testing.T) {
	// As POST /v1/rules/test sees it: a stored gold user with three purchases.
	firstSeen := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	purchase := func(amount float64) *event.Event {
		return &event.Event{ID: "order-1", UserID: "alice", Type: "purchase", Amount: amount, Currency: "EUR",
			OccurredAt: time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC), Attributes: map[string]any{"category": "shoes", "vip": true}}
	}
	gold := &loyalty.User{Tier: "gold", PurchaseCount: 3, TotalSpent: 300, FirstSeen: firstSeen, EventCounts: map[string]int64{"purchase": 3}}
	rule := `event.type == "purchase" && event.amount > 50 && user.tier == "gold"`
	big := purchase(1)
	big.Attributes["big"] = func() []any {
		out := make([]any, 50000)
		for i := range out {
			out[i] = float64(i)
		}
		return out
	}()

	tests := []struct {
		name    string
		rule    string
		in      *Input
		op      string
		results []any
	}{
		{"every clause of a match is true", rule, &Input{Event: purchase(120), User: gold}, "&&", []any{true, true, true}},
		{"the failing && clause is false", rule, &Input{Event: purchase(20), User: gold}, "&&", []any{true, false, true}},
		{"a user never seen is empty", rule, &Input{Event: purchase(120)}, "&&", []any{true, true, false}},
		{"the given user is the one evaluated", rule, &Input{Event: purchase(120), User: &loyalty.User{Tier: "silver"}}, "&&", []any{true, true, false}},
		{"a missing attribute is the clause's error", `event.attributes.rating >= 4 || user.purchase_count > 10`,
			&Input{Event: purchase(1), User: gold}, "||", []any{"error: no such key: rating", false}},
		{"a rule that is one clause is evaluated whole", `true`, &Input{Event: purchase(1), User: gold}, "", []any{true}},
		{"history and now feed the clauses",
			`user.purchase_count == 3 && now - user.first_seen > duration("720h") && event.attributes.category in ["shoes", "bags"]`,
			&Input{Event: purchase(1), User: gold}, "&&", []any{true, true, true}},
		{"a dynamic clause is evaluated", `event.attributes.vip && event.attributes.category`,
			&Input{Event: purchase(1), User: gold}, "&&", []any{true, "error: result is string, not bool"}},
		{"a runaway clause stops at the runtime cost limit", `event.attributes.big.exists(i, i < 0.0) || true`,
			&Input{Event: big, User: gold}, "||", []any{"error: operation cancelled: actual cost limit exceeded", true}},
		{"an input without an event fails every clause", rule, &Input{}, "&&",
			[]any{"error: input has no event", "error: input has no event", "error: input has no event"}},
		{"a nil input fails every clause", rule, nil, "&&",
			[]any{"error: input has no event", "error: input has no event", "error: input has no event"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := Explain(tt.rule, tt.in)
			var results []any
			for _, c := range x.Clauses {
				results = append(results, c.Result())
			}
			if x.Operator != tt.op || !reflect.DeepEqual(results, tt.results) {
				t.Fatalf("Explain = %q %v, want %q %v", x.Operator, results, tt.op, tt.results)
			}
		})
	}
}

func TestExplainClauseErrorsAreRuleErrors(t *testing.T) {
	panicky := testInput()
	panicky.Event.Attributes["p"] = panicVal{}
	x := Explain(`event.attributes.p == 1 || `+clA, panicky)
	if len(x.Clauses) != 2 || !errors.Is(x.Clauses[0].Err, ErrPanic) || x.Clauses[1].Err != nil || !x.Clauses[1].Value {
		t.Fatalf("Explain = %+v, want a panic in the first clause only", x)
	}
}

func TestExplainIsSafeForConcurrentUse(t *testing.T) {
	in := testInput()
	done := make(chan Explanation)
	for range 8 {
		go func() { done <- Explain(clA+` && (`+clB+` || `+clC+`)`, in) }()
	}
	for range 8 {
		if x := <-done; len(x.Clauses) != 2 || x.Clauses[0].Result() != true || x.Clauses[1].Result() != true {
			t.Errorf("Explain = %+v", x)
		}
	}
}

func FuzzExplain(f *testing.F) {
	for _, s := range []string{
		`event.type == "purchase" && event.amount > 50.0 && user.tier == "gold"`,
		`user.purchase_count == 0 || (event.attributes.rating >= 4 && now - user.first_seen < duration("720h"))`,
		` ((event.amount > 1 && true)) `, "true && // x || (\nfalse", `event.type == "a && b" || r"\" == ""`,
		"\"\"\"a \" &&\nb\"\"\" == '' && true", `true ? false : true`, `!(true || false)`, "event.attributes.`a//b` == 1 && true",
		`(event.amount) > 1 && ((true) || (false))`, `event.attributes.items.exists(i, i == ")") && true`, `"é" == "é" || true`,
		"true &&\r\n false", `event.attributes.?x.orValue(1) == 1 && has(user.first_seen)`, `a && `, `(true`,
	} {
		f.Add(s)
	}
	in := testInput()
	f.Fuzz(func(t *testing.T, src string) {
		x := Explain(src, in)
		r, err := Compile(src)
		switch {
		case err != nil:
			if x.Operator != "" || len(x.Clauses) != 0 {
				t.Fatalf("Explain(%q) = %+v for a rule that does not compile", src, x)
			}
			return
		case x.Operator == "" && len(x.Clauses) != 1, x.Operator != "" && len(x.Clauses) < 2:
			t.Fatalf("Explain(%q) = %q with %d clauses", src, x.Operator, len(x.Clauses))
		case x.Operator != "" && x.Operator != "&&" && x.Operator != "||":
			t.Fatalf("Explain(%q) operator %q", src, x.Operator)
		}
		checkClauses(t, src, x)
		matched, err := r.Eval(in)
		for _, c := range x.Clauses {
			switch {
			case errors.Is(c.Err, ErrPanic):
				t.Fatalf("clause %q panicked: %v", c.Text, c.Err)
			case err == nil && x.Operator == "&&" && matched && (c.Err != nil || !c.Value):
				t.Fatalf("%q matched but its clause %q is %v", src, c.Text, c.Result())
			case err == nil && x.Operator == "||" && !matched && (c.Err != nil || c.Value):
				t.Fatalf("%q did not match but its clause %q is %v", src, c.Text, c.Result())
			}
			// The program built from the sub-expression agrees with the clause's text.
			if cr, cerr := Compile(c.Text); cerr == nil && x.Operator != "" {
				v, verr := cr.Eval(in)
				if got, want := c.Result(), (Clause{Value: v, Err: verr}).Result(); got != want {
					t.Fatalf("clause %q of %q is %v, its text compiled alone %v", c.Text, src, got, want)
				}
			}
		}
	})
}
