package event

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

var received = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// body returns a valid event body with extra fields spliced in after "type".
func body(extra string) string {
	s := `{"id":"e1","user_id":"u1","type":"purchase"`
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}

func nested(depth int) string {
	// depth levels of objects, the attributes object counting as level 1.
	return strings.Repeat(`{"a":`, depth-1) + `{}` + strings.Repeat(`}`, depth-1)
}

func TestDecodeAcceptsValidEvents(t *testing.T) {
	local := time.FixedZone("x", 2*3600)
	tests := []struct {
		name string
		body string
		want Event
	}{
		{"minimal event gets received time", `{"id":"e1","user_id":"u1","type":"purchase"}`,
			Event{ID: "e1", UserID: "u1", Type: "purchase", OccurredAt: received}},
		{"full event", `{"id":"e1","user_id":"u1","type":"purchase","amount":12.5,"currency":"EUR","occurred_at":"2024-01-02T03:04:05.123456789Z","attributes":{"sku":"A1","qty":2,"tags":["x",null,true,false,{"k":-1.5e3}]}}`,
			Event{ID: "e1", UserID: "u1", Type: "purchase", Amount: 12.5, Currency: "EUR",
				OccurredAt: time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC),
				Attributes: map[string]any{"sku": "A1", "qty": 2.0, "tags": []any{"x", nil, true, false, map[string]any{"k": -1500.0}}}}},
		{"nulls for optional fields mean absent", body(`"amount":null,"currency":null,"occurred_at":null,"attributes":null`),
			Event{ID: "e1", UserID: "u1", Type: "purchase", OccurredAt: received}},
		{"empty attributes decode to nil", body(`"attributes":{}`),
			Event{ID: "e1", UserID: "u1", Type: "purchase", OccurredAt: received}},
		{"occurred_at offset is stored in UTC", body(`"occurred_at":"2024-01-02T05:04:05+02:00"`),
			Event{ID: "e1", UserID: "u1", Type: "purchase", OccurredAt: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}},
		{"id and user id may hold dots stars gt spaces and non-ASCII", `{"id":"a.b *> Zoë 🙂","user_id":"a.b *> Zoë 🙂","type":"a"}`,
			Event{ID: "a.b *> Zoë 🙂", UserID: "a.b *> Zoë 🙂", Type: "a", OccurredAt: received}},
		{"id of 128 runes", `{"id":"` + strings.Repeat("é", 128) + `","user_id":"u","type":"a"}`,
			Event{ID: strings.Repeat("é", 128), UserID: "u", Type: "a", OccurredAt: received}},
		{"user id of 256 runes", `{"id":"e","user_id":"` + strings.Repeat("🙂", 256) + `","type":"a"}`,
			Event{ID: "e", UserID: strings.Repeat("🙂", 256), Type: "a", OccurredAt: received}},
		{"user id may hold control characters other than NUL", `{"id":"e","user_id":"a\tb\u0001","type":"a"}`,
			Event{ID: "e", UserID: "a\tb\x01", Type: "a", OccurredAt: received}},
		{"escapes are decoded", `{"id":"\u0065\"\\\/\u00e9\ud83d\ude42","user_id":"u","type":"a"}`,
			Event{ID: "e\"\\/é🙂", UserID: "u", Type: "a", OccurredAt: received}},
		{"escaped field names are recognised", `{"\u0069d":"e","user_id":"u","type":"a"}`,
			Event{ID: "e", UserID: "u", Type: "a", OccurredAt: received}},
		{"type of 64 characters with digits dots and underscores", `{"id":"e","user_id":"u","type":"a` + strings.Repeat("0_.z", 15) + `abc"}`,
			Event{ID: "e", UserID: "u", Type: "a" + strings.Repeat("0_.z", 15) + "abc", OccurredAt: received}},
		{"amount zero", body(`"amount":0`), Event{ID: "e1", UserID: "u1", Type: "purchase", OccurredAt: received}},
		{"amount minus zero becomes zero", body(`"amount":-0`), Event{ID: "e1", UserID: "u1", Type: "purchase", OccurredAt: received}},
		{"amount with exponent", body(`"amount":1.5E+2`), Event{ID: "e1", UserID: "u1", Type: "purchase", Amount: 150, OccurredAt: received}},
		{"amount at the maximum", body(`"amount":1e12`), Event{ID: "e1", UserID: "u1", Type: "purchase", Amount: MaxAmount, OccurredAt: received}},
		{"256 attributes and a list of 256", body(`"attributes":` + entries(MaxAttributeEntries-1, `"l":`+list(MaxAttributeEntries))),
			Event{ID: "e1", UserID: "u1", Type: "purchase", OccurredAt: received, Attributes: mustAttrs(entries(MaxAttributeEntries-1, `"l":`+list(MaxAttributeEntries)))}},
		{"fund and metal codes are currencies", body(`"currency":"XAU"`), Event{ID: "e1", UserID: "u1", Type: "purchase", Currency: "XAU", OccurredAt: received}},
		{"white space around tokens", " \t\r\n{ \"id\" : \"e1\" ,\n\"user_id\":\"u1\",\"type\":\"purchase\" } \n",
			Event{ID: "e1", UserID: "u1", Type: "purchase", OccurredAt: received}},
		{"attributes nested 32 deep", body(`"attributes":` + nested(32)),
			Event{ID: "e1", UserID: "u1", Type: "purchase", OccurredAt: received, Attributes: mustAttrs(nested(32))}},
		{"arrays count toward depth", body(`"attributes":{"a":` + strings.Repeat("[", 31) + strings.Repeat("]", 31) + `}`),
			Event{ID: "e1", UserID: "u1", Type: "purchase", OccurredAt: received, Attributes: mustAttrs(`{"a":` + strings.Repeat("[", 31) + strings.Repeat("]", 31) + `}`)}},
		{"received time in another zone is stored in UTC", `{"id":"e","user_id":"u","type":"a"}`,
			Event{ID: "e", UserID: "u", Type: "a", OccurredAt: received}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.body), received.In(local))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !eventsEqual(got, tt.want) {
				t.Fatalf("Decode =\n%#v\nwant\n%#v", got, tt.want)
			}
			if got.OccurredAt.Location() != time.UTC {
				t.Fatalf("OccurredAt location = %v, want UTC", got.OccurredAt.Location())
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("Validate of decoded event: %v", err)
			}
		})
	}
}

