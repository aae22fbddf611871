package cel

import (
	"strings"
	"unicode/utf8"

	celgo "github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
)

// Explanation is a rule split into its top-level clauses, each evaluated on its own, as
// Explain returns it.
type Explanation struct {
	// Operator joins the clauses: "||" when the rule is an or at the top (|| binds
	// loosest), "&&" when it is an and. It is "" when the rule is not split (a single
	// clause, or a top-level conditional a ? b : c, which binds looser still: one clause
	// holding the whole rule) and when the rule does not compile (no clauses).
	Operator string
	// Clauses are the operands of Operator in source order; nested uses of the same
	// operator are flattened, so a || b || c and (a || b) || c are three clauses.
	Clauses []Clause
}

// Clause is one top-level clause of a rule and its value on its own.
type Clause struct {
	// Text is the clause's source, without the whitespace, comments and parentheses
	// around it.
	Text string
	// Line and Column are where Text starts in the rule, 1-based and counting Unicode
	// code points, as in Issue.
	Line, Column int
	// Value is what the clause evaluates to on its own, when Err is nil.
	Value bool
	// Err is the clause's runtime error on its own, as Rule.Eval reports it (such as a
	// missing attribute key); it wraps ErrPanic for a panic inside the evaluator.
	Err error
}

// evalRulePrefix starts every error of Rule.Eval.
const evalRulePrefix = "evaluate rule: "

// Result returns the clause's value as POST /v1/rules/test answers it: true, false, or
// "error: " followed by the message of Err without its "evaluate rule: " prefix (e.g.
// "error: no such key: rating").
func (c Clause) Result() any {
	if c.Err != nil {
		return "error: " + strings.TrimPrefix(c.Err.Error(), evalRulePrefix)
	}
	return c.Value
}

// Explain splits the rule src into its top-level clauses and evaluates each on its own
// against in, to show why a rule does or does not match. The split follows cel-go's
// checked AST: when the root is a call of || (else of &&) its operands are the clauses,
// so operators inside parentheses, string literals and comments never split. Each clause
// is evaluated like a rule (same activation, same runtime cost limit); a clause's runtime
// error is its Err, not a failure of Explain.
//
// A rule that is not split is one clause holding the whole rule. A rule that Compile
// refuses gives an Explanation with no clauses: call Compile for the reasons. A nil in,
// or one without an event, gives every clause the error Rule.Eval would return.
// Explain never panics and is safe for concurrent use.
func Explain(src string, in *Input) (x Explanation) {
	defer func() {
		if p := recover(); p != nil {
			x = Explanation{}
		}
	}()
	ast, _, err := check(fieldRule, src, types.BoolType, "%s")
	if err != nil {
		return Explanation{}
	}
	act, actErr := newActivation(in)
	runes := []rune(src)
	lay, layOK := newLayout(ast.NativeRep(), runes)
	op, spans := splitClauses(ast.NativeRep(), runes, lay, layOK)

	rules := make([]*Rule, len(spans))
	for i, s := range spans {
		prg, err := clauseProgram(ast.NativeRep(), s.expr)
		if err != nil {
			op = "" // not expected: explain the rule as a whole
			break
		}
		rules[i] = &Rule{src: s.text, prg: prg}
	}
	if op == "" {
		prg, err := program(ast)
		if err != nil {
			return Explanation{}
		}
		spans = []clauseSpan{wholeRule(runes, lay, layOK)}
		rules = []*Rule{{src: src, prg: prg}}
	}

	x.Operator = op
	x.Clauses = make([]Clause, len(spans))
	for i, s := range spans {
		c := Clause{Text: s.text}
		c.Line, c.Column = position(runes, s.start)
		if actErr != nil {
			c.Err = actErr
		} else {
			c.Value, c.Err = rules[i].eval(act)
		}
		x.Clauses[i] = c
	}
	return x
}

