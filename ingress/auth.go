package ingress

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/campaignmanager/campaignmanager/persistence"
)

// Token claims fixed by the server.
const (
	tokenIssuerName = "campaignd"
	tokenAudience   = "campaignd-admin"
	tokenLeeway     = 30 * time.Second
	minSecretLen    = 32
)

// BcryptCost is the bcrypt work factor HashPassword uses. Tests may lower it (to
// bcrypt.MinCost) before hashing; production keeps 12.
var BcryptCost = 12

// HashPassword returns a salted bcrypt hash of pw for persistence.Store.CreateAdmin and
// EnsureAdmin. It fails for an empty password or one longer than 72 bytes.
func HashPassword(pw string) (string, error) {
	if pw == "" {
		return "", errors.New("hash password: password is empty")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), BcryptCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// CheckPassword reports whether pw matches hash, a HashPassword result. It takes as long
// as the hash's cost demands.
func CheckPassword(hash, pw string) bool {
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

var (
	dummyOnce sync.Once
	dummyHash string
)

// burnPassword spends the time of one password check, so an unknown username answers as
// slowly as a wrong password.
func burnPassword(pw string) {
	dummyOnce.Do(func() {
		h, _ := bcrypt.GenerateFromPassword([]byte("campaignd-dummy-password"), BcryptCost)
		dummyHash = string(h)
	})
	CheckPassword(dummyHash, pw)
}

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

// issue signs a token for username with role and returns it with its expiry.
func (t *tokenIssuer) issue(username, role string) (string, time.Time, error) {
	now := t.now().UTC().Truncate(time.Second)
	exp := now.Add(t.ttl)
	claims := adminClaims{
		Role: role,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    tokenIssuerName,
			Subject:   username,
			Audience:  jwt.ClaimStrings{tokenAudience},
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(t.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return s, exp, nil
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

// roleRank orders roles: a route needing rank r admits roles of rank >= r.
func roleRank(role string) int {
	switch role {
	case persistence.RoleViewer:
		return 1
	case persistence.RoleEditor:
		return 2
	case persistence.RoleAdmin:
		return 3
	}
	return 0
}

func (a access) rank() int {
	switch a {
	case accessViewer:
		return 1
	case accessEditor:
		return 2
	case accessAdmin:
		return 3
	}
	return 0
}

// Locals keys set by guard.
const (
	localAdmin  = "admin"   // persistence.Admin, on admin routes
	localAPIKey = "api_key" // persistence.APIKey, on API-key routes
)

// guard is the access-control middleware of a route: public routes pass; API-key routes
// need a valid, unrevoked ingest key; admin routes need a valid bearer token of an admin
// that still exists, is not disabled and whose current role is high enough.
func (s *Server) guard(a access) fiber.Handler {
	switch a {
	case accessPublic:
		return func(c *fiber.Ctx) error { return c.Next() }
	case accessAPIKey:
		return s.guardAPIKey
	}
	return func(c *fiber.Ctx) error { return s.guardAdmin(c, a) }
}

func unauthorized(c *fiber.Ctx, scheme, detail string) *Problem {
	c.Set(fiber.HeaderWWWAuthenticate, scheme)
	return problemf(fiber.StatusUnauthorized, detail)
}

// authScheme splits an Authorization header into its scheme (lower case) and credentials.
func authScheme(h string) (scheme, cred string) {
	scheme, cred, _ = strings.Cut(strings.TrimSpace(h), " ")
	return strings.ToLower(scheme), strings.TrimSpace(cred)
}

func (s *Server) guardAPIKey(c *fiber.Ctx) error {
	key := strings.TrimSpace(c.Get("X-API-Key"))
	if key == "" {
		scheme, cred := authScheme(c.Get(fiber.HeaderAuthorization))
		if scheme == "apikey" {
			key = cred
		}
	}
	if key == "" {
		return unauthorized(c, "ApiKey", "this route needs an API key: Authorization: ApiKey <key> or X-API-Key")
	}
	k, ok := s.deps.Keys.CheckAPIKey(key)
	if !ok {
		return unauthorized(c, "ApiKey", "unknown or revoked API key")
	}
	c.Locals(localAPIKey, k)
	return c.Next()
}

func (s *Server) guardAdmin(c *fiber.Ctx, a access) error {
	const bearer = `Bearer realm="campaignd"`
	if s.tokens == nil || s.deps.Store == nil {
		return problemf(fiber.StatusNotFound, "the admin API is not enabled")
	}
	scheme, cred := authScheme(c.Get(fiber.HeaderAuthorization))
	if scheme != "bearer" || cred == "" {
		return unauthorized(c, bearer, "this route needs an admin token: Authorization: Bearer <token> from POST /v1/auth/token")
	}
	claims, err := s.tokens.parse(cred)
	if err != nil {
		return unauthorized(c, bearer+`, error="invalid_token"`, "the token is invalid or expired")
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 5*time.Second)
	defer cancel()
	adm, _, err := s.deps.Store.GetAdmin(ctx, claims.Subject)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return unauthorized(c, bearer+`, error="invalid_token"`, "the token's admin no longer exists")
	case err != nil:
		return fmt.Errorf("guard: %w", err)
	case adm.Disabled:
		return unauthorized(c, bearer+`, error="invalid_token"`, "the token's admin is disabled")
	}
	// The stored role wins over the token's, so a demotion takes effect at once.
	if roleRank(adm.Role) < a.rank() {
		return problemf(fiber.StatusForbidden, fmt.Sprintf("role %s may not do this; it needs %s", adm.Role, a))
	}
	c.Locals(localAdmin, adm)
	return c.Next()
}

// adminOf is the admin guard let through; zero on routes without an admin.
func adminOf(c *fiber.Ctx) persistence.Admin {
	a, _ := c.Locals(localAdmin).(persistence.Admin)
	return a
}
