package cel

import (
	"slices"

	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"

	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// eventTypes returns the event types a rule can only be true for, from its checked
// AST, or nil when it does not constrain the type (or the analysis cannot tell). It is
// sound: whenever the rule is true, event.type is in the returned set. What it reads:
// event.type == "t" (either side), event.type in ["a", "b"], and && (intersection) and
// || (union) of those.
func eventTypes(e celast.Expr) []string {
	if e.Kind() != celast.CallKind {
		return nil
	}
	call := e.AsCall()
	args := call.Args()
	switch call.FunctionName() {
	case operators.LogicalAnd:
		a, b := eventTypes(args[0]), eventTypes(args[1])
		switch {
		case a == nil:
			return b
		case b == nil:
			return a
		}
		out := []string{}
		for _, t := range a {
			if slices.Contains(b, t) {
				out = append(out, t)
			}
		}
		return out
	case operators.LogicalOr:
		a, b := eventTypes(args[0]), eventTypes(args[1])
		if a == nil || b == nil {
			return nil
		}
		out := slices.Clone(a)
		for _, t := range b {
			if !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
		return out
	case operators.Equals:
		if isEventType(args[0]) {
			return stringConst(args[1])
		}
		if isEventType(args[1]) {
			return stringConst(args[0])
		}
	case operators.In:
		if isEventType(args[0]) && args[1].Kind() == celast.ListKind {
			var out []string
			for _, el := range args[1].AsList().Elements() {
				s := stringConst(el)
				if s == nil {
					return nil
				}
				out = append(out, s[0])
			}
			return out
		}
	}
	return nil
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

// stringConst is the one string of a string literal, or nil.
func stringConst(e celast.Expr) []string {
	if e.Kind() != celast.LiteralKind {
		return nil
	}
	s, ok := e.AsLiteral().Value().(string)
	if !ok {
		return nil
	}
	return []string{s}
}

// Matches reports whether the rule can be true for an event of type typ: typ is one of
// the types the rule constrains event.type to, or the rule does not constrain it. The
// engine's own event types (event.IsReserved) only match a rule that names them, so
// rules never see admin adjustments or expiry sweeps unless they ask for them by type.
func (r *Rule) Matches(typ string) bool {
	if r.types == nil {
		return !event.IsReserved(typ)
	}
	return slices.Contains(r.types, typ)
}

// Types returns the event types the rule can only be true for (a copy), or nil when it
// does not constrain event.type.
func (r *Rule) Types() []string { return slices.Clone(r.types) }