// clauseSpan is a clause's sub-expression, its text and where the text starts in the
// source, in code points.
type clauseSpan struct {
	expr  celast.Expr
	start int
	text  string
}

// splitClauses returns the top-level operator of the checked AST a of src and its
// flattened operands, or "" and nil when the rule is not split. The operands' extents
// come from the operator positions in a's SourceInfo (the offset range of a || or &&
// call is its operator token): clause i lies between operator i-1 and operator i, and
// lay trims the whitespace, comments and parentheses that are not part of it.
func splitClauses(a *celast.AST, src []rune, lay layout, layOK bool) (string, []clauseSpan) {
	root := a.Expr()
	if root.Kind() != celast.CallKind || !layOK {
		return "", nil
	}
	var op string
	fn := root.AsCall().FunctionName()
	switch fn {
	case operators.LogicalOr:
		op = "||"
	case operators.LogicalAnd:
		op = "&&"
	default:
		return "", nil
	}
	info := a.SourceInfo()
	var leaves []celast.Expr
	var ops []int
	var walk func(e celast.Expr) bool
	walk = func(e celast.Expr) bool {
		if e.Kind() != celast.CallKind || e.AsCall().FunctionName() != fn || len(e.AsCall().Args()) != 2 {
			leaves = append(leaves, e)
			return true
		}
		args := e.AsCall().Args()
		if !walk(args[0]) {
			return false
		}
		r, ok := info.GetOffsetRange(e.ID())
		at := int(r.Start)
		if !ok || at < 0 || at+2 > len(src) || string(src[at:at+2]) != op || len(ops) > 0 && at <= ops[len(ops)-1] {
			return false // not where the parser puts operators: do not guess
		}
		ops = append(ops, at)
		return walk(args[1])
	}
	if !walk(root) || len(leaves) != len(ops)+1 {
		return "", nil
	}
	spans := make([]clauseSpan, len(leaves))
	from := 0
	for i, e := range leaves {
		to := len(src)
		if i < len(ops) {
			to = ops[i]
		}
		s, t := lay.trim(src, from, to)
		if s >= t {
			return "", nil
		}
		spans[i] = clauseSpan{expr: e, start: s, text: string(src[s:t])}
		if i < len(ops) {
			from = ops[i] + 2
		}
	}
	return op, spans
}

// wholeRule is the span of a rule that is not split: all of src, trimmed.
func wholeRule(src []rune, lay layout, layOK bool) clauseSpan {
	s, t := 0, len(src)
	if layOK {
		s, t = lay.trim(src, 0, len(src))
	} else {
		for s < t && isSpace(src[s]) {
			s++
		}
		for t > s && isSpace(src[t-1]) {
			t--
		}
	}
	return clauseSpan{start: s, text: string(src[s:t])}
}

// layout is what Explain needs to know about the characters of a rule between the
// tokens the AST places: which are whitespace or comments, and which parentheses match.
type layout struct {
	gap   []bool // whitespace, or inside a comment
	match []int  // for ( and ): the offset of the matching parenthesis; else -1
}

