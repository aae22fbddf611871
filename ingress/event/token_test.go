package event

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTokenRoundTrips(t *testing.T) {
	tests := []struct {
		name   string
		userID string
		token  string
	}{
		{"safe bytes are kept", "Az09_@:+=-", "Az09_@:+=-"},
		{"dot is escaped", "a.b", "a%2Eb"},
		{"star is escaped", "*", "%2A"},
		{"gt is escaped", ">", "%3E"},
		{"space is escaped", "a b", "a%20b"},
		{"percent is escaped", "100%", "100%25"},
		{"slash and tilde are escaped", "a/b~", "a%2Fb%7E"},
		{"control characters are escaped", "a\tb\x7f", "a%09b%7F"},
		{"non-ASCII is escaped byte-wise in upper-case hex", "Zoë 🙂", "Zo%C3%AB%20%F0%9F%99%82"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := Token(tt.userID)
			if tok != tt.token {
				t.Fatalf("Token(%q) = %q, want %q", tt.userID, tok, tt.token)
			}
			got, err := ParseToken(tok)
			if err != nil || got != tt.userID {
				t.Fatalf("ParseToken(%q) = %q, %v; want %q", tok, got, err, tt.userID)
			}
		})
	}
}

func TestParseTokenRefusesNonCanonicalTokens(t *testing.T) {
	tests := []struct {
		name  string
		token string
	}{
		{"empty token", ""},
		{"lower-case hex", "a%2eb"},
		{"truncated escape at end", "a%2"},
		{"lone percent", "%"},
		{"non-hex digit", "%G0"},
		{"escaped safe byte", "%41"},
		{"escaped dash", "%2D"},
		{"raw dot", "a.b"},
		{"raw star", "*"},
		{"raw gt", ">"},
		{"raw space", "a b"},
		{"raw non-ASCII", "Zoë"},
		{"raw tilde", "~"},
		{"escape decoding to invalid UTF-8", "%FF"},
		{"escape of half a rune", "%C3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseToken(tt.token)
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("ParseToken(%q) = %q, %v; want ErrInvalidToken", tt.token, got, err)
			}
		})
	}
}

func TestTokenDoesNotAllocateForSafeUserIDs(t *testing.T) {
	id := strings.Repeat("user-42_", 8)
	if n := testing.AllocsPerRun(100, func() { _ = Token(id) }); n != 0 {
		t.Fatalf("Token allocates %v times, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseToken(id) }); n != 0 {
		t.Fatalf("ParseToken allocates %v times, want 0", n)
	}
}

func FuzzToken(f *testing.F) {
	for _, s := range []string{"", "u1", "a.b", "*", ">", " ", "%", "%41", "Zoë 🙂", "\x00", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok := Token(s)
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; !tokenSafe[c] && c != '%' {
				t.Fatalf("Token(%q) = %q holds byte %q", s, tok, c)
			}
		}
		if strings.ContainsAny(tok, ".*> \t\r\n") {
			t.Fatalf("Token(%q) = %q is not one subject token", s, tok)
		}
		got, err := ParseToken(tok)
		if s != "" && utf8.ValidString(s) {
			if err != nil || got != s {
				t.Fatalf("ParseToken(Token(%q)) = %q, %v", s, got, err)
			}
		}
		// Bijection: whatever ParseToken accepts, Token maps back to the same token.
		if u, err := ParseToken(s); err == nil {
			if back := Token(u); back != s {
				t.Fatalf("Token(ParseToken(%q)) = %q", s, back)
			}
		}
	})
}

func BenchmarkToken(b *testing.B) {
	for _, bc := range []struct{ name, id string }{
		{"safe", "user-1234567890"},
		{"escaped", "jane.doe@example.com"},
		{"non-ASCII", "Zoë 🙂"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Token(bc.id)
			}
		})
		b.Run(bc.name+"/parse", func(b *testing.B) {
			tok := Token(bc.id)
			b.ReportAllocs()
			for b.Loop() {
				_, _ = ParseToken(tok)
			}
		})
	}
}
