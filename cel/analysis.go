package cel

import (
	"math"
	"slices"
	"strconv"
	"strings"

	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/overloads"
)

// valueSet is what a rule's checked AST proves about the values of one subject (the
// event's type, or one attribute) the rule can be true for; see analyze. keys are the
// values' constKeys, sorted, without repeats.
type valueSet struct {
	kind  setKind
	names []string
}

// setKind says what a valueSet holds.
type setKind uint8

const (
	setAny    setKind = iota // nothing is proven: any value
	setOnly                  // the rule can only be true for names
	setExcept                // the rule can be true for any value but names
)

// contains reports whether the value with constKey key is in the set.
func (s valueSet) contains(key string) bool {
	_, found := slices.BinarySearch(s.names, key)
	switch s.kind {
	case setOnly:
		return found
	case setExcept:
		return !found
	}
	return true
}

// maxAnalysisSteps bounds the work of one analyze call: past it the rule is left as
// matching any value. Real rules take a few steps per literal.
const maxAnalysisSteps = 1 << 20

// subject says which expression an analysis follows.
type subject interface {
	// is reports whether e reads the subject; testOnly for has(...) of it.
	is(e celast.Expr) (ok, testOnly bool)
	// isString reports whether the subject is always a string (string() of it is itself).
	isString() bool
}

// analyze works out from a rule's checked AST the values of one subject the rule can be
// true for, by evaluating the rule abstractly once for each literal it contains (as the
// subject's value) and once for "a value equal to none of them": the subject is then a
// known constant and everything else about the event and user is unknown. A value for
// which the rule certainly evaluates to false, with no error and no possibility of being
// stopped by RuntimeCostLimit, is left out. That is sound: skipping the rule for such an
// event cannot change what Evaluate returns, matches or rule errors. costLimited says
// whether the program runs under RuntimeCostLimit (see boundedByEstimate).
//
// What the abstract evaluation reads: literals, the subject, ==, !=, `in` a list literal,
// !, && and || (with CEL's commutative error absorption, in cel-go's evaluation order),
// ?:, string() and dyn() of a constant, has() of the subject (true: an absent subject
// is never analyzed, the caller evaluates such events), and comprehensions (the exists,
// all, ... macros) over a list literal, whose variables carry the values of the list's
// elements, so `["a", "b"].exists(t, event.type == t)` and `[event.type].exists(t, t ==
// "a")` are read too. Anything else is unknown.
func analyze(e celast.Expr, costLimited bool, subj subject, candidates []absVal) valueSet {
	a := &analysis{costLimited: costLimited, subj: subj, unbounded: map[int64]bool{}, literals: map[int64]absVal{}}
	other := a.eval(e, nil, absVal{kind: absOther})
	if a.steps > maxAnalysisSteps {
		return valueSet{kind: setAny}
	}
	s := valueSet{kind: setOnly}
	if other.kind != absFalse {
		s.kind = setExcept
	}
	for _, c := range candidates {
		v := a.eval(e, nil, c)
		if a.steps > maxAnalysisSteps {
			return valueSet{kind: setAny}
		}
		if possible := v.kind != absFalse; possible == (s.kind == setOnly) {
			s.names = append(s.names, c.key())
		}
	}
	slices.Sort(s.names)
	s.names = slices.Compact(s.names)
	if s.kind == setExcept && len(s.names) == 0 {
		return valueSet{kind: setAny}
	}
	if s.names == nil {
		s.names = []string{}
	}
	return s
}

// literalValues returns the distinct constants of e's literals (keep says which), in
// order of their keys.
func literalValues(e celast.Expr, keep func(absVal) bool) []absVal {
	var out []absVal
	celast.PreOrderVisit(e, celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() == celast.LiteralKind {
			if v := literal(e); v.isConst() && keep(v) {
				out = append(out, v)
			}
		}
	}))
	slices.SortFunc(out, func(x, y absVal) int { return compareStrings(x.key(), y.key()) })
	return slices.CompactFunc(out, func(x, y absVal) bool { return x.key() == y.key() })
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// absKind is the kind of an abstract value.
type absKind uint8

const (
	absUnknown absKind = iota // any value or an error, computed without risk of abort
	absAbort                  // unknown, and computing it may have hit RuntimeCostLimit
	absTrue                   // certainly true
	absFalse                  // certainly false
	absString                 // certainly the string s
	absNumber                 // certainly a number equal to f (int, uint or double)
	absOther                  // certainly the subject, equal to none of the rule's literals
	absList                   // certainly a list of elems, none unknown
)

