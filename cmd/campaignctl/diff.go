package main

import (
	"encoding/json"
	"math/big"
	"sort"
	"strings"
	"time"
)

// serverManaged are campaign fields the server sets; apply neither sends nor compares
// them.
var serverManaged = map[string]bool{"version": true, "created_at": true, "updated_at": true}

// changedFields lists, sorted, the top-level fields where the desired campaign differs
// from the stored one: every field the user gave that differs, and every field the user
// left out that PUT would clear (stored with a non-zero value). id, server-managed
// fields and an omitted status (PUT keeps the stored one) are not compared.
func changedFields(desired, stored map[string]any) []string {
	var out []string
	for k, v := range desired {
		if k == "id" || serverManaged[k] {
			continue
		}
		if !sameValue(v, stored[k]) {
			out = append(out, k)
		}
	}
	for k, v := range stored {
		if _, given := desired[k]; given || k == "id" || k == "status" || serverManaged[k] {
			continue
		}
		if !isZero(v) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// sameValue compares two decoded JSON values as the server would store them: a missing
// value equals a zero one (the server omits empty fields), numbers compare by value, a
// number equals the string spelling it (a points constant is stored as a string), and
// RFC 3339 times compare as instants at Postgres' microsecond precision.
func sameValue(a, b any) bool {
	if a == nil || b == nil {
		return isZero(a) && isZero(b)
	}
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok {
			return false
		}
		for k, av := range a {
			if !sameValue(av, bm[k]) {
				return false
			}
		}
		for k, bv := range bm {
			if _, ok := a[k]; !ok && !isZero(bv) {
				return false
			}
		}
		return true
	case []any:
		bs, ok := b.([]any)
		if !ok || len(a) != len(bs) {
			return false
		}
		for i := range a {
			if !sameValue(a[i], bs[i]) {
				return false
			}
		}
		return true
	case json.Number:
		switch b := b.(type) {
		case json.Number:
			return sameNumber(string(a), string(b))
		case string:
			return sameNumber(string(a), strings.TrimSpace(b))
		}
		return false
	case string:
		switch b := b.(type) {
		case string:
			return a == b || sameTime(a, b)
		case json.Number:
			return sameNumber(strings.TrimSpace(a), string(b))
		}
		return false
	case bool:
		bb, ok := b.(bool)
		return ok && a == bb
	}
	return false
}

func sameNumber(a, b string) bool {
	x, ok1 := new(big.Rat).SetString(a)
	y, ok2 := new(big.Rat).SetString(b)
	return ok1 && ok2 && x.Cmp(y) == 0
}

func sameTime(a, b string) bool {
	x, err1 := time.Parse(time.RFC3339Nano, a)
	y, err2 := time.Parse(time.RFC3339Nano, b)
	return err1 == nil && err2 == nil && x.Truncate(time.Microsecond).Equal(y.Truncate(time.Microsecond))
}

// isZero reports whether v is null, false, 0, "", or an empty (or all-zero) object or
// list.
func isZero(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case bool:
		return !v
	case string:
		return v == ""
	case json.Number:
		return sameNumber(string(v), "0")
	case map[string]any:
		for _, x := range v {
			if !isZero(x) {
				return false
			}
		}
		return true
	case []any:
		return len(v) == 0
	}
	return false
}