// entries is a JSON object of n numbered keys, then extra (a member) when not empty.
func entries(n int, extra string) string {
	ms := make([]string, 0, n+1)
	for i := range n {
		ms = append(ms, `"k`+strconv.Itoa(i)+`":1`)
	}
	if extra != "" {
		ms = append(ms, extra)
	}
	return "{" + strings.Join(ms, ",") + "}"
}

// list is a JSON array of n zeros.
func list(n int) string { return "[" + strings.TrimSuffix(strings.Repeat("0,", n), ",") + "]" }

func mustAttrs(s string) map[string]any {
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		panic(err)
	}
	return m
}

func eventsEqual(a, b Event) bool {
	if !a.OccurredAt.Equal(b.OccurredAt) {
		return false
	}
	a.OccurredAt, b.OccurredAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func TestDecodeRefusesInvalidEvents(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		field  string
		reason string // substring of Reason
	}{
		{"empty body", ``, "", "empty"},
		{"not an object", `[1]`, "", "JSON object"},
		{"string body", `"x"`, "", "JSON object"},
		{"malformed JSON", `{"id":"e1",}`, "", "malformed"},
		{"unterminated object", `{"id":"e1"`, "", "malformed"},
		{"unterminated string", `{"id":"e1`, "", "unterminated"},
		{"trailing data", body("") + `{}`, "", "trailing"},
		{"trailing garbage", body("") + `x`, "", "trailing"},
		{"invalid UTF-8 in a value", "{\"id\":\"e\xff\",\"user_id\":\"u\",\"type\":\"a\"}", "", "UTF-8"},
		{"invalid UTF-8 in an unknown field", body("\"x\xc3\":1"), "", "UTF-8"},
		{"raw control character in string", "{\"id\":\"e\n\",\"user_id\":\"u\",\"type\":\"a\"}", "", "control"},
		{"invalid escape", `{"id":"\x","user_id":"u","type":"a"}`, "", "escape"},
		{"lone high surrogate", `{"id":"\ud83d","user_id":"u","type":"a"}`, "", "surrogate"},
		{"lone low surrogate", `{"id":"\ude42x","user_id":"u","type":"a"}`, "", "surrogate"},
		{"bad literal", body(`"amount":nul`), "", "literal"},
		{"missing value", body(`"amount":}`), "", "malformed"},
		{"unknown field", body(`"colour":"red"`), "colour", "unknown field"},
		{"field names are case sensitive", body(`"ID":"x"`), "ID", "unknown field"},
		{"repeated field", body(`"id":"e2"`), "id", "repeated"},
		{"missing id", `{"user_id":"u","type":"a"}`, "id", "required"},
		{"empty id", `{"id":"","user_id":"u","type":"a"}`, "id", "required"},
		{"null id", `{"id":null,"user_id":"u","type":"a"}`, "id", "must be a string"},
		{"numeric id", `{"id":1,"user_id":"u","type":"a"}`, "id", "must be a string"},
		{"id of 129 runes", `{"id":"` + strings.Repeat("é", 129) + `","user_id":"u","type":"a"}`, "id", "at most 128"},
		{"id with newline escape", `{"id":"a\nb","user_id":"u","type":"a"}`, "id", "control"},
		{"id with DEL", `{"id":"a` + "\x7f" + `b","user_id":"u","type":"a"}`, "id", "control"},
		{"id with C1 control", `{"id":"a\u0085b","user_id":"u","type":"a"}`, "id", "control"},
		{"id with leading space", `{"id":" a","user_id":"u","type":"a"}`, "id", "space"},
		{"id with trailing space", `{"id":"a ","user_id":"u","type":"a"}`, "id", "space"},
		{"missing user id", `{"id":"e","type":"a"}`, "user_id", "required"},
		{"user id object", `{"id":"e","user_id":{},"type":"a"}`, "user_id", "must be a string"},
		{"user id of 257 runes", `{"id":"e","user_id":"` + strings.Repeat("🙂", 257) + `","type":"a"}`, "user_id", "at most 256"},
		{"user id with NUL", `{"id":"e","user_id":"a\u0000","type":"a"}`, "user_id", "NUL"},
		{"missing type", `{"id":"e","user_id":"u"}`, "type", "required"},
		{"type with upper case", `{"id":"e","user_id":"u","type":"Purchase"}`, "type", "must match"},
		{"type starting with digit", `{"id":"e","user_id":"u","type":"1a"}`, "type", "must match"},
		{"type starting with dot", `{"id":"e","user_id":"u","type":".a"}`, "type", "must match"},
		{"type with dash", `{"id":"e","user_id":"u","type":"a-b"}`, "type", "must match"},
		{"type of 65 characters", `{"id":"e","user_id":"u","type":"` + strings.Repeat("a", 65) + `"}`, "type", "must match"},
		{"type boolean", `{"id":"e","user_id":"u","type":true}`, "type", "must be a string"},
		{"amount as string", body(`"amount":"5"`), "amount", "must be a number"},
		{"amount negative", body(`"amount":-0.01`), "amount", ">= 0"},
		{"amount over the maximum", body(`"amount":1000000000000.01`), "amount", "at most 1e12"},
		{"amount largest float", body(`"amount":1.7976931348623157e308`), "amount", "at most 1e12"},
		{"amount 1e400", body(`"amount":1e400`), "amount", "out of range"},
		{"amount -1e400", body(`"amount":-1e400`), "amount", "out of range"},
		{"amount with leading zero", body(`"amount":01`), "", "malformed"},
		{"amount with bare dot", body(`"amount":1.`), "", "invalid number"},
		{"amount with plus sign", body(`"amount":+1`), "", "malformed"},
		{"amount NaN literal", body(`"amount":NaN`), "", "malformed"},
		{"currency lower case", body(`"currency":"eur"`), "currency", "three upper-case"},
		{"currency too long", body(`"currency":"EURO"`), "currency", "three upper-case"},
		{"currency not active", body(`"currency":"ABC"`), "currency", "active ISO 4217"},
		{"currency withdrawn", body(`"currency":"DEM"`), "currency", "active ISO 4217"},
		{"currency testing code", body(`"currency":"XTS"`), "currency", "active ISO 4217"},
		{"currency empty", body(`"currency":""`), "currency", "three upper-case"},
		{"currency number", body(`"currency":978`), "currency", "must be a string"},
		{"occurred_at not RFC 3339", body(`"occurred_at":"2024-01-02 03:04:05"`), "occurred_at", "RFC 3339"},
		{"occurred_at without zone", body(`"occurred_at":"2024-01-02T03:04:05"`), "occurred_at", "RFC 3339"},
		{"occurred_at number", body(`"occurred_at":1700000000`), "occurred_at", "string"},
		{"occurred_at before 1970", body(`"occurred_at":"1969-12-31T23:59:59Z"`), "occurred_at", "between"},
		{"occurred_at after year 9999 in UTC", body(`"occurred_at":"9999-12-31T23:59:59-01:00"`), "occurred_at", "between"},
		{"attributes array", body(`"attributes":[]`), "attributes", "must be an object"},
		{"attributes string", body(`"attributes":"x"`), "attributes", "must be an object"},
		{"attributes nested 33 deep", body(`"attributes":` + nested(33)), "attributes" + strings.Repeat(".a", 32), "deeper than 32"},
		{"attributes arrays nested 33 deep", body(`"attributes":{"a":` + strings.Repeat("[", 32) + strings.Repeat("]", 32) + `}`), "attributes.a" + strings.Repeat("[0]", 31), "deeper than 32"},
		{"attributes number out of range", body(`"attributes":{"x":{"y":[1,-1e400]}}`), "attributes.x.y[1]", "out of range"},
		{"attributes repeated key", body(`"attributes":{"x":1,"x":2}`), "attributes.x", "repeated key"},
		{"attributes with 257 entries", body(`"attributes":` + entries(MaxAttributeEntries+1, "")), "attributes", "more than 256 entries"},
		{"attributes list of 257", body(`"attributes":{"a":{"l":` + list(MaxAttributeEntries+1) + `}}`), "attributes.a.l", "more than 256 entries"},
		{"attributes malformed", body(`"attributes":{"x":1,}`), "", "malformed"},
		{"attributes key not string", body(`"attributes":{1:2}`), "", "malformed"},
		{"attributes lone surrogate", body(`"attributes":{"x":"\udc00"}`), "", "surrogate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.body), received)
			var ve *FieldError
			if !errors.As(err, &ve) {
				t.Fatalf("Decode error = %v, want *FieldError", err)
			}
			if ve.Field != tt.field || !strings.Contains(ve.Reason, tt.reason) {
				t.Fatalf("Decode error = {Field:%q Reason:%q}, want Field %q and Reason containing %q", ve.Field, ve.Reason, tt.field, tt.reason)
			}
		})
	}
}

