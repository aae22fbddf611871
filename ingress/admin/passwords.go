package admin

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// Password length bounds: at least MinPasswordChars characters, at most MaxPasswordBytes
// bytes (all that bcrypt reads).
const (
	MinPasswordChars = 12
	MaxPasswordBytes = 72
)

//go:embed common-passwords.txt
var commonPasswordList string

// commonPasswords is the embedded list, lower-cased.
var commonPasswords = func() map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.Split(commonPasswordList, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			m[strings.ToLower(l)] = true
		}
	}
	return m
}()

// CheckPassword returns an error saying why pw may not be the password of the admin
// username, nil when it may: it must hold MinPasswordChars characters to
// MaxPasswordBytes bytes, not be one character repeated, not be the username, and not
// be a common password (common-passwords.txt, compared lower-cased, also with digits
// and symbols around it removed, so "Password2024!" is "password"). The error reads
// after the field's name ("password: must hold …").
func CheckPassword(pw, username string) error {
	switch n := utf8.RuneCountInString(pw); {
	case n < MinPasswordChars || len(pw) > MaxPasswordBytes:
		return fmt.Errorf("must hold at least %d characters and at most %d bytes; got %d characters", MinPasswordChars, MaxPasswordBytes, n)
	case strings.Count(pw, string([]rune(pw)[:1])) == n:
		return errors.New("must not be one character repeated")
	}
	low := strings.ToLower(pw)
	if u := strings.ToLower(strings.TrimSpace(username)); u != "" && strings.TrimSpace(low) == u {
		return errors.New("must not be the username")
	}
	core := strings.TrimFunc(low, func(r rune) bool { return !unicode.IsLetter(r) })
	if commonPasswords[low] || commonPasswords[strings.TrimSpace(low)] || commonPasswords[core] {
		return errors.New("is a common password; choose a longer phrase of unrelated words")
	}
	return nil
}

// DefaultPasswordCost is the bcrypt work factor of production password hashes.
const DefaultPasswordCost = 12

// Passwords hashes and checks admin passwords with bcrypt at Cost (0 means
// DefaultPasswordCost). It is safe for concurrent use.
type Passwords struct {
	Cost int

	dummyOnce sync.Once
	dummyHash string
}

// Hash returns a salted bcrypt hash of pw for persistence.Store.CreateAdmin and
// EnsureAdmin. It fails for an empty password or one longer than 72 bytes.
func (p *Passwords) Hash(pw string) (string, error) {
	if pw == "" {
		return "", errors.New("hash password: password is empty")
	}
	cost := p.Cost
	if cost == 0 {
		cost = DefaultPasswordCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// Check reports whether pw matches hash, a Hash result. It takes as long as the hash's
// cost demands.
func (p *Passwords) Check(hash, pw string) bool {
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

// burn spends the time of one password check, so an unknown username answers as slowly
// as a wrong password.
func (p *Passwords) burn(pw string) {
	p.dummyOnce.Do(func() {
		p.dummyHash, _ = p.Hash("campaignd-dummy-password")
	})
	p.Check(p.dummyHash, pw)
}
