package api

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// MaxJSONDepth is how deeply objects and arrays of a request body may nest.
const MaxJSONDepth = 64

// checkJSON walks the one JSON document in data before encoding/json decodes it into a
// value of type t, and refuses, as a *event.FieldError naming the field (a path such as
// "reward.data.code" or "tiers[1].name"), what encoding/json would let through or could
// not name: a string (key or value) that is not valid UTF-8, holds a NUL character
// (raw or \u0000) or a \u escape that is a lone surrogate (encoding/json turns those into
// U+FFFD); a repeated key in any object; in an object decoded into a struct, a key that
// is not exactly one of its fields (encoding/json matches names case-insensitively, so
// {"name":…,"Name":…} would otherwise be a silent duplicate); nesting deeper than
// MaxJSONDepth. Malformed JSON, an empty body and trailing data are field errors without
// a field. Type mismatches are left to encoding/json, which names the field.
//
// It is the same strictness event.Decode applies to events (DESIGN §4), for every body of
// the admin API.
func checkJSON(data []byte, t reflect.Type) error {
	w := walker{data: data}
	w.skipWS()
	if w.pos == len(data) {
		return &event.FieldError{Reason: "the body is empty; it must be a JSON object"}
	}
	s := shapeOf(t)
	if s.kind == shapeStruct && data[w.pos] != '{' {
		return &event.FieldError{Reason: "the body must be a JSON object"}
	}
	if err := w.value(s, "", 0); err != nil {
		return err
	}
	w.skipWS()
	if w.pos != len(data) {
		return &event.FieldError{Reason: "the body must hold a single JSON document"}
	}
	return nil
}

// shape is what checkJSON knows of the Go type a JSON value decodes into.
type shape struct {
	kind shapeKind
	// fields are a struct's JSON names (shapeStruct).
	fields map[string]*shape
	// elem is the shape of a map's values or a slice's elements.
	elem *shape
}

type shapeKind int

const (
	shapeAny    shapeKind = iota // free-form JSON: interfaces, custom decoders, scalars
	shapeStruct                  // an object with known, exact field names
	shapeMap                     // an object with free keys
	shapeList                    // an array
)

var (
	anyShape   = &shape{kind: shapeAny}
	shapeCache sync.Map // reflect.Type -> *shape

	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// shapeOf returns (and caches) the shape of t.
func shapeOf(t reflect.Type) *shape {
	if t == nil {
		return anyShape
	}
	if s, ok := shapeCache.Load(t); ok {
		return s.(*shape)
	}
	s := buildShape(t, map[reflect.Type]*shape{})
	shapeCache.Store(t, s)
	return s
}

// buildShape follows encoding/json's rules for which JSON a type takes; seen breaks
// cycles of recursive types.
func buildShape(t reflect.Type, seen map[reflect.Type]*shape) *shape {
	for t.Kind() == reflect.Pointer {
		if decodesItself(t) {
			return anyShape
		}
		t = t.Elem()
	}
	if decodesItself(t) || decodesItself(reflect.PointerTo(t)) {
		return anyShape
	}
	if s, ok := seen[t]; ok {
		return s
	}
	switch t.Kind() {
	case reflect.Struct:
		s := &shape{kind: shapeStruct, fields: map[string]*shape{}}
		seen[t] = s
		addFields(s, t, seen)
		return s
	case reflect.Map:
		s := &shape{kind: shapeMap}
		seen[t] = s
		s.elem = buildShape(t.Elem(), seen)
		return s
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return anyShape // []byte is a base64 string
		}
		s := &shape{kind: shapeList}
		seen[t] = s
		s.elem = buildShape(t.Elem(), seen)
		return s
	}
	return anyShape
}

func decodesItself(t reflect.Type) bool {
	return t.Implements(unmarshalerType) || t.Implements(textUnmarshalerType)
}

// addFields adds the JSON fields of struct t to s: a field's own fields first, then
// those promoted from untagged embedded structs (a shallower name wins, as in
// encoding/json).
func addFields(s *shape, t reflect.Type, seen map[reflect.Type]*shape) {
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				embedded = append(embedded, ft)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fs := buildShape(f.Type, seen)
		if strings.Contains(","+opts+",", ",string,") {
			fs = anyShape
		}
		s.fields[name] = fs
	}
	for _, et := range embedded {
		inner := &shape{kind: shapeStruct, fields: map[string]*shape{}}
		addFields(inner, et, seen)
		for k, v := range inner.fields {
			if _, ok := s.fields[k]; !ok {
				s.fields[k] = v
			}
		}
	}
}