func TestDecodeSizeLimitIs64KiB(t *testing.T) {
	pad := func(total int) []byte {
		b := []byte(body(`"attributes":{"pad":""}`))
		fill := total - len(b)
		return []byte(body(`"attributes":{"pad":"` + strings.Repeat("x", fill) + `"}`))
	}
	tests := []struct {
		name    string
		body    []byte
		wantErr error
	}{
		{"exactly 64 KiB is accepted", pad(MaxSize), nil},
		{"one byte over 64 KiB is refused", pad(MaxSize + 1), ErrTooLarge},
		{"oversized garbage is refused as too large", []byte(strings.Repeat("x", MaxSize+1)), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.body, received)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Decode(%d bytes) error = %v, want %v", len(tt.body), err, tt.wantErr)
			}
		})
	}
}

func TestDecodeRoundTripsThroughJSON(t *testing.T) {
	in := body(`"amount":0.1,"currency":"JPY","occurred_at":"2024-02-29T23:59:59.5+05:30","attributes":{"a":[1,"<&>",{"b":null}],"c":"\u2028"}`)
	e, err := Decode([]byte(in), received)
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := Decode(out, time.Time{})
	if err != nil {
		t.Fatalf("Decode(%s): %v", out, err)
	}
	if !eventsEqual(e, e2) {
		t.Fatalf("round trip changed the event:\n%#v\n%#v", e, e2)
	}
}