// newLayout scans src for whitespace, comments and parentheses. It is not a lexer: the
// extents of string and bytes literals, the only tokens that can hide a //, a quote or a
// parenthesis, come from the literal nodes of the AST a (their offset ranges), so
// outside them a // always starts a comment and a ( or ) is always a parenthesis; the
// scan also steps over `quoted` field names. ok is false when the parentheses do not
// balance, which means the literal extents were not what the parser recorded.
func newLayout(a *celast.AST, src []rune) (lay layout, ok bool) {
	n := len(src)
	litEnd := make([]int, n) // for a literal starting at i, the offset after it
	info := a.SourceInfo()
	visit := celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() != celast.LiteralKind {
			return
		}
		r, found := info.GetOffsetRange(e.ID())
		start := int(r.Start)
		if !found || start < 0 || start >= n {
			return
		}
		// Stop is Start plus the token's length in bytes: walk that many bytes of runes.
		end := start
		for bytes := int(r.Stop - r.Start); end < n && bytes > 0; end++ {
			bytes -= max(utf8.RuneLen(src[end]), 1)
		}
		litEnd[start] = max(litEnd[start], end)
	})
	celast.PreOrderVisit(a.Expr(), visit)
	for _, call := range info.MacroCalls() {
		celast.PreOrderVisit(call, visit) // the arguments as written, before expansion
	}

	lay = layout{gap: make([]bool, n), match: make([]int, n)}
	for i := range lay.match {
		lay.match[i] = -1
	}
	var open []int
	for i := 0; i < n; {
		c := src[i]
		switch {
		case litEnd[i] > i:
			i = litEnd[i]
			continue
		case c == '/' && i+1 < n && src[i+1] == '/':
			for ; i < n && src[i] != '\n'; i++ {
				lay.gap[i] = true
			}
			continue
		case c == '`':
			i++
			for i < n && src[i] != '`' {
				i++
			}
			i++
			continue
		}
		switch {
		case isSpace(c):
			lay.gap[i] = true
		case c == '(':
			open = append(open, i)
		case c == ')':
			if len(open) == 0 {
				return layout{}, false
			}
			o := open[len(open)-1]
			open = open[:len(open)-1]
			lay.match[o], lay.match[i] = i, o
		}
		i++
	}
	return lay, len(open) == 0
}

// trim narrows src[from:to] to the clause inside it: it drops whitespace and comments at
// both ends, an opening parenthesis whose match is past to (it groups more than this
// clause), a closing one whose match is before from, and a pair around the whole.
func (l layout) trim(src []rune, from, to int) (int, int) {
	s, t := from, to
	for {
		for s < t && l.gap[s] {
			s++
		}
		for t > s && l.gap[t-1] {
			t--
		}
		switch {
		case s >= t:
			return s, t
		case src[s] == '(' && l.match[s] >= t:
			s++
		case src[t-1] == ')' && l.match[t-1] >= 0 && l.match[t-1] < s:
			t--
		case src[s] == '(' && l.match[s] == t-1:
			s, t = s+1, t-1
		default:
			return s, t
		}
	}
}

// isSpace reports whether c is whitespace to the CEL lexer.
func isSpace(c rune) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}

// position returns the 1-based line and column, in code points, of offset in src.
func position(src []rune, offset int) (line, column int) {
	line, start := 1, 0
	for i, c := range src[:offset] {
		if c == '\n' {
			line, start = line+1, i+1
		}
	}
	return line, offset - start + 1
}

// clauseProgram plans the sub-expression e of the checked rule a on its own. The
// program is built from the checked sub-expression, not from its text: e with the types
// and references the checker recorded for its nodes becomes a checked AST of its own
// (cel-go builds an Ast from a checked AST only through its proto form), and program adds
// the runtime cost limit as for any rule. The work is proportional to the size of e, so
// explaining every clause costs about as much as checking the rule once.
func clauseProgram(a *celast.AST, e celast.Expr) (celgo.Program, error) {
	typeMap, refMap := a.TypeMap(), a.ReferenceMap()
	subTypes := map[int64]*types.Type{}
	subRefs := map[int64]*celast.ReferenceInfo{}
	celast.PreOrderVisit(e, celast.NewExprVisitor(func(n celast.Expr) {
		if t, ok := typeMap[n.ID()]; ok {
			subTypes[n.ID()] = t
		}
		if r, ok := refMap[n.ID()]; ok {
			subRefs[n.ID()] = r
		}
	}))
	sub := celast.NewCheckedAST(celast.NewAST(e, celast.NewSourceInfo(nil)), subTypes, subRefs)
	pb, err := celast.ToProto(sub)
	if err != nil {
		return nil, err
	}
	return program(celgo.CheckedExprToAst(pb))
}
