package admin

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

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
