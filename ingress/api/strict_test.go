package api

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/campaignmanager/campaignmanager/ingress/event"
)

type strictInner struct {
	Code string         `json:"code"`
	Data map[string]any `json:"data,omitempty"`
}

type strictEmbedded struct {
	Promoted string `json:"promoted"`
}

type strictBody struct {
	strictEmbedded
	Name     string          `json:"name"`
	Count    int             `json:"count"`
	Inner    *strictInner    `json:"inner"`
	List     []strictInner   `json:"list"`
	Raw      json.RawMessage `json:"raw"`
	Free     any             `json:"free"`
	Skipped  string          `json:"-"`
	Untagged string
}

func TestCheckJSONNamesTheField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		body   string
		field  string // "" with ok: accepted
		reason string
		ok     bool
	}{
		{"a valid body is accepted", `{"name":"a","count":1,"inner":{"code":"x","data":{"A":1,"a":2}},"list":[{"code":"y"}],"raw":{"k":[1,"\u00e9"]},"free":null,"promoted":"p","Untagged":"u"}`, "", "", true},
		{"an escaped surrogate pair is accepted", `{"name":"\ud83d\ude00"}`, "", "", true},
		{"NUL escape in a value", `{"name":"a\u0000b"}`, "name", "NUL", false},
		{"raw NUL in a value", "{\"name\":\"a\x00b\"}", "name", "NUL", false},
		{"invalid UTF-8 in a value", "{\"name\":\"a\xffb\"}", "name", "UTF-8", false},
		{"overlong NUL in a value", "{\"name\":\"\xc0\x80\"}", "name", "UTF-8", false},
		{"lone surrogate in a value", `{"name":"\ud800"}`, "name", "surrogate", false},
		{"reversed surrogates", `{"name":"\udc00\ud800"}`, "name", "surrogate", false},
		{"NUL deep in free data", `{"inner":{"code":"x","data":{"k":["ok","\u0000"]}}}`, "inner.data.k[1]", "NUL", false},
		{"NUL inside a raw message", `{"raw":{"user_id":"\u0000"}}`, "raw.user_id", "NUL", false},
		{"NUL in a list element's field", `{"list":[{"code":"x"},{"code":"\u0000"}]}`, "list[1].code", "NUL", false},
		{"NUL in a key", `{"a\u0000":1}`, `a\u0000`, "NUL", false},
		{"raw NUL in a nested key", "{\"free\":{\"a\x00\":1}}", `free.a\u0000`, "NUL", false},
		{"invalid UTF-8 in a key", "{\"free\":{\"\xff\":1}}", `free.\xFF`, "UTF-8", false},
		{"repeated top-level key", `{"name":"a","name":"b"}`, "name", "repeated", false},
		{"repeated key in free data", `{"inner":{"data":{"x":1,"x":2}}}`, "inner.data.x", "repeated", false},
		{"repeated key in a raw message", `{"raw":{"id":"a","id":"b"}}`, "raw.id", "repeated", false},
		{"a case variant of a field", `{"name":"a","Name":"b"}`, "Name", "case-sensitive", false},
		{"a case variant of a nested field", `{"inner":{"CODE":"x"}}`, "inner.CODE", "case-sensitive", false},
		{"an unknown field", `{"colour":"red"}`, "colour", "unknown field", false},
		{"an unknown nested field", `{"inner":{"colour":"red"}}`, "inner.colour", "unknown field", false},
		{"a field tagged -", `{"Skipped":"x"}`, "Skipped", "unknown field", false},
		{"too deep", `{"free":` + strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth) + `}`, "free" + strings.Repeat("[0]", MaxJSONDepth-1), "deeper", false},
		{"as deep as allowed", `{"free":` + strings.Repeat("[", MaxJSONDepth-1) + strings.Repeat("]", MaxJSONDepth-1) + `}`, "", "", true},
		{"empty body", ``, "", "empty", false},
		{"not an object", `["name"]`, "", "object", false},
		{"two documents", `{} {}`, "", "single", false},
		{"malformed", `{"name":`, "", "malformed", false},
		{"bad literal", `{"free":nul}`, "", "malformed", false},
		{"bad number", `{"count":01}`, "", "malformed", false},
		{"control character", "{\"name\":\"a\nb\"}", "", "malformed", false},
		{"bad escape", `{"name":"\x"}`, "", "malformed", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkJSON([]byte(tt.body), reflect.TypeFor[*strictBody]())
			if tt.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				var v strictBody
				if err := json.Unmarshal([]byte(tt.body), &v); err != nil {
					t.Fatalf("encoding/json refuses what checkJSON accepts: %v", err)
				}
				return
			}
			var fe *event.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a *event.FieldError", err)
			}
			if fe.Field != tt.field || !strings.Contains(fe.Reason, tt.reason) {
				t.Fatalf("err = field %q reason %q, want field %q and a reason with %q", fe.Field, fe.Reason, tt.field, tt.reason)
			}
		})
	}
}

// FuzzCheckJSON: whatever checkJSON accepts is one valid JSON document.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"name":"a","inner":{"data":{"x":[1,2.5e3,true,null]}}}`, `{"name":"\ud83d\ude00"}`, `{"a":"\u0000"}`, `[`, `{"free":"\ud800"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if checkJSON(data, reflect.TypeFor[any]()) == nil && !json.Valid(data) {
			t.Fatalf("checkJSON accepted invalid JSON %q", data)
		}
	})
}
