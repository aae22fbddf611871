package ingress

import (
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/ingress/api"
)

var routeParam = regexp.MustCompile(`:[A-Za-z_]+\??|\*`)

// concretePath fills a route's parameters with a value.
func concretePath(path string) string { return routeParam.ReplaceAllString(path, "x") }

// roles in rank order: viewer 1, editor 2, admin 3 (api.Access.Rank).
var roles = []string{"viewer", "editor", "admin"}

// rolesBelow are the admin roles a route with access a must refuse.
func rolesBelow(a api.Access) []string { return roles[:a.Rank()-1] }

// lowestRole is the least admin role a route with access a admits.
func lowestRole(a api.Access) string { return roles[a.Rank()-1] }

// TestEveryAdminRouteRefusesMissingWrongAndWeakCredentials walks the route table, so a
// route added later is covered without touching this test.
func TestEveryAdminRouteRefusesMissingWrongAndWeakCredentials(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, withWebhooks(t, false, nil))
	key, secret, err := env.store.CreateAPIKey(t.Context(), "shop", "admin-user")
	if err != nil {
		t.Fatal(err)
	}
	if err := env.keys.PutAPIKey(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	admins := 0
	for _, r := range env.srv.routes.Routes {
		if !r.Access.IsAdmin() {
			continue
		}
		admins++
		path := concretePath(r.Path)
		t.Run(r.Method+" "+r.Path, func(t *testing.T) {
			tests := []struct {
				name    string
				auth    string
				headers []string
				want    int
			}{
				{"no token is 401", "", nil, 401},
				{"an API key in Authorization is 401", "ApiKey " + secret, nil, 401},
				{"an API key in X-API-Key is 401", "", []string{"X-API-Key", secret}, 401},
				{"a malformed bearer token is 401", "Bearer not-a-jwt", nil, 401},
			}
			for _, role := range rolesBelow(r.Access) {
				tests = append(tests, struct {
					name    string
					auth    string
					headers []string
					want    int
				}{"role " + role + " below " + r.Access.String() + " is 403", env.tokens[role], nil, 403})
			}
			for _, tt := range tests {
				resp, out := env.do(t, r.Method, path, tt.auth, nil, tt.headers...)
				if resp.StatusCode != tt.want {
					t.Errorf("%s: status = %d %v, want %d", tt.name, resp.StatusCode, out, tt.want)
				}
				if tt.want == 401 && resp.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("%s: 401 without WWW-Authenticate", tt.name)
				}
			}
		})
	}
	if admins == 0 {
		t.Fatal("the route table has no admin routes")
	}
}

// TestEveryAdminRouteAdmitsItsLowestRole runs each route's guard in front of a stub
// handler, so the check does not depend on what the real handler does with no body.
func TestEveryAdminRouteAdmitsItsLowestRole(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, withWebhooks(t, false, nil))
	const reached = 299
	for _, r := range env.srv.routes.Routes {
		if !r.Access.IsAdmin() {
			continue
		}
		app := fiber.New(fiber.Config{ErrorHandler: errorHandler(env.srv.log)})
		app.Add(r.Method, r.Path, env.srv.guard(r.Access), func(c *fiber.Ctx) error { return c.SendStatus(reached) })
		role := lowestRole(r.Access)
		req := httptest.NewRequest(r.Method, concretePath(r.Path), nil)
		req.Header.Set("Authorization", env.tokens[role])
		resp, err := app.Test(req, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != reached {
			t.Errorf("%s %s with role %s: status %d, want the handler reached", r.Method, r.Path, role, resp.StatusCode)
		}
	}
}

func TestIngestAndPublicRoutesKeepTheirAccess(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	for _, r := range env.srv.routes.Routes {
		path := concretePath(r.Path)
		switch r.Access {
		case api.APIKey:
			for _, auth := range []string{"", env.tokens["admin"]} {
				if resp, out := env.do(t, r.Method, path, auth, nil); resp.StatusCode != 401 {
					t.Errorf("%s %s with %q: status = %d %v, want 401", r.Method, r.Path, auth, resp.StatusCode, out)
				}
			}
		case api.Public:
			if resp, out := env.do(t, r.Method, path, "", nil); resp.StatusCode == 401 || resp.StatusCode == 403 {
				t.Errorf("public %s %s: status = %d %v without credentials", r.Method, r.Path, resp.StatusCode, out)
			}
		}
	}
}

// TestEveryServedRouteIsInTheRouteTable proves nothing is served around the table, and
// so around its guard.
func TestEveryServedRouteIsInTheRouteTable(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, withWebhooks(t, false, nil))
	table := map[string]bool{}
	for _, r := range env.srv.routes.Routes {
		table[r.Method+" "+r.Path] = true
	}
	for _, r := range env.srv.App().GetRoutes(true) {
		key := r.Method + " " + r.Path
		if r.Method == fiber.MethodHead && table["GET "+r.Path] {
			continue // Fiber serves HEAD for every GET route
		}
		if !table[key] {
			t.Errorf("%s is served but not in the route table", key)
		}
	}
}
