package cel

import (
	"slices"

	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/overloads"

	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// typeSetKind says what a typeSet holds.
type typeSetKind uint8

const (
	typesAny    typeSetKind = iota // nothing is proven: any type
	typesOnly                      // the rule can only be true for names
	typesExcept                    // the rule can be true for any type but names
)

// typeSet is what a rule's checked AST proves about the event types the rule can be
// true for (see ruleTypes). names is sorted and has no repeats.
type typeSet struct {
	kind  typeSetKind
	names []string
}

// contains reports whether typ is in the set (the engine's own types aside: see
// Rule.Matches).
func (s typeSet) contains(typ string) bool {
	_, found := slices.BinarySearch(s.names, typ)
	switch s.kind {
	case typesOnly:
		return found
	case typesExcept:
		return !found
	}
	return true
}

// maxTypeSteps bounds the work of ruleTypes: past it the rule is left as matching any
// type. Real rules take a few steps per string literal.
const maxTypeSteps = 1 << 20

// ruleTypes works out from a rule's checked AST the event types the rule can be true
// for, by evaluating the rule abstractly once per string literal it contains (as the
// event's type) and once for "a type that is none of them": event.type is then a known
// string and everything else about the event and user is unknown. A type for which
// the rule certainly evaluates to false, with no error and no possibility of being
// stopped by RuntimeCostLimit, is left out. That is sound: skipping the rule for such
// an event cannot change what Evaluate returns, matches or rule errors. costLimited says
// whether the program runs under RuntimeCostLimit (see boundedByEstimate).
//
// What the abstract evaluation reads: string and bool literals, event.type, ==, !=,
// `in` a list literal, !, && and || (with CEL's commutative error absorption, in
// cel-go's evaluation order), ?:, string() and dyn() of a string, and comprehensions
// (the exists, all, ... macros) over a list literal, whose variables carry the values
// of the list's elements, so `["a", "b"].exists(t, event.type == t)` and
// `[event.type].exists(t, t == "a")` are read too. Anything else is unknown.
func ruleTypes(e celast.Expr, costLimited bool) typeSet {
	a := &typeAnalysis{costLimited: costLimited, unbounded: map[int64]bool{}, literals: map[int64]absVal{}}
	lits := stringLiterals(e)
	other := a.eval(e, nil, absVal{kind: absOtherType})
	if a.steps > maxTypeSteps {
		return typeSet{kind: typesAny}
	}
	s := typeSet{kind: typesOnly}
	if other.kind != absFalse {
		s.kind = typesExcept
	}
	for _, lit := range lits {
		v := a.eval(e, nil, absVal{kind: absString, s: lit})
		if a.steps > maxTypeSteps {
			return typeSet{kind: typesAny}
		}
		possible := v.kind != absFalse
		if possible == (s.kind == typesOnly) {
			s.names = append(s.names, lit)
		}
	}
	if s.kind == typesExcept && len(s.names) == 0 {
		return typeSet{kind: typesAny}
	}
	if s.names == nil {
		s.names = []string{}
	}
	return s
}

// stringLiterals returns the string literals of e, sorted, without repeats.
func stringLiterals(e celast.Expr) []string {
	var out []string
	celast.PreOrderVisit(e, celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() == celast.LiteralKind {
			if s, ok := e.AsLiteral().Value().(string); ok {
				out = append(out, s)
			}
		}
	}))
	slices.Sort(out)
	return slices.Compact(out)
}

// absKind is the kind of an abstract value.
type absKind uint8

const (
	absUnknown   absKind = iota // any value or an error, computed without risk of abort
	absAbort                    // unknown, and computing it may have hit RuntimeCostLimit
	absTrue                     // certainly true
	absFalse                    // certainly false
	absString                   // certainly the string s
	absOtherType                // certainly the event's type, which is none of the rule's literals
	absList                     // certainly a list of elems, none unknown
)

// absVal is an abstract value: what is certain about an expression's result.
type absVal struct {
	kind  absKind
	s     string
	elems []absVal
}

var (
	unknown = absVal{kind: absUnknown}
	aborted = absVal{kind: absAbort}
)

func absBool(b bool) absVal {
	if b {
		return absVal{kind: absTrue}
	}
	return absVal{kind: absFalse}
}

// definite reports whether v is certain (not unknown).
func (v absVal) definite() bool { return v.kind != absUnknown && v.kind != absAbort }

// scope binds comprehension variables to abstract values.
type scope struct {
	name   string
	val    absVal
	parent *scope
}

func (s *scope) lookup(name string) (absVal, bool) {
	for ; s != nil; s = s.parent {
		if s.name == name {
			return s.val, true
		}
	}
	return absVal{}, false
}

