package cel

import (
	"errors"
	"fmt"
	"strings"

	celgo "github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/overloads"
	"github.com/google/cel-go/common/types"
)

// MaxCost is the highest estimated cost a rule or points expression may have. The
// estimate assumes the size bounds of the event contract (at most 256 entries in any
// object or list of event.attributes, strings no longer than the 64 KiB event, ids of at
// most 128 chars, ...), which ingress enforces. Ordinary rules cost well under 100; a
// comprehension nested inside another over event.attributes is over the limit.
const MaxCost = 10_000

// RuntimeCostLimit stops an evaluation whose actual cost runs away: an input the
// estimate could not bound (a user's history), or a function whose cost cel-go cannot
// estimate from the sizes of its arguments (such as replace, whose result can be the
// square of its input). Going over it is an evaluation error naming the limit, never a
// panic. It is kept low because cel-go's cost tracker is quadratic in the number of
// comprehension steps.
const RuntimeCostLimit = 2 * MaxCost

// Fields named by CompileError and FieldError.
const (
	fieldRule   = "rule"
	fieldPoints = "reward.points"
)

// ErrPanic is wrapped by evaluation errors that come from a panic inside the evaluator
// rather than from the data (such as a missing attribute key). Callers park the event in
// the dead-letter stream instead of treating it as no match.
var ErrPanic = errors.New("cel: panic during evaluation")

