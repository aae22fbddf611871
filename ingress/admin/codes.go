package admin

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	"github.com/campaignmanager/campaignmanager/ingress/event"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// Coupon codes: their form, generation from a pattern, and the parsing of imports.

const (
	// MaxCodeLen is the longest coupon code.
	MaxCodeLen = 64
	// MaxCodesPerRequest is the most codes one import or generation adds (more: several
	// requests; campaignctl splits a file).
	MaxCodesPerRequest = 100_000
	// CodeCharset is what a pattern's '#' becomes: upper-case letters and digits without
	// the look-alikes 0/O, 1/I/L.
	CodeCharset = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
	// minSparsity is how many possible codes a pattern must have per code generated, so
	// a code is not guessed from others (and collisions stay rare).
	minSparsity = 1000
)

// NormalizeCode is the stored form of a code a person or a shop typed: trimmed and
// upper-cased (codes are case-insensitive). ok is false when the result is not a code:
// 1 to 64 of A-Z, 0-9, '-' and '_', starting with a letter or digit.
func NormalizeCode(s string) (code string, ok bool) {
	code = strings.ToUpper(strings.TrimSpace(s))
	if code == "" || len(code) > MaxCodeLen || code[0] == '-' || code[0] == '_' {
		return code, false
	}
	for i := 0; i < len(code); i++ {
		if c := code[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return code, false
		}
	}
	return code, true
}

// Pattern is a validated code pattern: each '#' is a random character of CodeCharset,
// every other character (A-Z, 0-9, '-', '_'; letters upper-cased) stays as it is, e.g.
// SHIP-####-####.
type Pattern struct {
	src    string
	random int // how many '#'
}

// ParsePattern validates a pattern: at most 64 characters, at least 4 '#', no other
// character than A-Z, a-z (upper-cased), 0-9, '-', '_' and '#'. The error is a
// *event.FieldError naming field.
func ParsePattern(field, s string) (Pattern, error) {
	p := Pattern{src: strings.ToUpper(strings.TrimSpace(s))}
	bad := func(reason string) (Pattern, error) {
		return Pattern{}, &event.FieldError{Field: field, Reason: reason}
	}
	if p.src == "" || len(p.src) > MaxCodeLen {
		return bad(fmt.Sprintf("must hold 1 to %d characters, e.g. SHIP-####-####", MaxCodeLen))
	}
	for i := 0; i < len(p.src); i++ {
		switch c := p.src[i]; {
		case c == '#':
			p.random++
		case (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_':
			return bad(fmt.Sprintf("may hold only A-Z, 0-9, '-', '_' and '#' (a random character), got %q", c))
		}
	}
	if p.random < 4 {
		return bad("needs at least 4 '#' (random characters), e.g. SHIP-####-####")
	}
	if p.src[0] == '-' || p.src[0] == '_' {
		return bad("must start with a letter, a digit or '#'")
	}
	return p, nil
}

// String is the pattern, upper-cased.
func (p Pattern) String() string { return p.src }

// Combinations is how many codes the pattern can make (capped at MaxFloat64's range).
func (p Pattern) Combinations() float64 {
	return math.Pow(float64(len(CodeCharset)), float64(p.random))
}

// CheckCount refuses to generate n codes (1..MaxCodesPerRequest) from a pattern with
// fewer than minSparsity possible codes per code, naming field.
func (p Pattern) CheckCount(field string, n int) error {
	if n < 1 || n > MaxCodesPerRequest {
		return &event.FieldError{Field: field, Reason: fmt.Sprintf("must be 1 to %d", MaxCodesPerRequest)}
	}
	if p.Combinations() < float64(n)*minSparsity {
		return &event.FieldError{Field: field, Reason: fmt.Sprintf(
			"pattern %s makes %.0f codes, fewer than %d per code asked for; add '#'", p.src, p.Combinations(), minSparsity)}
	}
	return nil
}

var charsetLen = big.NewInt(int64(len(CodeCharset)))

// Generate returns n distinct codes of the pattern, from crypto/rand.
func (p Pattern) Generate(n int) []string {
	out := make([]string, 0, n)
	seen := make(map[string]bool, n)
	b := []byte(p.src)
	for len(out) < n {
		for i := range b {
			if p.src[i] == '#' {
				k, _ := rand.Int(rand.Reader, charsetLen) // crypto/rand never fails (Go 1.24+)
				b[i] = CodeCharset[k.Int64()]
			}
		}
		code := string(b)
		if !seen[code] {
			seen[code] = true
			out = append(out, code)
		}
	}
	return out
}

// CodeList is what an import brings: codes in their order, each once.
type CodeList struct {
	Codes []persistence.NewCode
	// Repeated counts the codes the list held more than once (kept once, first place).
	Repeated int64
}

// add appends code unless it is in the list already.
func (l *CodeList) add(seen map[string]bool, c persistence.NewCode) {
	if seen[c.Code] {
		l.Repeated++
		return
	}
	seen[c.Code] = true
	l.Codes = append(l.Codes, c)
}

var errTooManyCodes = fmt.Errorf("at most %d codes per request; split the list", MaxCodesPerRequest)

// ParseCodeLines reads an import in text form, line by line: one code per line,
// optionally followed by a comma and its expiry (RFC 3339); blank lines and lines
// starting with '#' are skipped. Codes are normalised (NormalizeCode); one held twice is
// kept once and counted. The error is a *event.FieldError naming the line.
func ParseCodeLines(body []byte) (CodeList, error) {
	var out CodeList
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 4096), 4096)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		field := fmt.Sprintf("line %d", n)
		raw, exp, hasExp := strings.Cut(line, ",")
		code, ok := NormalizeCode(raw)
		if !ok {
			return CodeList{}, &event.FieldError{Field: field, Reason: codeRule(raw)}
		}
		c := persistence.NewCode{Code: code}
		if hasExp {
			t, err := time.Parse(time.RFC3339, strings.TrimSpace(exp))
			if err != nil {
				return CodeList{}, &event.FieldError{Field: field, Reason: "the expiry after the comma must be an RFC 3339 time such as 2026-12-31T23:59:59Z"}
			}
			c.ExpiresAt = &t
		}
		out.add(seen, c)
		if len(out.Codes) > MaxCodesPerRequest {
			return CodeList{}, &event.FieldError{Field: "codes", Reason: errTooManyCodes.Error()}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return CodeList{}, &event.FieldError{Field: "codes", Reason: "a line is longer than 4 KiB"}
		}
		return CodeList{}, err
	}
	return out, nil
}

// ParseCodeArray is ParseCodeLines for the JSON form: codes in order, every one with
// the expiry exp (nil: the pool's). Errors name codes[i].
func ParseCodeArray(codes []string, exp *time.Time) (CodeList, error) {
	if len(codes) > MaxCodesPerRequest {
		return CodeList{}, &event.FieldError{Field: "codes", Reason: errTooManyCodes.Error()}
	}
	out := CodeList{Codes: make([]persistence.NewCode, 0, len(codes))}
	seen := make(map[string]bool, len(codes))
	for i, raw := range codes {
		code, ok := NormalizeCode(raw)
		if !ok {
			return CodeList{}, &event.FieldError{Field: fmt.Sprintf("codes[%d]", i), Reason: codeRule(raw)}
		}
		out.add(seen, persistence.NewCode{Code: code, ExpiresAt: exp})
	}
	return out, nil
}

func codeRule(raw string) string {
	return fmt.Sprintf("a code is 1 to %d of A-Z, 0-9, '-' and '_' (case-insensitive), starting with a letter or digit; got %q", MaxCodeLen, raw)
}
