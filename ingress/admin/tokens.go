package admin

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token claims fixed by the server.
const (
	tokenIssuerName = "campaignd"
	tokenAudience   = "campaignd-admin"
	tokenLeeway     = 30 * time.Second
	minSecretLen    = 32
)

// adminClaims are the claims of an admin access token.
type adminClaims struct {
	Role string `json:"role"`
	jwt.RegisteredClaims
}

// tokenIssuer signs and verifies admin access tokens (HS256). It is safe for concurrent use.
type tokenIssuer struct {
	secret []byte
	ttl    time.Duration
	parser *jwt.Parser
	now    func() time.Time
	// logins limits attempts at POST /v1/auth/token. It lives here because it exists
	// exactly when the issuer does: when the admin API is enabled.
	logins *loginLimiter
}

func newTokenIssuer(secret []byte, ttl time.Duration) (*tokenIssuer, error) {
	if len(secret) < minSecretLen {
		return nil, fmt.Errorf("ingress: JWT secret must be at least %d bytes, got %d", minSecretLen, len(secret))
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("ingress: token TTL must be positive, got %s", ttl)
	}
	t := &tokenIssuer{secret: append([]byte(nil), secret...), ttl: ttl, now: time.Now, logins: newLoginLimiter()}
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(tokenIssuerName),
		jwt.WithAudience(tokenAudience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(tokenLeeway),
		jwt.WithTimeFunc(func() time.Time { return t.now() }),
	)
	return t, nil
}

// issue signs a token for username with role and returns it with its expiry. Its iat is
// the second the credentials were read (read), or the second after the password's last
// change (changed, nil for none) when that is later: a token checked against the current
// password has an iat past the change, and every token issued before the change has one
// at or before its second, so the guard refuses those by comparing seconds (issuedAfter)
// without refusing the login right after a change.
func (t *tokenIssuer) issue(username, role string, read time.Time, changed *time.Time) (string, time.Time, error) {
	now := t.now().UTC().Truncate(time.Second)
	iat := read.UTC().Truncate(time.Second)
	if changed != nil {
		if after := changed.UTC().Truncate(time.Second).Add(time.Second); after.After(iat) {
			iat = after
		}
	}
	nbf, exp := now, now.Add(t.ttl)
	if iat.Before(nbf) {
		nbf = iat
	}
	claims := adminClaims{
		Role: role,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    tokenIssuerName,
			Subject:   username,
			Audience:  jwt.ClaimStrings{tokenAudience},
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(iat),
			NotBefore: jwt.NewNumericDate(nbf),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(t.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return s, exp, nil
}

// issuedAfter reports whether a token's iat is past the second of changed, the admin's
// last password change: a token issued in that second may predate the change, so it is
// refused (see issue).
func issuedAfter(c *adminClaims, changed time.Time) bool {
	return c.IssuedAt != nil && c.IssuedAt.Unix() > changed.Unix()
}

// parse verifies a token's signature, algorithm, issuer, audience and times, and returns
// its claims.
func (t *tokenIssuer) parse(token string) (*adminClaims, error) {
	var claims adminClaims
	_, err := t.parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return t.secret, nil })
	if err != nil {
		return nil, fmt.Errorf("parse token: %w", err)
	}
	if claims.Subject == "" {
		return nil, errors.New("parse token: no subject")
	}
	return &claims, nil
}
