package event

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func FuzzDecode(f *testing.F) {
	seeds := []string{
		`{"id":"e1","user_id":"u1","type":"purchase"}`,
		`{"id":"e1","user_id":"Zoë 🙂","type":"a.b","amount":12.5,"currency":"EUR","occurred_at":"2024-01-02T03:04:05.1+01:00","attributes":{"a":[1,true,null,"x",{"b":-1e-3}]}}`,
		`{"id":"\u0065\ud83d\ude42","user_id":"u","type":"a","amount":null,"attributes":{}}`,
		`{"id":"e","user_id":"u","type":"a","amount":1e400}`,
		`{"id":"e","user_id":"u","type":"a","attributes":` + nested(33) + `}`,
		`{"id":"e","user_id":"u","type":"a","x":1}`,
		`{"id":"e","user_id":"u","type":"a"} x`,
		`[]`, ``, `{`, `"\`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Decode(data, now)
		if err != nil {
			var ve *FieldError
			if !errors.Is(err, ErrTooLarge) && !errors.As(err, &ve) {
				t.Fatalf("Decode error %T %v is neither ErrTooLarge nor *FieldError", err, err)
			}
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("Decode accepted %q but Validate = %v", data, err)
		}
		out, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("Marshal of accepted %q: %v", data, err)
		}
		e2, err := Decode(out, time.Time{})
		if err != nil {
			t.Fatalf("Decode of re-marshalled %q (from %q): %v", out, data, err)
		}
		if !eventsEqual(e, e2) {
			t.Fatalf("round trip of %q changed the event:\n%#v\n%#v", data, e, e2)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	for _, bc := range []struct{ name, body string }{
		{"minimal", `{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","user_id":"user-12345","type":"signup"}`},
		{"typical", `{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","user_id":"user-12345","type":"purchase","amount":49.99,"currency":"EUR","occurred_at":"2025-06-01T12:00:00.123Z","attributes":{"sku":"A-100","qty":2,"channel":"web","tags":["promo","new"]}}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			data := []byte(bc.body)
			now := time.Now()
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(data, now); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/encoding_json", func(b *testing.B) {
			data := []byte(bc.body)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				var e Event
				if err := json.Unmarshal(data, &e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
