package event

import (
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Decode parses one event from the JSON object in data and validates it (see Validate).
// When the event has no occurred_at (absent or null), received is used; OccurredAt is
// always returned in UTC. JSON null for an optional field means absent, and an empty
// attributes object decodes to nil Attributes. Decode copies what it keeps, so data may be
// reused afterwards.
//
// Decode returns ErrTooLarge when data is longer than MaxSize, and a *FieldError for
// everything else: invalid UTF-8 anywhere in data, malformed JSON, a body that is not one
// object, trailing data, an unknown or repeated top-level field, a field of the wrong JSON
// type, a number out of float64 range, a \u escape that is a lone surrogate, a repeated key
// in attributes, or a broken rule. It is safe for concurrent use.
func Decode(data []byte, received time.Time) (Event, error) {
	if len(data) > MaxSize {
		return Event{}, ErrTooLarge
	}
	if !utf8.Valid(data) {
		return Event{}, &FieldError{Reason: "body is not valid UTF-8"}
	}
	var e Event
	d := decoder{data: data}
	if err := d.event(&e); err != nil {
		return Event{}, err
	}
	if e.OccurredAt.IsZero() {
		e.OccurredAt = received.UTC()
	}
	if err := e.validateScalars(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// decoder is a minimal JSON reader over a body already known to be valid UTF-8.
type decoder struct {
	data    []byte
	pos     int
	scratch []byte // unescaped string contents; valid until the next string read
}

func (d *decoder) syntax(what string) error {
	return &FieldError{Reason: "malformed JSON at byte " + strconv.Itoa(d.pos) + ": " + what}
}

func (d *decoder) skipWS() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte without consuming it, or 0 at the end.
func (d *decoder) peek() byte {
	d.skipWS()
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

const (
	seenID = 1 << iota
	seenUserID
	seenType
	seenAmount
	seenCurrency
	seenOccurredAt
	seenAttributes
)

func (d *decoder) event(e *Event) error {
	if d.peek() != '{' {
		if d.pos == len(d.data) {
			return &FieldError{Reason: "body is empty"}
		}
		return &FieldError{Reason: "body must be a JSON object"}
	}
	d.pos++
	var seen uint
	if d.peek() == '}' {
		d.pos++
	} else {
		for {
			if d.peek() != '"' {
				return d.syntax("expected a field name")
			}
			key, err := d.str()
			if err != nil {
				return err
			}
			if d.peek() != ':' {
				return d.syntax("expected ':'")
			}
			d.pos++
			var bit uint
			switch string(key) {
			case "id":
				bit = seenID
				e.ID, err = d.stringField("id")
			case "user_id":
				bit = seenUserID
				e.UserID, err = d.stringField("user_id")
			case "type":
				bit = seenType
				e.Type, err = d.stringField("type")
			case "amount":
				bit = seenAmount
				e.Amount, err = d.amount()
			case "currency":
				bit = seenCurrency
				e.Currency, err = d.currency()
			case "occurred_at":
				bit = seenOccurredAt
				e.OccurredAt, err = d.occurredAt()
			case "attributes":
				bit = seenAttributes
				e.Attributes, err = d.attributes()
			default:
				return &FieldError{Field: string(key), Reason: "unknown field"}
			}
			if seen&bit != 0 {
				return &FieldError{Field: fieldName(bit), Reason: "repeated field"}
			}
			seen |= bit
			if err != nil {
				return err
			}
			c := d.peek()
			d.pos++
			if c == '}' {
				break
			}
			if c != ',' {
				d.pos--
				return d.syntax("expected ',' or '}'")
			}
		}
	}
	d.skipWS()
	if d.pos != len(d.data) {
		return d.syntax("trailing data after the event object")
	}
	return nil
}

func fieldName(bit uint) string {
	switch bit {
	case seenID:
		return "id"
	case seenUserID:
		return "user_id"
	case seenType:
		return "type"
	case seenAmount:
		return "amount"
	case seenCurrency:
		return "currency"
	case seenOccurredAt:
		return "occurred_at"
	default:
		return "attributes"
	}
}

// isNull consumes a null literal if one comes next.
func (d *decoder) isNull() (bool, error) {
	if d.peek() != 'n' {
		return false, nil
	}
	return true, d.literal("null")
}

func (d *decoder) literal(lit string) error {
	if len(d.data)-d.pos < len(lit) || string(d.data[d.pos:d.pos+len(lit)]) != lit {
		return d.syntax("invalid literal")
	}
	d.pos += len(lit)
	return nil
}

// typeError reports a value of the wrong JSON type, unless the value is not JSON at all.
func (d *decoder) typeError(field, reason string) error {
	switch d.peek() {
	case '"', '{', '[', 't', 'f', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return &FieldError{Field: field, Reason: reason}
	}
	return d.syntax("expected a value")
}

func (d *decoder) stringField(field string) (string, error) {
	if d.peek() != '"' {
		return "", d.typeError(field, "must be a string")
	}
	b, err := d.str()
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func (d *decoder) currency() (string, error) {
	if null, err := d.isNull(); null || err != nil {
		return "", err
	}
	if d.peek() != '"' {
		return "", d.typeError("currency", "must be a string")
	}
	b, err := d.str()
	if err != nil {
		return "", err
	}
	if code, ok := currencies[string(b)]; ok {
		return code, nil
	}
	return "", &FieldError{Field: "currency", Reason: currencyReason(string(b))}
}

func (d *decoder) amount() (float64, error) {
	if null, err := d.isNull(); null || err != nil {
		return 0, err
	}
	c := d.peek()
	if c != '-' && (c < '0' || c > '9') {
		return 0, d.typeError("amount", "must be a number")
	}
	f, err := d.number()
	if err != nil {
		if _, ok := err.(rangeError); ok {
			return 0, &FieldError{Field: "amount", Reason: "number out of range"}
		}
		return 0, err
	}
	if r := checkAmount(f); r != "" {
		return 0, &FieldError{Field: "amount", Reason: r}
	}
	return f + 0, nil // + 0 turns -0 into 0
}

func (d *decoder) occurredAt() (time.Time, error) {
	if null, err := d.isNull(); null || err != nil {
		return time.Time{}, err
	}
	if d.peek() != '"' {
		return time.Time{}, d.typeError("occurred_at", "must be an RFC 3339 time string")
	}
	b, err := d.str()
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, &FieldError{Field: "occurred_at", Reason: "must be an RFC 3339 time"}
	}
	t = t.UTC()
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, &FieldError{Field: "occurred_at", Reason: "must be between 1970-01-01 and 9999-12-31"}
	}
	return t, nil
}

func (d *decoder) attributes() (map[string]any, error) {
	if null, err := d.isNull(); null || err != nil {
		return nil, err
	}
	if d.peek() != '{' {
		return nil, d.typeError("attributes", "must be an object")
	}
	m, p, err := d.object(1)
	if err != nil {
		if ae, ok := err.(*attrError); ok {
			return nil, &FieldError{Field: p.field(), Reason: ae.reason}
		}
		return nil, err
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// attrError is a rule broken inside attributes; the path is returned beside it.
type attrError struct{ reason string }

func (e *attrError) Error() string { return e.reason }

// rangeError is a syntactically valid number that does not fit a float64.
type rangeError struct{}

func (rangeError) Error() string { return "number out of range" }

// object reads an object whose '{' is next, at the given nesting depth.
func (d *decoder) object(depth int) (map[string]any, path, error) {
	if depth > MaxDepth {
		return nil, nil, &attrError{depthReason}
	}
	d.pos++ // '{'
	m := make(map[string]any)
	if d.peek() == '}' {
		d.pos++
		return m, nil, nil
	}
	for {
		if d.peek() != '"' {
			return nil, nil, d.syntax("expected a key")
		}
		kb, err := d.str()
		if err != nil {
			return nil, nil, err
		}
		if _, dup := m[string(kb)]; dup {
			return nil, path{string(kb)}, &attrError{"repeated key"}
		}
		if len(m) == MaxAttributeEntries {
			return nil, nil, &attrError{entriesReason}
		}
		k := string(kb)
		if d.peek() != ':' {
			return nil, nil, d.syntax("expected ':'")
		}
		d.pos++
		v, p, err := d.value(depth)
		if err != nil {
			if _, ok := err.(*attrError); ok {
				p = append(p, k)
			}
			return nil, p, err
		}
		m[k] = v
		c := d.peek()
		d.pos++
		if c == '}' {
			return m, nil, nil
		}
		if c != ',' {
			d.pos--
			return nil, nil, d.syntax("expected ',' or '}'")
		}
	}
}

func (d *decoder) array(depth int) ([]any, path, error) {
	if depth > MaxDepth {
		return nil, nil, &attrError{depthReason}
	}
	d.pos++ // '['
	if d.peek() == ']' {
		d.pos++
		return []any{}, nil, nil // not nil: nil would marshal as null
	}
	a := make([]any, 0, 4)
	for {
		if len(a) == MaxAttributeEntries {
			return nil, nil, &attrError{entriesReason}
		}
		v, p, err := d.value(depth)
		if err != nil {
			if _, ok := err.(*attrError); ok {
				p = append(p, index(len(a)))
			}
			return nil, p, err
		}
		a = append(a, v)
		c := d.peek()
		d.pos++
		if c == ']' {
			return a, nil, nil
		}
		if c != ',' {
			d.pos--
			return nil, nil, d.syntax("expected ',' or ']'")
		}
	}
}

// value reads any JSON value inside an attributes container at depth.
func (d *decoder) value(depth int) (any, path, error) {
	switch c := d.peek(); c {
	case '{':
		return d.object(depth + 1)
	case '[':
		return d.array(depth + 1)
	case '"':
		b, err := d.str()
		if err != nil {
			return nil, nil, err
		}
		return string(b), nil, nil
	case 't':
		return true, nil, d.literal("true")
	case 'f':
		return false, nil, d.literal("false")
	case 'n':
		return nil, nil, d.literal("null")
	default:
		if c != '-' && (c < '0' || c > '9') {
			return nil, nil, d.syntax("expected a value")
		}
		f, err := d.number()
		if _, ok := err.(rangeError); ok {
			return nil, nil, &attrError{"number out of range"}
		}
		return f, nil, err
	}
}

// number reads a JSON number at d.pos.
func (d *decoder) number() (float64, error) {
	data, i := d.data, d.pos
	start := i
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && data[i] >= '1' && data[i] <= '9':
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
	default:
		d.pos = i
		return 0, d.syntax("invalid number")
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || data[i] < '0' || data[i] > '9' {
			d.pos = i
			return 0, d.syntax("invalid number")
		}
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || data[i] < '0' || data[i] > '9' {
			d.pos = i
			return 0, d.syntax("invalid number")
		}
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
	}
	d.pos = i
	f, err := strconv.ParseFloat(string(data[start:i]), 64)
	if err != nil {
		return 0, rangeError{}
	}
	return f, nil
}

// str reads a JSON string whose '"' is next and returns its contents: a slice of the
// body when it has no escapes, else of d.scratch. Either is valid until the next call.
// It scans for the closing quote and hands over to unescape at the first '\\'.
func (d *decoder) str() ([]byte, error) {
	data := d.data
	d.pos++ // '"'
	start := d.pos
	for i := start; i < len(data); i++ {
		c := data[i]
		if c == '"' {
			d.pos = i + 1
			return data[start:i], nil
		}
		if c == '\\' {
			return d.unescape(start, i)
		}
		if c < 0x20 {
			d.pos = i
			return nil, d.syntax("control character in string")
		}
	}
	d.pos = len(data)
	return nil, d.syntax("unterminated string")
}

// unescape reads the rest of the string that began at start, from its first '\\' at i,
// into d.scratch and returns it.
func (d *decoder) unescape(start, i int) ([]byte, error) {
	data := d.data
	buf := append(d.scratch[:0], data[start:i]...)
	for i < len(data) {
		c := data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			d.scratch = buf
			return buf, nil
		case c < 0x20:
			d.pos = i
			return nil, d.syntax("control character in string")
		case c != '\\':
			buf = append(buf, c)
			i++
			continue
		}
		i++ // '\\'
		if i >= len(data) {
			break
		}
		switch data[i] {
		case '"', '\\', '/':
			buf = append(buf, data[i])
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := hex4(data[i+1:])
			if !ok {
				d.pos = i
				return nil, d.syntax("invalid \\u escape")
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2, ok := rune(0), false
				if len(data)-i > 6 && data[i+1] == '\\' && data[i+2] == 'u' {
					r2, ok = hex4(data[i+3:])
				}
				r = utf16.DecodeRune(r, r2)
				if !ok || r == utf8.RuneError {
					d.pos = i
					return nil, d.syntax("\\u escape is a lone surrogate")
				}
				i += 6
			}
			buf = utf8.AppendRune(buf, r)
		default:
			d.pos = i
			return nil, d.syntax("invalid escape")
		}
		i++
	}
	d.pos = i
	return nil, d.syntax("unterminated string")
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