// absVal is an abstract value: what is certain about an expression's result.
type absVal struct {
	kind  absKind
	s     string
	f     float64
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

// maxExactInt is the largest integer every float64 up to it holds exactly.
const maxExactInt = 1 << 53

// literal is the abstract value of a literal expression.
func literal(e celast.Expr) absVal {
	switch v := e.AsLiteral().Value().(type) {
	case string:
		if !strings.HasPrefix(v, keyPrefix) { // such a key would look like a number's
			return absVal{kind: absString, s: v}
		}
	case bool:
		return absBool(v)
	case float64:
		return absVal{kind: absNumber, f: v}
	case int64:
		if v >= -maxExactInt && v <= maxExactInt {
			return absVal{kind: absNumber, f: float64(v)}
		}
	case uint64:
		if v <= maxExactInt {
			return absVal{kind: absNumber, f: float64(v)}
		}
	}
	return unknown
}

// isConst reports whether v is a scalar constant: a string, a number or a bool.
func (v absVal) isConst() bool {
	switch v.kind {
	case absString, absNumber, absTrue, absFalse:
		return true
	}
	return false
}

// keyPrefix starts the keys of numbers and bools; a string starting with it is never a
// constant (literal, constKey), so keys cannot collide.
const keyPrefix = "\x00"

// key names a constant as CEL equality sees it: a string is itself (so the keys of
// event types are the types), 5, 5.0 and 5u are one number.
func (v absVal) key() string {
	switch v.kind {
	case absString:
		return v.s
	case absNumber:
		f := v.f
		if f == 0 {
			f = 0 // -0.0 == 0
		}
		return keyPrefix + "n" + strconv.FormatFloat(f, 'g', -1, 64)
	case absTrue:
		return keyPrefix + "true"
	case absFalse:
		return keyPrefix + "false"
	}
	return ""
}

// constKey is the key (see absVal.key) of an attribute value as the event carries it
// (JSON decoded: float64, string, bool, or a list, map or nil); ok is false for a value
// no literal can equal (a list, a map, null, a number too large to compare exactly).
func constKey(v any) (key string, ok bool) {
	var f float64
	switch x := v.(type) {
	case string:
		return x, !strings.HasPrefix(x, keyPrefix)
	case bool:
		return absBool(x).key(), true
	case float64:
		f = x
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	default:
		return "", false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", false
	}
	return absVal{kind: absNumber, f: f}.key(), true
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

// analysis is the state of one analyze call.
type analysis struct {
	costLimited bool
	subj        subject
	unbounded   map[int64]bool   // memo of isUnbounded by expression id
	literals    map[int64]absVal // memo of list literals of literals by expression id
	steps       int
}

// eval evaluates e abstractly with the subject's value val.
func (a *analysis) eval(e celast.Expr, sc *scope, val absVal) absVal {
	a.steps++
	if a.steps > maxAnalysisSteps {
		return aborted
	}
	if ok, testOnly := a.subj.is(e); ok && !shadowsEvent(sc) {
		if testOnly {
			return absBool(true)
		}
		return val
	}
	switch e.Kind() {
	case celast.LiteralKind:
		return literal(e)
	case celast.IdentKind:
		if v, ok := sc.lookup(e.AsIdent()); ok {
			return v
		}
		return unknown
	case celast.ListKind:
		return a.evalList(e, sc, val)
	case celast.CallKind:
		return a.evalCall(e, sc, val)
	case celast.ComprehensionKind:
		return a.evalComprehension(e, sc, val)
	}
	return a.opaque(e)
}

// shadowsEvent reports whether a comprehension variable named event hides the event.
func shadowsEvent(sc *scope) bool {
	_, ok := sc.lookup("event")
	return ok
}

// opaque is the value of an expression the analysis does not read.
func (a *analysis) opaque(e celast.Expr) absVal {
	if a.costLimited && a.isUnbounded(e) {
		return aborted
	}
	return unknown
}

// evalList evaluates a list literal; an unknown element makes it unknown (it may be an
// error, which makes the list one).
func (a *analysis) evalList(e celast.Expr, sc *scope, val absVal) absVal {
	l := e.AsList()
	if len(l.OptionalIndices()) > 0 {
		return a.opaque(e)
	}
	if v, ok := a.literals[e.ID()]; ok {
		return v
	}
	out := absVal{kind: absList}
	known := true
	for _, el := range l.Elements() {
		v := a.eval(el, sc, val)
		if v.kind == absAbort {
			return aborted
		}
		known = known && v.definite()
		out.elems = append(out.elems, v)
	}
	if !known {
		return unknown
	}
	if !slices.ContainsFunc(l.Elements(), func(el celast.Expr) bool { return el.Kind() != celast.LiteralKind }) {
		a.literals[e.ID()] = out // the same for every value of the subject: evaluated once
	}
	return out
}

// evalCall evaluates the operators and functions the analysis reads.
func (a *analysis) evalCall(e celast.Expr, sc *scope, val absVal) absVal {
	call := e.AsCall()
	args := call.Args()
	switch fn := call.FunctionName(); {
	case fn == operators.LogicalAnd && len(args) == 2:
		return a.evalLogical(args, sc, val, absFalse)
	case fn == operators.LogicalOr && len(args) == 2:
		return a.evalLogical(args, sc, val, absTrue)
	case fn == operators.LogicalNot && len(args) == 1,
		fn == operators.NotStrictlyFalse && len(args) == 1:
		v := a.eval(args[0], sc, val)
		if fn == operators.LogicalNot && (v.kind == absTrue || v.kind == absFalse) {
			return absBool(v.kind == absFalse)
		}
		return v
	case fn == operators.Conditional && len(args) == 3:
		switch c := a.eval(args[0], sc, val); c.kind {
		case absTrue:
			return a.eval(args[1], sc, val)
		case absFalse:
			return a.eval(args[2], sc, val)
		case absAbort:
			return aborted
		}
		return a.opaque(e)
	case (fn == operators.Equals || fn == operators.NotEquals || fn == operators.In) && len(args) == 2:
		return a.evalComparison(fn, args, sc, val)
	case (fn == overloads.TypeConvertString || fn == overloads.TypeConvertDyn) && len(args) == 1 && !call.IsMemberFunction():
		v := a.eval(args[0], sc, val)
		switch {
		case v.kind == absAbort, v.kind == absString, fn == overloads.TypeConvertDyn && v.definite():
			return v
		case v.kind == absOther && (fn == overloads.TypeConvertDyn || a.subj.isString()):
			return v // string(5.0) is "5": only a string subject stays itself
		}
	}
	return a.opaque(e)
}

// evalLogical evaluates && (absorbing is absFalse) or || (absTrue) as cel-go does: left
// to right, stopping at the absorbing value, which wins over errors on either side. An
// absorbing right side decides only when the left cannot have stopped the evaluation.
func (a *analysis) evalLogical(args []celast.Expr, sc *scope, val absVal, absorbing absKind) absVal {
	l := a.eval(args[0], sc, val)
	if l.kind == absorbing || l.kind == absAbort {
		return l
	}
	r := a.eval(args[1], sc, val)
	if r.kind == absorbing || r.kind == absAbort {
		return r
	}
	if l.definite() && r.definite() {
		return r // both the other truth value: && of two trues, || of two falses
	}
	return unknown
}

// evalComparison evaluates ==, != and `in` on constants and the subject.
func (a *analysis) evalComparison(fn string, args []celast.Expr, sc *scope, val absVal) absVal {
	l := a.eval(args[0], sc, val)
	if l.kind == absAbort {
		return aborted
	}
	r := a.eval(args[1], sc, val)
	if r.kind == absAbort {
		return aborted
	}
	if fn != operators.In {
		eq, ok := equal(l, r)
		if !ok {
			return unknown
		}
		return absBool(eq == (fn == operators.Equals))
	}
	if r.kind != absList {
		return unknown
	}
	for _, el := range r.elems {
		eq, ok := equal(l, el)
		if !ok {
			return unknown
		}
		if eq {
			return absBool(true)
		}
	}
	return absBool(false)
}

// equal is CEL's equality of two certain scalars (numbers compare across int, uint and
// double; values of different types are unequal); ok is false unless both are certain.
// The subject's "other" value equals itself and none of the rule's literals.
func equal(l, r absVal) (eq, ok bool) {
	scalar := func(v absVal) bool { return v.isConst() || v.kind == absOther }
	if !scalar(l) || !scalar(r) {
		return false, false
	}
	return l.kind == r.kind && l.key() == r.key(), true
}

// evalComprehension evaluates a comprehension over a list literal by unrolling it as
// cel-go runs it: the accumulator starts as the init value; before each element the
// loop condition is evaluated, and a false condition stops the loop.
func (a *analysis) evalComprehension(e celast.Expr, sc *scope, val absVal) absVal {
	c := e.AsComprehension()
	if c.HasIterVar2() {
		return a.opaque(e)
	}
	rng := a.eval(c.IterRange(), sc, val)
	if rng.kind != absList {
		return a.opaque(e)
	}
	accu := a.eval(c.AccuInit(), sc, val)
	if accu.kind == absAbort {
		return aborted
	}
	for _, el := range rng.elems {
		inner := &scope{name: c.IterVar(), val: el, parent: &scope{name: c.AccuVar(), val: accu, parent: sc}}
		cond := a.eval(c.LoopCondition(), inner, val)
		if cond.kind == absFalse {
			break
		}
		if cond.kind != absTrue {
			return a.opaque(e)
		}
		accu = a.eval(c.LoopStep(), inner, val)
		if accu.kind == absAbort {
			return aborted
		}
	}
	return a.eval(c.Result(), &scope{name: c.AccuVar(), val: accu, parent: sc}, val)
}

// isUnbounded reports whether evaluating e may cost more than its estimate: it calls a
// function outside linearFunctions or has a comprehension over anything but a list
// literal (the estimator knows a literal's size). Only such an expression can stop an
// evaluation at RuntimeCostLimit: the rule's estimate is at most MaxCost, half the limit.
func (a *analysis) isUnbounded(e celast.Expr) bool {
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
