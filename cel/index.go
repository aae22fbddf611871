package cel

import (
	"cmp"
	"slices"

	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// ruleIndex lists the campaigns (positions in RuleSet.compiled, ascending) whose rule
// can be true for each value of one subject: byValue for the values some rule names,
// other for every other value.
type ruleIndex struct {
	byValue map[string][]int32
	other   []int32
}

// attrIndex is the ruleIndex of one attribute, by constKey.
type attrIndex struct {
	key string
	ruleIndex
}

// Bounds of the attribute indexes: the attributes indexed, and the entries of one
// index (an attribute's values times the rules that can match each).
const (
	maxIndexedAttributes = 8
	maxAttrIndexEntries  = 1 << 20
)

// buildIndex makes the ruleIndex of n rules over the values names: rule i is filed
// under the values of sets(i) when that is a setOnly (each among names), else under
// every named value v for which matches(i, v), and in other when unnamed(i). Rules go
// in ascending order, so every list is sorted.
func buildIndex(n int, names []string, sets func(i int) valueSet, matches func(i int, v string) bool, unnamed func(i int) bool) ruleIndex {
	x := ruleIndex{byValue: make(map[string][]int32, len(names))}
	for _, v := range names {
		x.byValue[v] = nil // a named value no rule matches has an empty list, not other
	}
	for i := range n {
		if s := sets(i); s.kind == setOnly {
			for _, v := range s.names {
				if matches(i, v) {
					x.byValue[v] = append(x.byValue[v], int32(i))
				}
			}
		} else {
			for v := range x.byValue {
				if matches(i, v) {
					x.byValue[v] = append(x.byValue[v], int32(i))
				}
			}
		}
		if unnamed(i) {
			x.other = append(x.other, int32(i))
		}
	}
	return x
}

// index builds byType from the rules' type sets and byAttr for the attributes that at
// least two rules constrain (the most constrained first), so that Evaluate looks only
// at the campaigns that can match the event.
func (rs *RuleSet) index() {
	var types []string
	constrained := map[string]int{}
	for i := range rs.compiled {
		r := rs.compiled[i].rule
		types = append(types, r.types.names...)
		for k := range r.attrs {
			constrained[k]++
		}
	}
	slices.Sort(types)
	rs.byType = buildIndex(len(rs.compiled), slices.Compact(types),
		func(i int) valueSet { return rs.compiled[i].rule.types },
		func(i int, t string) bool { return rs.compiled[i].rule.Matches(t) },
		func(i int) bool { return rs.compiled[i].rule.types.kind != setOnly })
	var keys []string
	for k, n := range constrained {
		if n >= 2 {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(constrained[b], constrained[a]), cmp.Compare(a, b)) })
	for _, k := range keys[:min(len(keys), maxIndexedAttributes)] {
		if x, ok := rs.attrIndex(k); ok {
			rs.byAttr = append(rs.byAttr, x)
		}
	}
}

// attrIndex builds the index of attribute k, unless it would exceed maxAttrIndexEntries.
func (rs *RuleSet) attrIndex(k string) (attrIndex, bool) {
	var names []string
	unconstrained := 0
	for i := range rs.compiled {
		if s, ok := rs.compiled[i].rule.attrs[k]; ok {
			names = append(names, s.names...)
		} else {
			unconstrained++
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names)*(unconstrained+1) > maxAttrIndexEntries {
		return attrIndex{}, false
	}
	set := func(i int) valueSet { return rs.compiled[i].rule.attrs[k] } // absent: setAny
	return attrIndex{key: k, ruleIndex: buildIndex(len(rs.compiled), names, set,
		func(i int, v string) bool { return set(i).contains(v) },
		func(i int) bool { return set(i).kind != setOnly })}, true
}

// candidates returns the positions of the campaigns whose rule can match ev, in
// evaluation order: those that can match its type and, for each indexed attribute ev
// carries with a scalar value, that value.
func (rs *RuleSet) candidates(ev *event.Event) []int32 {
	c, ok := rs.byType.byValue[ev.Type]
	if !ok {
		if event.IsReserved(ev.Type) {
			return nil // the engine's own types only reach rules that name them
		}
		c = rs.byType.other
	}
	for i := range rs.byAttr {
		x := &rs.byAttr[i]
		v, present := ev.Attributes[x.key]
		if !present || len(c) == 0 {
			continue // an absent attribute is an error for the rules that read it
		}
		key, scalar := constKey(v)
		if !scalar {
			continue
		}
		l, named := x.byValue[key]
		if !named {
			l = x.other
		}
		c = intersect(c, l)
	}
	return c
}

// intersect returns the positions in both ascending lists a and b: by binary search of
// the shorter's in the longer when one is much shorter (an attribute's few campaigns
// among a type's many), else by a merge.
func intersect(a, b []int32) []int32 {
	if len(a) > len(b) {
		a, b = b, a
	}
	out := make([]int32, 0, len(a))
	if len(a)*8 < len(b) {
		for _, x := range a {
			if _, found := slices.BinarySearch(b, x); found {
				out = append(out, x)
			}
		}
		return out
	}
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}
