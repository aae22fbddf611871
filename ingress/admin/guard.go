package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/ingress/api"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// roleRank orders roles: a route needing rank r admits roles of rank >= r.
func roleRank(role string) int {
	switch role {
	case persistence.RoleViewer:
		return api.Viewer.Rank()
	case persistence.RoleEditor:
		return api.Editor.Rank()
	case persistence.RoleAdmin:
		return api.Admin.Rank()
	}
	return 0
}

func validRole(r string) bool { return roleRank(r) > 0 }

// localAdmin is the Locals key of the persistence.Admin that Guard let through.
const localAdmin = "admin"

// Guard is the access-control middleware of an admin route (access Viewer, Editor or
// Admin): a valid bearer token, issued after the admin's last password change, of an
// admin that still exists, is not disabled and whose current role (the stored one, so a
// demotion takes effect at once) is high enough.
// Other access levels pass through.
func (a *API) Guard(access api.Access) fiber.Handler {
	if !access.IsAdmin() {
		return func(c *fiber.Ctx) error { return c.Next() }
	}
	return func(c *fiber.Ctx) error { return a.guard(c, access) }
}

// Unauthorized is a 401 problem with its WWW-Authenticate challenge.
func Unauthorized(c *fiber.Ctx, scheme, detail string) *api.Problem {
	c.Set(fiber.HeaderWWWAuthenticate, scheme)
	return api.Problemf(fiber.StatusUnauthorized, detail)
}

// AuthScheme splits an Authorization header into its scheme (lower case) and credentials.
func AuthScheme(h string) (scheme, cred string) {
	scheme, cred, _ = strings.Cut(strings.TrimSpace(h), " ")
	return strings.ToLower(scheme), strings.TrimSpace(cred)
}

func (a *API) guard(c *fiber.Ctx, access api.Access) error {
	const bearer = `Bearer realm="campaignd"` //nolint:gosec // G101: an auth scheme's challenge, not a credential
	scheme, cred := AuthScheme(c.Get(fiber.HeaderAuthorization))
	if scheme != "bearer" || cred == "" {
		return Unauthorized(c, bearer, "this route needs an admin token: Authorization: Bearer <token> from POST /v1/auth/token")
	}
	claims, err := a.tokens.parse(cred)
	if err != nil {
		return Unauthorized(c, bearer+`, error="invalid_token"`, "the token is invalid or expired")
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 5*time.Second)
	defer cancel()
	adm, _, err := a.deps.Store.GetAdmin(ctx, claims.Subject)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return Unauthorized(c, bearer+`, error="invalid_token"`, "the token's admin no longer exists")
	case err != nil:
		return fmt.Errorf("guard: %w", err)
	case adm.Disabled:
		return Unauthorized(c, bearer+`, error="invalid_token"`, "the token's admin is disabled")
	case adm.PasswordChangedAt != nil && !issuedAfter(claims, *adm.PasswordChangedAt):
		return Unauthorized(c, bearer+`, error="invalid_token"`, "the token was issued before the admin's password was last changed; log in again")
	}
	if roleRank(adm.Role) < access.Rank() {
		return api.Problemf(fiber.StatusForbidden, fmt.Sprintf("role %s may not do this; it needs %s", adm.Role, access))
	}
	c.Locals(localAdmin, adm)
	return c.Next()
}

// adminOf is the admin Guard let through; zero on routes without an admin.
func adminOf(c *fiber.Ctx) persistence.Admin {
	adm, _ := c.Locals(localAdmin).(persistence.Admin)
	return adm
}