// typeAnalysis is the state of one ruleTypes call.
type typeAnalysis struct {
	costLimited bool
	unbounded   map[int64]bool   // memo of isUnbounded by expression id
	literals    map[int64]absVal // memo of list literals of literals by expression id
	steps       int
}

// eval evaluates e abstractly with event.type = typ.
func (a *typeAnalysis) eval(e celast.Expr, sc *scope, typ absVal) absVal {
	a.steps++
	if a.steps > maxTypeSteps {
		return aborted
	}
	switch e.Kind() {
	case celast.LiteralKind:
		switch v := e.AsLiteral().Value().(type) {
		case string:
			return absVal{kind: absString, s: v}
		case bool:
			return absBool(v)
		}
		return unknown
	case celast.IdentKind:
		if v, ok := sc.lookup(e.AsIdent()); ok {
			return v
		}
		return unknown
	case celast.SelectKind:
		if isEventType(e) {
			if _, shadowed := sc.lookup("event"); !shadowed {
				return typ
			}
		}
	case celast.ListKind:
		return a.evalList(e, sc, typ)
	case celast.CallKind:
		return a.evalCall(e, sc, typ)
	case celast.ComprehensionKind:
		return a.evalComprehension(e, sc, typ)
	}
	return a.opaque(e)
}

// opaque is the value of an expression the analysis does not read.
func (a *typeAnalysis) opaque(e celast.Expr) absVal {
	if a.costLimited && a.isUnbounded(e) {
		return aborted
	}
	return unknown
}

// evalList evaluates a list literal; an unknown element makes it unknown (it may be an
// error, which makes the list one).
func (a *typeAnalysis) evalList(e celast.Expr, sc *scope, typ absVal) absVal {
	l := e.AsList()
	if len(l.OptionalIndices()) > 0 {
		return a.opaque(e)
	}
	if v, ok := a.literals[e.ID()]; ok {
		return v
	}
	out := absVal{kind: absList}
	result := out
	for _, el := range l.Elements() {
		v := a.eval(el, sc, typ)
		if v.kind == absAbort {
			return aborted
		}
		if !v.definite() {
			result = unknown
		}
		out.elems = append(out.elems, v)
	}
	if result.kind == absUnknown {
		return unknown
	}
	if !slices.ContainsFunc(l.Elements(), func(el celast.Expr) bool { return el.Kind() != celast.LiteralKind }) {
		a.literals[e.ID()] = out // the same for every type: evaluated once
	}
	return out
}

// evalCall evaluates the operators and functions the analysis reads.
func (a *typeAnalysis) evalCall(e celast.Expr, sc *scope, typ absVal) absVal {
	call := e.AsCall()
	args := call.Args()
	switch fn := call.FunctionName(); {
	case fn == operators.LogicalAnd && len(args) == 2:
		return a.evalLogical(args, sc, typ, absFalse)
	case fn == operators.LogicalOr && len(args) == 2:
		return a.evalLogical(args, sc, typ, absTrue)
	case fn == operators.LogicalNot && len(args) == 1,
		fn == operators.NotStrictlyFalse && len(args) == 1:
		v := a.eval(args[0], sc, typ)
		if fn == operators.LogicalNot && (v.kind == absTrue || v.kind == absFalse) {
			return absBool(v.kind == absFalse)
		}
		return v
	case fn == operators.Conditional && len(args) == 3:
		c := a.eval(args[0], sc, typ)
		switch c.kind {
		case absTrue:
			return a.eval(args[1], sc, typ)
		case absFalse:
			return a.eval(args[2], sc, typ)
		case absAbort:
			return aborted
		}
		return a.opaque(e)
	case (fn == operators.Equals || fn == operators.NotEquals || fn == operators.In) && len(args) == 2:
		return a.evalComparison(fn, args, sc, typ)
	case (fn == overloads.TypeConvertString || fn == overloads.TypeConvertDyn) && len(args) == 1 && !call.IsMemberFunction():
		if v := a.eval(args[0], sc, typ); v.kind == absString || v.kind == absOtherType || v.kind == absAbort {
			return v
		}
	}
	return a.opaque(e)
}

// evalLogical evaluates && (absorbing is absFalse) or || (absTrue) as cel-go does: left
// to right, stopping at the absorbing value, which wins over errors on either side. An
// absorbing right side decides only when the left cannot have stopped the evaluation.
func (a *typeAnalysis) evalLogical(args []celast.Expr, sc *scope, typ absVal, absorbing absKind) absVal {
	l := a.eval(args[0], sc, typ)
	if l.kind == absorbing || l.kind == absAbort {
		return l
	}
	r := a.eval(args[1], sc, typ)
	if r.kind == absorbing || r.kind == absAbort {
		return r
	}
	if l.definite() && r.definite() {
		return r // both the other truth value: && of two trues, || of two falses
	}
	return unknown
}