// walker reads one JSON document and checks it against shapes (checkJSON).
type walker struct {
	data []byte
	pos  int
}

func (w *walker) skipWS() {
	for w.pos < len(w.data) {
		switch w.data[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

func (w *walker) syntax(what string) error {
	return &event.FieldError{Reason: "malformed JSON at byte " + strconv.Itoa(w.pos) + ": " + what}
}

// join is the path of a key inside the object at path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// value checks the value at w.pos, found at path, against s.
func (w *walker) value(s *shape, path string, depth int) error {
	w.skipWS()
	if w.pos == len(w.data) {
		return w.syntax("unexpected end of the body")
	}
	switch c := w.data[w.pos]; {
	case c == '{':
		if depth >= MaxJSONDepth {
			return &event.FieldError{Field: path, Reason: "nests objects and arrays deeper than " + strconv.Itoa(MaxJSONDepth) + " levels"}
		}
		return w.object(s, path, depth+1)
	case c == '[':
		if depth >= MaxJSONDepth {
			return &event.FieldError{Field: path, Reason: "nests objects and arrays deeper than " + strconv.Itoa(MaxJSONDepth) + " levels"}
		}
		return w.array(s, path, depth+1)
	case c == '"':
		_, err := w.str(path)
		return err
	case c == 't':
		return w.literal("true")
	case c == 'f':
		return w.literal("false")
	case c == 'n':
		return w.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return w.number()
	}
	return w.syntax("expected a value")
}

func (w *walker) object(s *shape, path string, depth int) error {
	w.pos++ // '{'
	keys := map[string]bool{}
	w.skipWS()
	if w.pos < len(w.data) && w.data[w.pos] == '}' {
		w.pos++
		return nil
	}
	for {
		w.skipWS()
		if w.pos == len(w.data) || w.data[w.pos] != '"' {
			return w.syntax("expected a field name")
		}
		start := w.pos
		key, err := w.str(path)
		if err != nil {
			if fe, ok := err.(*event.FieldError); ok && fe.Field == path && !strings.HasPrefix(fe.Reason, "malformed") {
				fe.Field = join(path, w.rawKey(start))
			}
			return err
		}
		field := join(path, key)
		if keys[key] {
			return &event.FieldError{Field: field, Reason: "repeated key"}
		}
		keys[key] = true
		elem := anyShape
		switch s.kind {
		case shapeStruct:
			fs, ok := s.fields[key]
			if !ok {
				return &event.FieldError{Field: field, Reason: unknownReason(s, key)}
			}
			elem = fs
		case shapeMap:
			elem = s.elem
		}
		w.skipWS()
		if w.pos == len(w.data) || w.data[w.pos] != ':' {
			return w.syntax("expected ':'")
		}
		w.pos++
		if err := w.value(elem, field, depth); err != nil {
			return err
		}
		w.skipWS()
		if w.pos == len(w.data) {
			return w.syntax("expected ',' or '}'")
		}
		switch w.data[w.pos] {
		case ',':
			w.pos++
		case '}':
			w.pos++
			return nil
		default:
			return w.syntax("expected ',' or '}'")
		}
	}
}

// unknownReason says a key is no field of s, pointing at the field it differs from only
// in case.
func unknownReason(s *shape, key string) string {
	for name := range s.fields {
		if strings.EqualFold(name, key) {
			return "unknown field; names are case-sensitive: did you mean " + strconv.Quote(name) + "?"
		}
	}
	return "unknown field"
}

func (w *walker) array(s *shape, path string, depth int) error {
	w.pos++ // '['
	elem := anyShape
	if s.kind == shapeList {
		elem = s.elem
	}
	w.skipWS()
	if w.pos < len(w.data) && w.data[w.pos] == ']' {
		w.pos++
		return nil
	}
	for i := 0; ; i++ {
		if err := w.value(elem, path+"["+strconv.Itoa(i)+"]", depth); err != nil {
			return err
		}
		w.skipWS()
		if w.pos == len(w.data) {
			return w.syntax("expected ',' or ']'")
		}
		switch w.data[w.pos] {
		case ',':
			w.pos++
		case ']':
			w.pos++
			return nil
		default:
			return w.syntax("expected ',' or ']'")
		}
	}
}

func (w *walker) literal(lit string) error {
	if !strings.HasPrefix(string(w.data[w.pos:min(len(w.data), w.pos+len(lit))]), lit) {
		return w.syntax("invalid literal")
	}
	w.pos += len(lit)
	return nil
}

// number skips a JSON number.
func (w *walker) number() error {
	d, i := w.data, w.pos
	digits := func() bool {
		start := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case !digits():
		w.pos = i
		return w.syntax("invalid number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if !digits() {
			w.pos = i
			return w.syntax("invalid number")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if !digits() {
			w.pos = i
			return w.syntax("invalid number")
		}
	}
	w.pos = i
	return nil
}

// str reads the string whose '"' is next, a key or a value at path, and returns its
// contents. A string that is not valid UTF-8, holds NUL or a lone surrogate is a field
// error naming path (for a key: the object holding it).
func (w *walker) str(path string) (string, error) {
	d := w.data
	w.pos++ // '"'
	var b strings.Builder
	for w.pos < len(d) {
		c := d[w.pos]
		switch {
		case c == '"':
			w.pos++
			return b.String(), nil
		case c == 0:
			return "", nulError(path)
		case c < 0x20:
			return "", w.syntax("control character in a string")
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(d[w.pos:])
			if r == utf8.RuneError && n <= 1 {
				return "", &event.FieldError{Field: path, Reason: "must be valid UTF-8"}
			}
			b.Write(d[w.pos : w.pos+n])
			w.pos += n
		case c != '\\':
			b.WriteByte(c)
			w.pos++
		default:
			if err := w.escape(&b, path); err != nil {
				return "", err
			}
		}
	}
	return "", w.syntax("unterminated string")
}

// escape reads the escape sequence at w.pos (its '\\') into b.
func (w *walker) escape(b *strings.Builder, path string) error {
	d := w.data
	if w.pos+1 >= len(d) {
		return w.syntax("unterminated string")
	}
	switch e := d[w.pos+1]; e {
	case '"', '\\', '/':
		b.WriteByte(e)
	case 'b':
		b.WriteByte('\b')
	case 'f':
		b.WriteByte('\f')
	case 'n':
		b.WriteByte('\n')
	case 'r':
		b.WriteByte('\r')
	case 't':
		b.WriteByte('\t')
	case 'u':
		r, ok := hex4(d[w.pos+2:])
		if !ok {
			return w.syntax(`invalid \u escape`)
		}
		w.pos += 6
		if utf16.IsSurrogate(r) {
			r2, ok := rune(0), false
			if len(d)-w.pos >= 6 && d[w.pos] == '\\' && d[w.pos+1] == 'u' {
				r2, ok = hex4(d[w.pos+2:])
			}
			r = utf16.DecodeRune(r, r2)
			if !ok || r == utf8.RuneError {
				return &event.FieldError{Field: path, Reason: `must be valid UTF-8: a \u escape is a lone surrogate`}
			}
			w.pos += 6
		}
		if r == 0 {
			return nulError(path)
		}
		b.WriteRune(r)
		return nil
	default:
		return w.syntax("invalid escape")
	}
	w.pos += 2
	return nil
}

// rawKey is the key whose '"' is at start as written in the body, for naming a key that
// is not valid: NUL, other control characters and bytes that are not UTF-8 are shown
// as \uXXXX and \xXX.
func (w *walker) rawKey(start int) string {
	var b strings.Builder
	d := w.data
	for i := start + 1; i < len(d) && d[i] != '"'; {
		r, n := utf8.DecodeRune(d[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02X`, d[i])
		case r < 0x20:
			fmt.Fprintf(&b, `\u%04X`, r)
		case r == '\\' && i+1 < len(d):
			b.WriteByte('\\')
			b.WriteByte(d[i+1])
			i += 2
			continue
		default:
			b.WriteRune(r)
		}
		i += n
	}
	return b.String()
}

func nulError(path string) error {
	return &event.FieldError{Field: path, Reason: "must not contain NUL characters"}
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	r, err := strconv.ParseUint(string(b[:4]), 16, 16)
	return rune(r), err == nil
}
