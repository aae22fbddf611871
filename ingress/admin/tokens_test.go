package admin

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

func newTestIssuer(t *testing.T) *tokenIssuer {
	t.Helper()
	ti, err := newTokenIssuer(testSecret, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return ti
}

func signClaims(t *testing.T, method jwt.SigningMethod, key any, mutate func(*adminClaims)) string {
	t.Helper()
	now := time.Now()
	claims := adminClaims{Role: "admin", RegisteredClaims: jwt.RegisteredClaims{
		Issuer: tokenIssuerName, Subject: "root", Audience: jwt.ClaimStrings{tokenAudience},
		ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
	}}
	if mutate != nil {
		mutate(&claims)
	}
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokenIssuerAcceptsOnlyItsOwnValidTokens(t *testing.T) {
	ti := newTestIssuer(t)
	valid, _, err := ti.issue("root", "editor", ti.now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	expiredIssuer := newTestIssuer(t)
	expiredIssuer.now = func() time.Time { return time.Now().Add(-time.Hour) }
	expired, _, err := expiredIssuer.issue("root", "admin", expiredIssuer.now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := newTokenIssuer([]byte(strings.Repeat("x", 32)), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _, _ := other.issue("root", "admin", other.now(), nil)
	parts := strings.Split(valid, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = []byte(strings.Replace(string(payload), `"role":"editor"`, `"role":"admin"`, 1))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]

	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"a token it issued is valid", valid, true},
		{"an expired token is refused", expired, false},
		{"a token signed with another key is refused", otherKey, false},
		{"a token with altered claims is refused", tampered, false},
		{"alg none is refused", signClaims(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil), false},
		{"HS512 with the right key is refused", signClaims(t, jwt.SigningMethodHS512, testSecret, nil), false},
		{"another issuer is refused", signClaims(t, jwt.SigningMethodHS256, testSecret, func(c *adminClaims) { c.Issuer = "evil" }), false},
		{"another audience is refused", signClaims(t, jwt.SigningMethodHS256, testSecret, func(c *adminClaims) { c.Audience = jwt.ClaimStrings{"other"} }), false},
		{"a token without expiry is refused", signClaims(t, jwt.SigningMethodHS256, testSecret, func(c *adminClaims) { c.ExpiresAt = nil }), false},
		{"a token not yet valid is refused", signClaims(t, jwt.SigningMethodHS256, testSecret, func(c *adminClaims) { c.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour)) }), false},
		{"a token without subject is refused", signClaims(t, jwt.SigningMethodHS256, testSecret, func(c *adminClaims) { c.Subject = "" }), false},
		{"the right claims with the right key are valid", signClaims(t, jwt.SigningMethodHS256, testSecret, nil), true},
		{"garbage is refused", "not.a.token", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims, err := ti.parse(tt.token)
			if tt.ok != (err == nil) {
				t.Fatalf("parse err = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && claims.Subject != "root" {
				t.Fatalf("subject = %q", claims.Subject)
			}
		})
	}
	claims, _ := ti.parse(valid)
	if claims.Role != "editor" || claims.Issuer != tokenIssuerName {
		t.Fatalf("claims = %+v", claims)
	}
}

func TestNewTokenIssuerRefusesShortSecrets(t *testing.T) {
	if _, err := newTokenIssuer([]byte(strings.Repeat("x", 31)), time.Minute); err == nil {
		t.Fatal("31-byte secret accepted")
	}
	if _, err := newTokenIssuer([]byte(strings.Repeat("x", 32)), time.Minute); err != nil {
		t.Fatalf("32-byte secret refused: %v", err)
	}
}

func TestHashPasswordIsSaltedAndChecks(t *testing.T) {
	p := &Passwords{Cost: bcrypt.MinCost}
	h1, err := p.Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := p.Hash("correct horse")
	if h1 == h2 || strings.Contains(h1, "correct horse") {
		t.Fatal("hashes are not salted")
	}
	if cost, _ := bcrypt.Cost([]byte(h1)); cost != bcrypt.MinCost {
		t.Fatalf("cost = %d, want %d", cost, bcrypt.MinCost)
	}
	tests := []struct {
		name string
		hash string
		pw   string
		want bool
	}{
		{"right password matches", h1, "correct horse", true},
		{"wrong password does not", h1, "correct horsE", false},
		{"empty password does not", h1, "", false},
		{"garbage hash never matches", "nope", "correct horse", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Check(tt.hash, tt.pw); got != tt.want {
				t.Fatalf("CheckPassword = %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := p.Hash(""); err == nil {
		t.Fatal("empty password hashed")
	}
	if _, err := p.Hash(strings.Repeat("a", 73)); !errors.Is(err, bcrypt.ErrPasswordTooLong) {
		t.Fatalf("73-byte password: %v", err)
	}
}

func TestPasswordsDefaultToProductionCost(t *testing.T) {
	h, err := (&Passwords{}).Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if cost, _ := bcrypt.Cost([]byte(h)); cost != DefaultPasswordCost {
		t.Fatalf("cost = %d, want %d", cost, DefaultPasswordCost)
	}
}

// TestTokensOfTheSecondOfAPasswordChangeAreRefused: iat has whole seconds, so a token
// issued in the second of a change may predate it and is refused; a login that read the
// changed row in that second gets an iat one second later, which passes.
func TestTokensOfTheSecondOfAPasswordChangeAreRefused(t *testing.T) {
	ti := newTestIssuer(t)
	changed := time.Date(2030, 5, 6, 7, 8, 9, 500_000_000, time.UTC)
	tests := []struct {
		name    string
		read    time.Time
		changed *time.Time
		ok      bool
	}{
		{"issued the second before the change", changed.Add(-time.Second), nil, false},
		{"issued earlier in the second of the change", changed.Add(-100 * time.Millisecond), nil, false},
		{"issued later in the second of the change, without seeing it", changed.Add(100 * time.Millisecond), nil, false},
		{"issued in the second of the change, having read it", changed.Add(100 * time.Millisecond), &changed, true},
		{"issued the second after the change", changed.Add(time.Second), nil, true},
		{"issued long after the change, having read it", changed.Add(time.Hour), &changed, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ti.now = func() time.Time { return tt.read }
			tok, _, err := ti.issue("root", "admin", tt.read, tt.changed)
			if err != nil {
				t.Fatal(err)
			}
			claims, err := ti.parse(tok)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got := issuedAfter(claims, changed); got != tt.ok {
				t.Fatalf("issuedAfter = %v, want %v (iat %v)", got, tt.ok, claims.IssuedAt)
			}
		})
	}
}