// evalComparison evaluates ==, != and `in` on strings and the event's type.
func (a *typeAnalysis) evalComparison(fn string, args []celast.Expr, sc *scope, typ absVal) absVal {
	l := a.eval(args[0], sc, typ)
	if l.kind == absAbort {
		return aborted
	}
	r := a.eval(args[1], sc, typ)
	if r.kind == absAbort {
		return aborted
	}
	if fn != operators.In {
		eq, ok := sameString(l, r)
		if !ok {
			return unknown
		}
		return absBool(eq == (fn == operators.Equals))
	}
	if r.kind != absList {
		return unknown
	}
	for _, el := range r.elems {
		eq, ok := sameString(l, el)
		if !ok {
			return unknown
		}
		if eq {
			return absBool(true)
		}
	}
	return absBool(false)
}

// sameString compares two abstract strings; ok is false unless both are certain.
func sameString(l, r absVal) (eq, ok bool) {
	isStr := func(v absVal) bool { return v.kind == absString || v.kind == absOtherType }
	if !isStr(l) || !isStr(r) {
		return false, false
	}
	return l.kind == r.kind && l.s == r.s, true
}

// evalComprehension evaluates a comprehension over a list literal by unrolling it as
// cel-go runs it: the accumulator starts as the init value; before each element the
// loop condition is evaluated, and a false condition stops the loop.
func (a *typeAnalysis) evalComprehension(e celast.Expr, sc *scope, typ absVal) absVal {
	c := e.AsComprehension()
	if c.HasIterVar2() {
		return a.opaque(e)
	}
	rng := a.eval(c.IterRange(), sc, typ)
	if rng.kind != absList {
		return a.opaque(e)
	}
	accu := a.eval(c.AccuInit(), sc, typ)
	if accu.kind == absAbort {
		return aborted
	}
	for _, el := range rng.elems {
		inner := &scope{name: c.IterVar(), val: el, parent: &scope{name: c.AccuVar(), val: accu, parent: sc}}
		cond := a.eval(c.LoopCondition(), inner, typ)
		if cond.kind == absFalse {
			break
		}
		if cond.kind != absTrue {
			return a.opaque(e)
		}
		accu = a.eval(c.LoopStep(), inner, typ)
		if accu.kind == absAbort {
			return aborted
		}
	}
	return a.eval(c.Result(), &scope{name: c.AccuVar(), val: accu, parent: sc}, typ)
}

// isUnbounded reports whether evaluating e may cost more than its estimate: it calls a
// function outside linearFunctions or has a comprehension over anything but a list
// literal (the estimator knows a literal's size). Only such an expression can stop an
// evaluation at RuntimeCostLimit: the rule's estimate is at most MaxCost, half the limit.
func (a *typeAnalysis) isUnbounded(e celast.Expr) bool {
	if u, ok := a.unbounded[e.ID()]; ok {
		return u
	}
	u := false
	celast.PreOrderVisit(e, celast.NewExprVisitor(func(e celast.Expr) {
		switch e.Kind() {
		case celast.CallKind:
			if !linearFunctions[e.AsCall().FunctionName()] {
				u = true
			}
		case celast.ComprehensionKind:
			if r := e.AsComprehension().IterRange(); r.Kind() != celast.ListKind {
				u = true
			}
		}
	}))
	a.unbounded[e.ID()] = u
	return u
}

// isEventType reports whether e is the selection event.type.
func isEventType(e celast.Expr) bool {
	if e.Kind() != celast.SelectKind {
		return false
	}
	sel := e.AsSelect()
	op := sel.Operand()
	return !sel.IsTestOnly() && sel.FieldName() == "type" && op.Kind() == celast.IdentKind && op.AsIdent() == "event"
}

// Matches reports whether the rule can be true for an event of type typ (see ruleTypes
// for what is proven). The engine's own event types (event.IsReserved) only match a rule
// that can only be true for a list of types naming them, so rules never see admin
// adjustments or expiry sweeps unless they ask for them by type.
func (r *Rule) Matches(typ string) bool {
	if r.types.kind != typesOnly && event.IsReserved(typ) {
		return false
	}
	return r.types.contains(typ)
}

// Types returns the event types the rule can only be true for (a sorted copy), or nil
// when the rule is not limited to a list of types (it may still be proven false for
// some: see Matches).
func (r *Rule) Types() []string {
	if r.types.kind != typesOnly {
		return nil
	}
	return slices.Clone(r.types.names)
}
