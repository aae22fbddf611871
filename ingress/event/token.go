package event

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrInvalidToken is wrapped by the errors of ParseToken.
var ErrInvalidToken = errors.New("event: invalid subject token")

// tokenSafe marks the bytes Token copies as they are: [A-Za-z0-9_@:+=-].
var tokenSafe = func() (t [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
		t[c+'a'-'A'] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "_@:+=-" {
		t[c] = true
	}
	return t
}()

const upperHex = "0123456789ABCDEF"

// Token returns the NATS subject token for userID (DESIGN §4): the user id with every
// byte outside [A-Za-z0-9_@:+=-] written as %XX in upper-case hex, byte by byte over the
// UTF-8 encoding. The result never contains '.', '*', '>' or white space, so it is one
// subject token. Token returns userID itself, without allocating, when nothing needs
// escaping. It is safe for concurrent use.
func Token(userID string) string {
	n := 0
	for i := 0; i < len(userID); i++ {
		if !tokenSafe[userID[i]] {
			n++
		}
	}
	if n == 0 {
		return userID
	}
	var b strings.Builder
	b.Grow(len(userID) + 2*n)
	for i := 0; i < len(userID); i++ {
		c := userID[i]
		if tokenSafe[c] {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&0xf])
	}
	return b.String()
}

// ParseToken returns the user id that token encodes. It accepts exactly the output of
// Token for valid UTF-8 user ids, so that tokens and user ids correspond one to one: it
// returns an error wrapping ErrInvalidToken for an empty token, a truncated escape,
// lower-case or non-hex digits, an escape of a byte that Token leaves as is, a raw byte
// that Token would have escaped, or a result that is not valid UTF-8. It is safe for
// concurrent use.
func ParseToken(token string) (string, error) {
	if token == "" {
		return "", invalidToken("empty", 0)
	}
	n := 0
	for i := 0; i < len(token); i++ {
		c := token[i]
		if c == '%' {
			n++
		} else if !tokenSafe[c] {
			return "", invalidToken("byte "+strconv.QuoteRune(rune(c))+" must be escaped", i)
		}
	}
	if n == 0 {
		return token, nil
	}
	size := len(token) - 2*n
	if size < n {
		return "", invalidToken("truncated escape", len(token)-1)
	}
	b := make([]byte, 0, size)
	for i := 0; i < len(token); i++ {
		c := token[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if len(token)-i < 3 {
			return "", invalidToken("truncated escape", i)
		}
		hi, lo := unhex(token[i+1]), unhex(token[i+2])
		if hi < 0 || lo < 0 {
			return "", invalidToken("escape needs two upper-case hex digits", i)
		}
		c = byte(hi<<4 | lo) //nolint:gosec // G115: hi and lo are hex digits (0..15), so the value fits a byte
		if tokenSafe[c] {
			return "", invalidToken("escape of a byte that needs none", i)
		}
		b = append(b, c)
		i += 2
	}
	if !utf8.Valid(b) {
		return "", invalidToken("not valid UTF-8", 0)
	}
	return string(b), nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

func invalidToken(what string, at int) error {
	return &tokenError{what: what, at: at}
}

type tokenError struct {
	what string
	at   int
}

func (e *tokenError) Error() string {
	return ErrInvalidToken.Error() + ": " + e.what + " at byte " + strconv.Itoa(e.at)
}

func (e *tokenError) Unwrap() error { return ErrInvalidToken }
