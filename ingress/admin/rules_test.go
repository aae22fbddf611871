package admin

import (
	"reflect"
	"testing"
)

func TestSplitClausesOnlyAtTopLevelOperators(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		op      string
		clauses []string
	}{
		{"top-level && splits", `event.type == "purchase" && event.amount > 50`, "&&",
			[]string{`event.type == "purchase"`, `event.amount > 50`}},
		{"|| binds looser than && so it splits first", `a && b || c && d`, "||", []string{`a && b`, `c && d`}},
		{"parentheses group", `user.purchase_count == 0 || (event.attributes.rating >= 4 && now - user.first_seen < duration("720h"))`, "||",
			[]string{`user.purchase_count == 0`, `(event.attributes.rating >= 4 && now - user.first_seen < duration("720h"))`}},
		{"a rule wrapped whole is unwrapped", ` ((a && b)) `, "&&", []string{"a", "b"}},
		{"(a) && (b) is not wrapped whole", `(a) && (b)`, "&&", []string{"(a)", "(b)"}},
		{"operators in double-quoted strings do not count", `x == "a && b" && y`, "&&", []string{`x == "a && b"`, "y"}},
		{"escaped quotes stay inside the string", `x == "say \"&&\"" && y`, "&&", []string{`x == "say \"&&\""`, "y"}},
		{"operators in single-quoted strings do not count", `x == 'a || b'`, "", []string{`x == 'a || b'`}},
		{"raw strings end at the quote", `x == r"\" && y`, "&&", []string{`x == r"\"`, "y"}},
		{"triple-quoted strings span quotes and lines", "x == \"\"\"a \" &&\nb\"\"\" && y", "&&", []string{"x == \"\"\"a \" &&\nb\"\"\"", "y"}},
		{"brackets and braces nest", `[a && b, c][0] && {"k": d || e}.k`, "&&", []string{`[a && b, c][0]`, `{"k": d || e}.k`}},
		{"comments do not count", "a && // b || c\nd", "&&", []string{"a", "// b || c\nd"}},
		{"a top-level conditional is not split", `a && b ? c : d`, "", []string{`a && b ? c : d`}},
		{"optional selection is not a conditional", `event.attributes.?rating.orValue(0) > 3 && y`, "&&",
			[]string{`event.attributes.?rating.orValue(0) > 3`, "y"}},
		{"a lone clause is one clause", `event.amount > 50`, "", []string{`event.amount > 50`}},
		{"an unterminated string is not split", `x == "a && b`, "", []string{`x == "a && b`}},
		{"unbalanced parentheses are not split", `(a && b`, "", []string{`(a && b`}},
		{"an empty side is not split", `a && `, "", []string{`a &&`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op, clauses := splitClauses(tt.src)
			if op != tt.op || !reflect.DeepEqual(clauses, tt.clauses) {
				t.Fatalf("splitClauses(%q) = %q %q, want %q %q", tt.src, op, clauses, tt.op, tt.clauses)
			}
		})
	}
}
