package cel

import (
	"slices"

	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"

	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// eventTypeSubject is event.type.
type eventTypeSubject struct{}

func (eventTypeSubject) is(e celast.Expr) (ok, testOnly bool) {
	if e.Kind() != celast.SelectKind {
		return false, false
	}
	sel := e.AsSelect()
	return sel.FieldName() == "type" && isIdent(sel.Operand(), "event"), sel.IsTestOnly()
}

func (eventTypeSubject) isString() bool { return true }

// attributeSubject is event.attributes.<key> (or event.attributes["<key>"]).
type attributeSubject struct{ key string }

func (s attributeSubject) is(e celast.Expr) (ok, testOnly bool) {
	switch e.Kind() {
	case celast.SelectKind:
		sel := e.AsSelect()
		return sel.FieldName() == s.key && isEventAttributes(sel.Operand()), sel.IsTestOnly()
	case celast.CallKind:
		call := e.AsCall()
		if call.FunctionName() != operators.Index || len(call.Args()) != 2 || !isEventAttributes(call.Args()[0]) {
			return false, false
		}
		k := call.Args()[1]
		return k.Kind() == celast.LiteralKind && k.AsLiteral().Value() == s.key, false
	}
	return false, false
}

func (attributeSubject) isString() bool { return false }

func isIdent(e celast.Expr, name string) bool {
	return e.Kind() == celast.IdentKind && e.AsIdent() == name
}

// isEventAttributes reports whether e is the selection event.attributes.
func isEventAttributes(e celast.Expr) bool {
	if e.Kind() != celast.SelectKind {
		return false
	}
	sel := e.AsSelect()
	return !sel.IsTestOnly() && sel.FieldName() == "attributes" && isIdent(sel.Operand(), "event")
}

// ruleTypes is what e proves about the event types it can be true for (see analyze):
// the candidates are its string literals.
func ruleTypes(e celast.Expr, costLimited bool) valueSet {
	strs := literalValues(e, func(v absVal) bool { return v.kind == absString })
	return analyze(e, costLimited, eventTypeSubject{}, strs)
}

// maxAttributeKeys bounds the attributes analyzed per rule.
const maxAttributeKeys = 4

// ruleAttributes is what e proves about the values of the attributes it compares (see
// analyze), for at most maxAttributeKeys of them; an attribute the rule does not
// constrain is left out.
func ruleAttributes(e celast.Expr, costLimited bool) map[string]valueSet {
	var keys []string
	celast.PreOrderVisit(e, celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() == celast.SelectKind && isEventAttributes(e.AsSelect().Operand()) {
			keys = append(keys, e.AsSelect().FieldName())
		}
		if e.Kind() == celast.CallKind && e.AsCall().FunctionName() == operators.Index {
			args := e.AsCall().Args()
			if len(args) == 2 && isEventAttributes(args[0]) && args[1].Kind() == celast.LiteralKind {
				if k, ok := args[1].AsLiteral().Value().(string); ok {
					keys = append(keys, k)
				}
			}
		}
	}))
	slices.Sort(keys)
	keys = slices.Compact(keys)
	var out map[string]valueSet
	consts := literalValues(e, func(absVal) bool { return true })
	for _, k := range keys[:min(len(keys), maxAttributeKeys)] {
		if s := analyze(e, costLimited, attributeSubject{key: k}, consts); s.kind != setAny {
			if out == nil {
				out = map[string]valueSet{}
			}
			out[k] = s
		}
	}
	return out
}

// Matches reports whether the rule can be true for an event of type typ (see analyze
// for what is proven). The engine's own event types (event.IsReserved) only match a rule
// that can only be true for a list of types naming them, so rules never see admin
// adjustments or expiry sweeps unless they ask for them by type.
func (r *Rule) Matches(typ string) bool {
	if r.types.kind != setOnly && event.IsReserved(typ) {
		return false
	}
	return r.types.contains(typ)
}

// Types returns the event types the rule can only be true for (a sorted copy), or nil
// when the rule is not limited to a list of types (it may still be proven false for
// some: see Matches).
func (r *Rule) Types() []string {
	if r.types.kind != setOnly {
		return nil
	}
	return slices.Clone(r.types.names)
}