// Issue is one problem found in a rule or points expression. Line and Column are 1-based
// and count Unicode code points.
type Issue struct {
	Message string `json:"message"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	// Snippet is the source line with a caret under Column (see Snippet).
	Snippet string `json:"snippet,omitempty"`
}

// CompileError is returned by Compile and CompilePoints when an expression does not parse,
// does not type-check, has the wrong result type or costs too much. Field is "rule" or
// "reward.points" when known.
type CompileError struct {
	Field  string
	Issues []Issue
}

// Error lists the issues as "field:line:column: message" separated by semicolons.
func (e *CompileError) Error() string {
	var b strings.Builder
	for i, is := range e.Issues {
		if i > 0 {
			b.WriteString("; ")
		}
		if e.Field != "" {
			b.WriteString(e.Field)
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%d:%d: %s", is.Line, is.Column, is.Message)
	}
	if len(e.Issues) == 0 {
		b.WriteString("invalid expression")
	}
	return b.String()
}

// Rule is a compiled boolean campaign rule. It is immutable and safe for concurrent use.
type Rule struct {
	src  string
	prg  celgo.Program
	cost uint64
	// types are the event types the rule can be true for, from its checked AST.
	types valueSet
	// attrs are, per attribute the rule compares, the values it can be true for.
	attrs map[string]valueSet
}

// Points is a compiled integer points expression. It is immutable and safe for
// concurrent use.
type Points struct {
	src  string
	prg  celgo.Program
	cost uint64
}

// Compile type-checks src as a boolean rule over event, user and now and prepares it for
// evaluation. It returns a *CompileError (Field "rule") when src does not parse or
// type-check, is not boolean or has an estimated cost over MaxCost.
func Compile(src string) (*Rule, error) {
	prg, cost, ast, err := compileAST(fieldRule, src, types.BoolType,
		"rule must be a boolean expression, got %s (compare dynamic values, e.g. event.attributes.vip == true)")
	if err != nil {
		return nil, withSnippets(err, src)
	}
	e, limited := ast.NativeRep().Expr(), !boundedByEstimate(ast)
	return &Rule{src: src, prg: prg, cost: cost, types: ruleTypes(e, limited), attrs: ruleAttributes(e, limited)}, nil
}

// CompilePoints type-checks src as an integer points expression over event, user and now,
// such as "int(event.amount * 0.1)" or "100". It returns a *CompileError (Field
// "reward.points") when src does not parse or type-check, is not an int (a double is
// refused: wrap it in int(...)) or has an estimated cost over MaxCost.
func CompilePoints(src string) (*Points, error) {
	prg, cost, ast, err := compileAST(fieldPoints, src, types.IntType,
		"points must be an integer expression, got %s (wrap it in int(...))")
	if err != nil {
		return nil, withSnippets(err, src)
	}
	p := &Points{src: src, prg: prg, cost: cost}
	if err := p.checkConstant(ast); err != nil {
		return nil, err
	}
	return p, nil
}

// checkConstant evaluates a points expression that reads none of event, user and now
// ("100", "1/0", "-100") once, so one that can only fail or grant nothing is refused
// when it is saved rather than at every event.
func (p *Points) checkConstant(ast *celgo.Ast) error {
	if readsVariables(ast) {
		return nil
	}
	if _, err := p.eval(&activation{}); err != nil {
		msg := strings.TrimPrefix(err.Error(), "evaluate points: ")
		return &CompileError{Field: fieldPoints, Issues: []Issue{{
			Message: "the expression is constant and always fails: " + msg, Line: 1, Column: 1,
			Snippet: Snippet(p.src, 1, 1),
		}}}
	}
	return nil
}

// readsVariables reports whether ast names event, user or now.
func readsVariables(a *celgo.Ast) bool {
	found := false
	celast.PreOrderVisit(a.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() == celast.IdentKind {
			switch e.AsIdent() {
			case "event", "user", "now":
				found = true
			}
		}
	}))
	return found
}

// withSnippets fills in the snippet of every issue of a *CompileError about src.
func withSnippets(err error, src string) error {
	if ce, ok := err.(*CompileError); ok {
		for i := range ce.Issues {
			ce.Issues[i].Snippet = Snippet(src, ce.Issues[i].Line, ce.Issues[i].Column)
		}
	}
	return err
}

// String returns the rule's source.
func (r *Rule) String() string { return r.src }

// Cost returns the rule's estimated maximum cost, at most MaxCost.
func (r *Rule) Cost() uint64 { return r.cost }

// String returns the expression's source.
func (p *Points) String() string { return p.src }

// Cost returns the expression's estimated maximum cost, at most MaxCost.
func (p *Points) Cost() uint64 { return p.cost }

// compileAST type-checks src as an expression of type want (see check) and plans it
// for evaluation (see program); it returns the program, its cost and the checked AST.
func compileAST(field, src string, want *types.Type, wrongType string) (prg celgo.Program, cost uint64, ast *celgo.Ast, err error) {
	defer func() {
		if p := recover(); p != nil {
			prg, cost, ast = nil, 0, nil
			err = &CompileError{Field: field, Issues: []Issue{{
				Message: fmt.Sprintf("internal error while compiling: %v", p), Line: 1, Column: 1,
			}}}
		}
	}()
	ast, cost, err = check(field, src, want, wrongType)
	if err != nil {
		return nil, 0, nil, err
	}
	prg, err = program(ast)
	if err != nil {
		return nil, 0, nil, &CompileError{Field: field, Issues: []Issue{{Message: err.Error(), Line: 1, Column: 1}}}
	}
	return prg, cost, ast, nil
}

// check parses and type-checks src, requires its type to be want and its estimated cost
// to be at most MaxCost, and returns the checked AST and the cost. Errors are
// *CompileError for field. It may panic inside cel-go; callers recover.
func check(field, src string, want *types.Type, wrongType string) (*celgo.Ast, uint64, error) {
	if strings.TrimSpace(src) == "" {
		return nil, 0, &CompileError{Field: field, Issues: []Issue{{Message: "expression is empty", Line: 1, Column: 1}}}
	}
	ast, iss := celEnv.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, 0, &CompileError{Field: field, Issues: issuesOf(iss)}
	}
	if got := ast.OutputType(); !got.IsExactType(want) {
		return nil, 0, &CompileError{Field: field, Issues: []Issue{{
			Message: fmt.Sprintf(wrongType, got.String()), Line: 1, Column: 1,
		}}}
	}
	est, err := celEnv.EstimateCost(ast, sizeEstimator{})
	if err != nil {
		return nil, 0, &CompileError{Field: field, Issues: []Issue{{
			Message: fmt.Sprintf("cannot estimate cost: %v", err), Line: 1, Column: 1,
		}}}
	}
	if est.Max > MaxCost {
		return nil, 0, &CompileError{Field: field, Issues: []Issue{{
			Message: fmt.Sprintf("estimated cost %s exceeds the limit of %d; avoid nested loops over maps and lists", costString(est.Max), MaxCost),
			Line:    1, Column: 1,
		}}}
	}
	return ast, est.Max, nil
}

// program plans a checked expression for evaluation, under RuntimeCostLimit unless its
// estimate is a true bound (see boundedByEstimate): cost tracking makes an evaluation
// about seven times slower, so expressions that cannot run away go without it. Rules,
// points expressions and the clauses of Explain (the rule test) all use it.
func program(ast *celgo.Ast) (celgo.Program, error) {
	opts := []celgo.ProgramOption{celgo.EvalOptions(celgo.OptOptimize)}
	if !boundedByEstimate(ast) {
		opts = append(opts, celgo.CostLimit(RuntimeCostLimit))
	}
	return celEnv.Program(ast, opts...)
}

// boundedByEstimate reports whether the static estimate bounds what evaluating ast can
// cost: it has no comprehension and calls only functions whose cost cel-go's estimator
// derives correctly from the sizes of their arguments (see linearFunctions), so with the
// size bounds ingress enforces it cannot cost more than the MaxCost it was checked
// against.
func boundedByEstimate(a *celgo.Ast) bool {
	bounded := true
	celast.PreOrderVisit(a.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		switch e.Kind() {
		case celast.ComprehensionKind:
			bounded = false
		case celast.CallKind:
			if !linearFunctions[e.AsCall().FunctionName()] {
				bounded = false
			}
		}
	}))
	return bounded
}

// linearFunctions are the functions that cost at most linearly in the size of their
// arguments and that cel-go's estimator prices that way: operators, conversions, size,
// the string tests (RE2 matching is linear), time accessors, optionals and the history
// functions of user (bounded by the days a user's history keeps). Anything else, such as
// the extension string functions (replace, split, join, format, ...), runs under
// RuntimeCostLimit.
var linearFunctions = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range []string{
		operators.LogicalAnd, operators.LogicalOr, operators.LogicalNot, operators.Conditional,
		operators.Equals, operators.NotEquals, operators.Less, operators.LessEquals,
		operators.Greater, operators.GreaterEquals, operators.Add, operators.Subtract,
		operators.Multiply, operators.Divide, operators.Modulo, operators.Negate,
		operators.Index, operators.OptIndex, operators.OptSelect, operators.In, operators.NotStrictlyFalse,
		overloads.Size, overloads.TypeConvertInt, overloads.TypeConvertUint,
		overloads.TypeConvertDouble, overloads.TypeConvertString, overloads.TypeConvertBool,
		overloads.TypeConvertDuration, overloads.TypeConvertTimestamp, overloads.TypeConvertType,
		overloads.TypeConvertDyn, overloads.Contains, overloads.StartsWith, overloads.EndsWith,
		overloads.Matches, overloads.TimeGetFullYear, overloads.TimeGetMonth,
		overloads.TimeGetDayOfYear, overloads.TimeGetDayOfMonth, overloads.TimeGetDate,
		overloads.TimeGetDayOfWeek, overloads.TimeGetHours, overloads.TimeGetMinutes,
		overloads.TimeGetSeconds, overloads.TimeGetMilliseconds,
		"orValue", "or", "hasValue", "value", "optional.of", "optional.none", "optional.ofNonZeroValue",
		"spent_within", "count_within", "days_active_within",
	} {
		m[f] = true
	}
	return m
}()

func costString(c uint64) string {
	if c >= 1<<62 {
		return "(unbounded)"
	}
	return fmt.Sprint(c)
}

func issuesOf(iss *celgo.Issues) []Issue {
	errs := iss.Errors()
	out := make([]Issue, 0, len(errs))
	for _, e := range errs {
		line, col := 1, 1
		if e.Location != nil && e.Location.Line() > 0 {
			line = e.Location.Line()
			col = max(e.Location.Column(), 0) + 1 // cel-go columns are 0-based
		}
		out = append(out, Issue{Message: e.Message, Line: line, Column: col})
	}
	if len(out) == 0 {
		out = append(out, Issue{Message: iss.String(), Line: 1, Column: 1})
	}
	return out
}

// sizeEstimator bounds the sizes of strings, lists and maps reachable from event and
// user for the cost estimate.
type sizeEstimator struct{}

func (sizeEstimator) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	path := n.Path()
	if len(path) == 0 {
		return nil
	}
	var obj *objectType
	switch path[0] {
	case "event":
		obj = eventObject
	case "user":
		obj = userObject
	case "now":
		return nil
	}
	if obj != nil && len(path) == 1 {
		// The whole event or user, e.g. compared with ==: bounded by its field count.
		return &checker.SizeEstimate{Min: 0, Max: uint64(len(obj.names))}
	}
	if obj != nil && len(path) == 2 {
		if s, ok := obj.sizes[path[1]]; ok {
			return &checker.SizeEstimate{Min: 0, Max: s}
		}
		return nil
	}
	if obj != nil && (obj != eventObject || path[1] != "attributes") {
		return nil // e.g. user.rewards.x: an int
	}
	// Inside event.attributes, or a comprehension variable (most range over attributes).
	if n.Type() != nil && n.Type().Kind() == types.StringKind {
		return &checker.SizeEstimate{Min: 0, Max: maxAttributeString}
	}
	return &checker.SizeEstimate{Min: 0, Max: maxAttributeEntries}
}

func (sizeEstimator) EstimateCallCost(function, overloadID string, target *checker.AstNode, args []checker.AstNode) *checker.CallEstimate {
	return nil
}
