package ingress

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestTheLastEnabledAdminCannotBeDisabledOrDemoted(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	adm := env.tokens["admin"]
	for _, patch := range []map[string]any{{"disabled": true}, {"role": "editor"}, {"role": "viewer", "password": "a fresh passphrase"}} {
		out := env.expect(t, 409, "PATCH", "/v1/admins/admin-user", adm, patch)
		if d, _ := out["detail"].(string); !strings.Contains(d, "last enabled admin") {
			t.Fatalf("409 detail = %q, want it to say why", d)
		}
	}
	// Refused whole: the password of the third patch did not change either.
	env.expect(t, 200, "POST", "/v1/auth/token", "", map[string]string{"username": "admin-user", "password": testPassword})
	env.expect(t, 200, "GET", "/v1/audit", adm, nil)

	// A disabled admin is no second admin.
	env.expect(t, 201, "POST", "/v1/admins", adm, map[string]string{"username": "backup", "password": "backup passphrase", "role": "admin"})
	env.expect(t, 200, "PATCH", "/v1/admins/backup", adm, map[string]any{"disabled": true})
	env.expect(t, 409, "PATCH", "/v1/admins/admin-user", adm, map[string]any{"role": "viewer"})
	// An enabled one is.
	env.expect(t, 200, "PATCH", "/v1/admins/backup", adm, map[string]any{"disabled": false})
	env.expect(t, 200, "PATCH", "/v1/admins/admin-user", adm, map[string]any{"role": "viewer"})
	// admin-user is a viewer now: backup is the last admin.
	tok := env.expect(t, 200, "POST", "/v1/auth/token", "", map[string]string{"username": "backup", "password": "backup passphrase"})
	env.expect(t, 409, "PATCH", "/v1/admins/backup", "Bearer "+tok["access_token"].(string), map[string]any{"disabled": true})
}

func TestTokensIssuedBeforeAPasswordChangeAreRefused(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	adm := env.tokens["admin"]
	env.expect(t, 201, "POST", "/v1/admins", adm, map[string]string{"username": "vera", "password": "vera first phrase", "role": "viewer"})
	login := func(pw string) string {
		t.Helper()
		return "Bearer " + env.expect(t, 200, "POST", "/v1/auth/token", "", map[string]string{"username": "vera", "password": pw})["access_token"].(string)
	}
	old := login("vera first phrase")
	env.clock.advance(3 * time.Second)
	other := login("vera first phrase")
	env.expect(t, 200, "GET", "/v1/campaigns", old, nil)

	// Her own change, in the same second as the login that follows it.
	env.clock.advance(1500 * time.Millisecond)
	env.expect(t, 204, "PUT", "/v1/auth/password", other, map[string]string{"current_password": "vera first phrase", "new_password": "vera second phrase"})
	for _, tok := range []string{old, other} {
		out := env.expect(t, 401, "GET", "/v1/campaigns", tok, nil)
		if d, _ := out["detail"].(string); !strings.Contains(d, "password") {
			t.Fatalf("401 detail = %q, want it to name the password change", d)
		}
	}
	// A token issued in the very second of the change may predate it: refused.
	sameSecond := "Bearer " + env.token(t, "vera", "viewer")
	env.expect(t, 401, "GET", "/v1/campaigns", sameSecond, nil)
	// A login right after the change, in the same second, works.
	fresh := login("vera second phrase")
	env.expect(t, 200, "GET", "/v1/campaigns", fresh, nil)

	// A reset by an admin ends it too.
	env.clock.advance(10 * time.Second)
	env.expect(t, 200, "PATCH", "/v1/admins/vera", adm, map[string]any{"password": "vera third phrase"})
	env.expect(t, 401, "GET", "/v1/campaigns", fresh, nil)
	env.expect(t, 200, "GET", "/v1/campaigns", login("vera third phrase"), nil)
	// Other admins' tokens are untouched.
	env.expect(t, 200, "GET", "/v1/campaigns", env.tokens["editor"], nil)
}