func TestValidateChecksEveryField(t *testing.T) {
	ok := func() Event {
		return Event{ID: "e", UserID: "u", Type: "a", OccurredAt: received}
	}
	deep := map[string]any{}
	m := deep
	for range MaxDepth - 1 {
		n := map[string]any{}
		m["a"] = n
		m = n
	}
	tests := []struct {
		name  string
		edit  func(*Event)
		field string // "" means valid
	}{
		{"valid event", func(*Event) {}, ""},
		{"attributes with Go numbers", func(e *Event) { e.Attributes = map[string]any{"i": 1, "u": uint8(2), "f": float32(1)} }, ""},
		{"attributes nested 32 deep", func(e *Event) { e.Attributes = deep }, ""},
		{"attributes nested 33 deep", func(e *Event) { m["a"] = map[string]any{}; defer delete(m, "a"); e.Attributes = cloneDeep(deep) }, "attributes" + strings.Repeat(".a", 32)},
		{"invalid UTF-8 id", func(e *Event) { e.ID = "\xff" }, "id"},
		{"invalid UTF-8 user id", func(e *Event) { e.UserID = "a\xc3" }, "user_id"},
		{"empty type", func(e *Event) { e.Type = "" }, "type"},
		{"NaN amount", func(e *Event) { e.Amount = math.NaN() }, "amount"},
		{"infinite amount", func(e *Event) { e.Amount = math.Inf(1) }, "amount"},
		{"negative amount", func(e *Event) { e.Amount = -1 }, "amount"},
		{"amount over the maximum", func(e *Event) { e.Amount = 1e308 }, "amount"},
		{"attributes with 257 entries", func(e *Event) { e.Attributes = mustAttrs(entries(MaxAttributeEntries+1, "")) }, "attributes"},
		{"attribute list of 257", func(e *Event) { e.Attributes = map[string]any{"l": make([]any, MaxAttributeEntries+1)} }, "attributes.l"},
		{"unknown currency", func(e *Event) { e.Currency = "ZZZ" }, "currency"},
		{"zero occurred_at", func(e *Event) { e.OccurredAt = time.Time{} }, "occurred_at"},
		{"NaN attribute", func(e *Event) { e.Attributes = map[string]any{"x": []any{math.NaN()}} }, "attributes.x[0]"},
		{"invalid UTF-8 attribute key", func(e *Event) { e.Attributes = map[string]any{"\xff": 1} }, "attributes.\xff"},
		{"invalid UTF-8 attribute string", func(e *Event) { e.Attributes = map[string]any{"s": "\xff"} }, "attributes.s"},
		{"non-JSON attribute", func(e *Event) { e.Attributes = map[string]any{"c": make(chan int)} }, "attributes.c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ok()
			tt.edit(&e)
			err := e.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var ve *FieldError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Fatalf("Validate = %v, want *FieldError for field %q", err, tt.field)
			}
		})
	}
}

