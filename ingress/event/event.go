package event

import (
	"errors"
	"math"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// Event is one customer event as accepted by ingress and stored in the EVENTS stream.
// OccurredAt is always set once an event has been accepted (ingress fills in the time
// received), so every consumer evaluates a redelivered event the same way.
type Event struct {
	ID         string         `json:"id"`
	UserID     string         `json:"user_id"`
	Type       string         `json:"type"`
	Amount     float64        `json:"amount,omitempty"`
	Currency   string         `json:"currency,omitempty"`
	OccurredAt time.Time      `json:"occurred_at"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

// Limits from DESIGN §4.
const (
	// MaxSize is the largest accepted JSON body of one event, in bytes.
	MaxSize = 64 << 10
	// MaxIDLen is the longest accepted event id, in characters (runes).
	MaxIDLen = 128
	// MaxUserIDLen is the longest accepted user id, in characters (runes).
	MaxUserIDLen = 256
	// MaxTypeLen is the longest accepted event type, in bytes (types are ASCII).
	MaxTypeLen = 64
	// MaxDepth is the deepest accepted nesting of attributes: the attributes object itself
	// is level 1, and every object or array inside it adds a level.
	MaxDepth = 32
	// MaxAttributeEntries is the most entries of any object or array in attributes (the
	// attributes object included). Rules are priced for it (see the cel package).
	MaxAttributeEntries = 256
	// MaxAmount is the largest accepted amount. It keeps sums (a user's total spent) and
	// points derived from amounts far from overflowing.
	MaxAmount = 1e12
)

// ErrTooLarge is returned by Decode when the body is longer than MaxSize bytes.
var ErrTooLarge = errors.New("event: body larger than 64 KiB")

// FieldError is one broken rule of an input, naming the field at fault. It is the one
// field error type of the project: Decode and Validate return it for events, and the
// campaign, tier and admin-input validators return it too, joined with errors.Join when
// there are several (see Fields).
//
// Field is the JSON name of the offending field ("id", "user_id", "amount", or a path such
// as "attributes.cart[2].sku"), or "" when the body as a whole is at fault (malformed JSON,
// invalid UTF-8, not an object, trailing data). Reason is a short human-readable sentence
// fragment suitable for an API response. Line and Column (1-based, in code points) locate
// the problem inside a field that holds an expression, such as a campaign rule; they are
// zero otherwise.
type FieldError struct {
	Field  string
	Reason string
	Line   int
	Column int
}

// Error returns "<field>: <reason>" ("<field>:<line>:<column>: <reason>" inside an
// expression), or just the reason when Field is empty.
func (e *FieldError) Error() string {
	switch {
	case e.Field == "":
		return e.Reason
	case e.Line > 0:
		return e.Field + ":" + strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Column) + ": " + e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Fields returns every *FieldError in err's tree (errors.Join and wrapping included), in
// order; nil when there is none.
func Fields(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(err error) {
		if fe, ok := err.(*FieldError); ok {
			out = append(out, fe)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			if e := u.Unwrap(); e != nil {
				walk(e)
			}
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

var (
	minTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

// Validate checks e against the rules of DESIGN §4 and returns the first violation as a
// *FieldError, or nil. Beyond the JSON rules it requires OccurredAt to be set
// (Decode fills it in) and between 1970-01-01 and 9999-12-31 UTC, and Attributes to hold
// only JSON values: nil, bool, string, finite numbers, []any and map[string]any, nested at
// most MaxDepth levels. It does not check the encoded size, which only Decode sees.
// Validate does not modify e and is safe for concurrent use.
func (e *Event) Validate() error {
	if err := e.validateScalars(); err != nil {
		return err
	}
	if e.Attributes != nil {
		if p, reason := checkAttrObject(e.Attributes, 1); reason != "" {
			return &FieldError{Field: p.field(), Reason: reason}
		}
	}
	return nil
}

// validateScalars checks every field but Attributes.
func (e *Event) validateScalars() error {
	if r := checkID(e.ID); r != "" {
		return &FieldError{Field: "id", Reason: r}
	}
	if r := checkUserID(e.UserID); r != "" {
		return &FieldError{Field: "user_id", Reason: r}
	}
	if r := checkType(e.Type); r != "" {
		return &FieldError{Field: "type", Reason: r}
	}
	if r := checkAmount(e.Amount); r != "" {
		return &FieldError{Field: "amount", Reason: r}
	}
	if e.Currency != "" && !IsCurrency(e.Currency) {
		return &FieldError{Field: "currency", Reason: currencyReason(e.Currency)}
	}
	if e.OccurredAt.IsZero() {
		return &FieldError{Field: "occurred_at", Reason: "required"}
	}
	if e.OccurredAt.Before(minTime) || e.OccurredAt.After(maxTime) {
		return &FieldError{Field: "occurred_at", Reason: "must be between 1970-01-01 and 9999-12-31"}
	}
	return nil
}

// checkID returns why s is not a valid event id, or "". The id becomes the Nats-Msg-Id
// header value, so it may hold no control characters (that includes CR and LF) and may
// not begin or end with a space (NATS trims those from header values).
func checkID(s string) string {
	if s == "" {
		return "required"
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' {
		return "must not begin or end with a space"
	}
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return "must not contain control characters"
			}
			i++
		} else {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return "must be valid UTF-8"
			}
			if unicode.IsControl(r) {
				return "must not contain control characters"
			}
			i += size
		}
		n++
		if n > MaxIDLen {
			return "must be at most " + strconv.Itoa(MaxIDLen) + " characters"
		}
	}
	return ""
}

// checkUserID returns why s is not a valid user id, or "". Any valid UTF-8 is allowed
// except NUL, which Postgres text columns cannot store.
func checkUserID(s string) string {
	if s == "" {
		return "required"
	}
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == 0 {
				return "must not contain NUL"
			}
			i++
		} else {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return "must be valid UTF-8"
			}
			i += size
		}
		n++
		if n > MaxUserIDLen {
			return "must be at most " + strconv.Itoa(MaxUserIDLen) + " characters"
		}
	}
	return ""
}

// checkType returns why s does not match [a-z][a-z0-9_.]{0,63}, or "".
func checkType(s string) string {
	if s == "" {
		return "required"
	}
	if len(s) > MaxTypeLen {
		return "must match [a-z][a-z0-9_.]{0,63}"
	}
	if c := s[0]; c < 'a' || c > 'z' {
		return "must match [a-z][a-z0-9_.]{0,63}"
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '.' {
			return "must match [a-z][a-z0-9_.]{0,63}"
		}
	}
	return ""
}

func checkAmount(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "must be a finite number"
	}
	if f < 0 {
		return "must be >= 0"
	}
	if f > MaxAmount {
		return amountReason
	}
	return ""
}

// amountReason is the reason an amount over MaxAmount is refused.
const amountReason = "must be at most 1e12"

func currencyReason(s string) string {
	if len(s) != 3 || !isUpper(s[0]) || !isUpper(s[1]) || !isUpper(s[2]) {
		return "must be an ISO 4217 code: three upper-case letters"
	}
	return "must be an active ISO 4217 code"
}

func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }

// path is a location inside attributes, innermost segment first. It is built only on the
// error path, while unwinding.
type path []string

func (p path) field() string {
	n := len("attributes")
	for _, s := range p {
		n += len(s) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, "attributes"...)
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == "" || p[i][0] != '[' {
			b = append(b, '.')
		}
		b = append(b, p[i]...)
	}
	return string(b)
}

func index(i int) string { return "[" + strconv.Itoa(i) + "]" }

const (
	depthReason   = "nested deeper than 32 levels"
	entriesReason = "more than 256 entries"
)

// checkAttrObject validates a decoded attributes object at the given depth.
func checkAttrObject(m map[string]any, depth int) (path, string) {
	if depth > MaxDepth {
		return nil, depthReason
	}
	if len(m) > MaxAttributeEntries {
		return nil, entriesReason
	}
	for k, v := range m {
		if !utf8.ValidString(k) {
			return path{k}, "key must be valid UTF-8"
		}
		if p, r := checkAttrValue(v, depth); r != "" {
			return append(p, k), r
		}
	}
	return nil, ""
}

func checkAttrValue(v any, depth int) (path, string) {
	switch v := v.(type) {
	case nil, bool,
		int, int8, int16, int32, int64,
		uint, uint8, uint16, uint32, uint64, uintptr:
		return nil, ""
	case string:
		if !utf8.ValidString(v) {
			return nil, "must be valid UTF-8"
		}
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, "must be a finite number"
		}
	case float32:
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, "must be a finite number"
		}
	case map[string]any:
		return checkAttrObject(v, depth+1)
	case []any:
		if depth+1 > MaxDepth {
			return nil, depthReason
		}
		if len(v) > MaxAttributeEntries {
			return nil, entriesReason
		}
		for i, x := range v {
			if p, r := checkAttrValue(x, depth+1); r != "" {
				return append(p, index(i)), r
			}
		}
	default:
		return nil, "must be a JSON value"
	}
	return nil, ""
}
