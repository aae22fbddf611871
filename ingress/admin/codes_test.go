package admin

import (
	"strings"
	"testing"
	"time"

	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// TestGeneratedCodesFollowThePatternWithoutLookAlikes: every '#' becomes a character of
// the charset (no 0, O, 1, I, L), the rest stays, and the codes are distinct.
func TestGeneratedCodesFollowThePatternWithoutLookAlikes(t *testing.T) {
	p, err := ParsePattern("pattern", "ship-####-####")
	if err != nil {
		t.Fatal(err)
	}
	if p.String() != "SHIP-####-####" {
		t.Fatalf("pattern %q", p)
	}
	codes := p.Generate(5000)
	seen := map[string]bool{}
	for _, c := range codes {
		if len(c) != len("SHIP-####-####") || !strings.HasPrefix(c, "SHIP-") || c[9] != '-' {
			t.Fatalf("code %q does not follow the pattern", c)
		}
		for i, r := range c {
			if p.src[i] == '#' && !strings.ContainsRune(CodeCharset, r) {
				t.Fatalf("code %q: %q is not in the charset", c, r)
			}
		}
		if strings.ContainsAny(strings.ReplaceAll(c, "SHIP", ""), "0O1IL") {
			t.Fatalf("code %q has a look-alike", c)
		}
		if seen[c] {
			t.Fatalf("code %q twice", c)
		}
		seen[c] = true
		if _, ok := NormalizeCode(c); !ok {
			t.Fatalf("generated code %q is not a valid code", c)
		}
	}
	if len(codes) != 5000 {
		t.Fatalf("%d codes", len(codes))
	}
	for _, ch := range "0O1IL" {
		if strings.ContainsRune(CodeCharset, ch) {
			t.Fatalf("charset holds the look-alike %q", ch)
		}
	}
}

func TestPatternsAndCountsAreChecked(t *testing.T) {
	for _, tt := range []struct {
		name, pattern string
		count         int
		ok            bool
	}{
		{"enough random characters", "SHIP-####-####", 100_000, true},
		{"too few for the count", "A-####", 1000, false}, // 31^4 = 923521 < 1000 * 1000
		{"four is the least", "###", 1, false},
		{"other characters are refused", "SHIP/####", 1, false},
		{"a space is refused", "SHIP ####", 1, false},
		{"starts with a dash", "-####", 1, false},
		{"count over the request limit", "##########", MaxCodesPerRequest + 1, false},
		{"count zero", "##########", 0, false},
		{"too long", strings.Repeat("#", MaxCodeLen+1), 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePattern("pattern", tt.pattern)
			if err == nil {
				err = p.CheckCount("count", tt.count)
			}
			if (err == nil) != tt.ok {
				t.Fatalf("pattern %q count %d: err %v, want ok %v", tt.pattern, tt.count, err, tt.ok)
			}
			if err != nil && len(event.Fields(err)) == 0 {
				t.Fatalf("err %v is not a field error", err)
			}
		})
	}
}

// TestImportedCodesAreNormalisedAndDeduplicated: codes are trimmed and upper-cased, a
// code repeated in the list is kept once (its first place) and counted, comments and
// blank lines are skipped, an expiry after a comma is read, and a bad line is named.
func TestImportedCodesAreNormalisedAndDeduplicated(t *testing.T) {
	body := "# partner list\nabc-1\n\n  ABC-2 ,2030-01-02T03:04:05Z\nAbC-1\nabc-3\nabc-2\n"
	l, err := ParseCodeLines([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range l.Codes {
		got = append(got, c.Code)
	}
	if strings.Join(got, " ") != "ABC-1 ABC-2 ABC-3" || l.Repeated != 2 {
		t.Fatalf("codes %v repeated %d", got, l.Repeated)
	}
	if exp := l.Codes[1].ExpiresAt; exp == nil || !exp.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("expiry of ABC-2: %v", exp)
	}
	if l.Codes[0].ExpiresAt != nil {
		t.Fatalf("ABC-1 has an expiry")
	}

	for body, field := range map[string]string{
		"ok\nno good\n":           "line 2",
		"ok,yesterday\n":          "line 1",
		"ok\n" + "-dash\n":        "line 2",
		strings.Repeat("x", 5000): "codes",
	} {
		_, err := ParseCodeLines([]byte(body))
		fs := event.Fields(err)
		if len(fs) != 1 || fs[0].Field != field {
			t.Errorf("body %.20q: err %v, want a field error naming %s", body, err, field)
		}
	}

	a, err := ParseCodeArray([]string{"x1", "X1", "y2"}, nil)
	if err != nil || len(a.Codes) != 2 || a.Repeated != 1 {
		t.Fatalf("ParseCodeArray = %+v, %v", a, err)
	}
	if _, err := ParseCodeArray([]string{"ok", "n/a"}, nil); len(event.Fields(err)) != 1 || event.Fields(err)[0].Field != "codes[1]" {
		t.Fatalf("bad code in an array: %v", err)
	}
}