func cloneDeep(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if n, ok := v.(map[string]any); ok {
			v = cloneDeep(n)
		}
		out[k] = v
	}
	return out
}

func TestFieldErrorMessageNamesTheField(t *testing.T) {
	tests := []struct {
		name string
		err  FieldError
		want string
	}{
		{"field and reason", FieldError{Field: "amount", Reason: "must be >= 0"}, "amount: must be >= 0"},
		{"whole body", FieldError{Reason: "body is empty"}, "body is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Fatalf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCurrencyListIsWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for line := range strings.Lines(iso4217) {
		code := strings.TrimSpace(line)
		if code == "" || code[0] == '#' {
			continue
		}
		if len(code) != 3 || !isUpper(code[0]) || !isUpper(code[1]) || !isUpper(code[2]) {
			t.Errorf("bad code %q", code)
		}
		if seen[code] {
			t.Errorf("repeated code %q", code)
		}
		seen[code] = true
	}
	for _, c := range []string{"USD", "EUR", "GBP", "JPY", "CHF", "CNY", "INR", "BRL", "XCG", "ZWG", "SLE", "VES"} {
		if !IsCurrency(c) {
			t.Errorf("IsCurrency(%q) = false", c)
		}
	}
	if len(seen) < 170 {
		t.Errorf("only %d codes", len(seen))
	}
}