func TestWeakPasswordsAreRefusedNamingTheField(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	adm := env.tokens["admin"]
	for _, pw := range []string{"12345678", "password", "password1234", "Password2024!", "123456789012", "qqqqqqqqqqqq", "neo-the-one"} {
		t.Run(pw, func(t *testing.T) {
			resp, out := env.do(t, "POST", "/v1/admins", adm, map[string]string{"username": "vera-account", "password": pw, "role": "viewer"})
			expectFieldProblem(t, resp, out, "password")
			resp, out = env.do(t, "PATCH", "/v1/admins/viewer-user", adm, map[string]string{"password": pw})
			expectFieldProblem(t, resp, out, "password")
			resp, out = env.do(t, "PUT", "/v1/auth/password", env.tokens["viewer"], map[string]string{"current_password": testPassword, "new_password": pw})
			expectFieldProblem(t, resp, out, "new_password")
		})
	}
	for _, pw := range []string{"Vera-Account", " vera-account"} {
		resp, out := env.do(t, "POST", "/v1/admins", adm, map[string]string{"username": "vera-account", "password": pw, "role": "viewer"})
		expectFieldProblem(t, resp, out, "password")
	}
	resp, out := env.do(t, "PUT", "/v1/auth/password", env.tokens["viewer"], map[string]string{"current_password": testPassword, "new_password": "Viewer-User"})
	expectFieldProblem(t, resp, out, "new_password")
	env.expect(t, 201, "POST", "/v1/admins", adm, map[string]string{"username": "vera-account", "password": "twelve chars", "role": "viewer"})
}

func TestUsernamesAreTrimmedCaseFoldedAndUnique(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	adm := env.tokens["admin"]
	created := env.expect(t, 201, "POST", "/v1/admins", adm, map[string]string{"username": " Root ", "password": "root passphrase", "role": "viewer"})
	if created["username"] != "root" {
		t.Fatalf("stored username = %v, want root", created["username"])
	}
	for _, name := range []string{"root", "ROOT", " root", "Root\t"} {
		out := env.expect(t, 409, "POST", "/v1/admins", adm, map[string]string{"username": name, "password": "root passphrase", "role": "admin"})
		if d, _ := out["detail"].(string); !strings.Contains(d, "root") {
			t.Fatalf("409 detail = %q", d)
		}
	}
	for _, name := range []string{"", "   ", "a\tb", strings.Repeat("x", 101)} {
		resp, out := env.do(t, "POST", "/v1/admins", adm, map[string]string{"username": name, "password": "root passphrase", "role": "admin"})
		expectFieldProblem(t, resp, out, "username")
	}
	// Logins and paths find the name however it is written.
	for _, name := range []string{"Root", " ROOT ", "root"} {
		env.expect(t, 200, "POST", "/v1/auth/token", "", map[string]string{"username": name, "password": "root passphrase"})
	}
	if out := env.expect(t, 200, "PATCH", "/v1/admins/ROOT", adm, map[string]any{"role": "editor"}); out["username"] != "root" || out["role"] != "editor" {
		t.Fatalf("patch = %v", out)
	}
	list := env.expect(t, 200, "GET", "/v1/admins", adm, nil)["admins"].([]any)
	if len(list) != 4 {
		t.Fatalf("admins = %v", list)
	}

	// Rows stored before keys were unique keep working: by their spelling, or by their
	// key when no other row shares it; a new name cannot collide with them.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, env.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `INSERT INTO admins (username, password_hash, role) SELECT 'Legacy', password_hash, 'viewer' FROM admins WHERE username = 'viewer-user'`); err != nil {
		t.Fatal(err)
	}
	env.expect(t, 200, "POST", "/v1/auth/token", "", map[string]string{"username": "legacy", "password": testPassword})
	env.expect(t, 409, "POST", "/v1/admins", adm, map[string]string{"username": "LEGACY", "password": "root passphrase", "role": "viewer"})
}

func TestPasswordChangeIsRateLimitedWithLogins(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	viewer := env.tokens["viewer"]
	change := func(current string) map[string]string {
		return map[string]string{"current_password": current, "new_password": "a brand new phrase"}
	}
	for i := range 10 {
		env.expect(t, 403, "PUT", "/v1/auth/password", viewer, change("guess-"+strconv.Itoa(i)))
	}
	resp, out := env.do(t, "PUT", "/v1/auth/password", viewer, change(testPassword))
	if resp.StatusCode != 429 {
		t.Fatalf("the right password after 10 wrong ones = %d %v, want 429", resp.StatusCode, out)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Fatalf("Retry-After = %q", resp.Header.Get("Retry-After"))
	}
	// The guesses count against logins of the same admin too.
	env.expect(t, 429, "POST", "/v1/auth/token", "", map[string]string{"username": "viewer-user", "password": testPassword})
	env.clock.advance(time.Minute)
	env.expect(t, 204, "PUT", "/v1/auth/password", viewer, change(testPassword))
}
