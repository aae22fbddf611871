package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/golang-jwt/jwt/v5"

	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/admin"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/event"
	"github.com/campaignmanager/campaignmanager/persistence"
	"github.com/campaignmanager/campaignmanager/persistence/pgtest"
)

// TestMain shares one throwaway Postgres cluster.
func TestMain(m *testing.M) { pgtest.Main(m) }

// fakePublisher accepts every event.
type fakePublisher struct{}

func (fakePublisher) PublishEvents(_ context.Context, evs []*event.Event, _ string) []bus.PublishResult {
	return make([]bus.PublishResult, len(evs))
}

// fakeKeys is the api_keys bucket in memory: KeySink and KeyChecker at once.
type fakeKeys struct {
	mu     sync.Mutex
	byHash map[string]persistence.APIKey
	fail   error
}

func (f *fakeKeys) PutAPIKey(_ context.Context, k persistence.APIKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.byHash[k.Hash] = k
	return nil
}

func (f *fakeKeys) CheckAPIKey(secret string) (persistence.APIKey, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.byHash[persistence.HashAPIKeySecret(secret)]
	return k, ok && k.RevokedAt == nil
}

// fakeCampaigns is the campaigns bucket in memory.
type fakeCampaigns struct {
	mu   sync.Mutex
	byID map[string]campaign.Campaign
	fail error
}

func (f *fakeCampaigns) PutCampaign(_ context.Context, c *campaign.Campaign) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.byID[c.ID] = *c
	return nil
}

func (f *fakeCampaigns) get(id string) (campaign.Campaign, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.byID[id]
	return c, ok
}

type testEnv struct {
	srv       *Server
	clock     *fakeClock
	store     *persistence.Store
	dbURL     string
	keys      *fakeKeys
	campaigns *fakeCampaigns
	tokens    map[string]string // role -> bearer token of an admin with that role
	contractState
}

const testPassword = "s3cret-passw0rd"

// envOption changes the collaborators of a test env before its server is built.
type envOption func(ad *admin.Deps, d *Deps)

func newTestEnv(t *testing.T, opts ...envOption) *testEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := pgtest.New(t)
	store, err := persistence.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	env := &testEnv{store: store, dbURL: url,
		keys:      &fakeKeys{byHash: map[string]persistence.APIKey{}},
		campaigns: &fakeCampaigns{byID: map[string]campaign.Campaign{}},
		tokens:    map[string]string{},
	}
	env.clock = &fakeClock{t: time.Now()}
	log := slog.New(slog.DiscardHandler)
	ad := admin.Deps{Store: store, Publisher: fakePublisher{}, Keys: env.keys, Campaigns: env.campaigns, Logger: log}
	deps := Deps{Publisher: fakePublisher{}, Keys: env.keys, Logger: log}
	for _, o := range opts {
		o(&ad, &deps)
	}
	adm, err := admin.New(ad, admin.Config{JWTSecret: []byte(testSecret), TokenTTL: 10 * time.Minute, PasswordCost: bcrypt.MinCost, Now: env.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	deps.Admin = adm
	env.srv, err = New(deps, Config{})
	if err != nil {
		t.Fatal(err)
	}
	passwords := admin.Passwords{Cost: bcrypt.MinCost}
	hash, err := passwords.Hash(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{persistence.RoleAdmin, persistence.RoleEditor, persistence.RoleViewer} {
		if err := store.CreateAdmin(ctx, role+"-user", hash, role); err != nil {
			t.Fatal(err)
		}
		env.tokens[role] = "Bearer " + env.token(t, role+"-user", role)
	}
	return env
}

// token signs an access token for username as the server would (the server checks the
// admin exists, so a token for a missing admin is refused by the guard, not here).
func (e *testEnv) token(t *testing.T, username, role string) string {
	t.Helper()
	return signToken(t, testSecret, username, role, e.clock.now())
}

const testSecret = "0123456789abcdef0123456789abcdef-test"

// signToken signs a 10-minute access token issued at iat with secret, with the claims
// the admin API issues.
func signToken(t *testing.T, secret, username, role string, iat time.Time) string {
	t.Helper()
	now := iat.UTC().Truncate(time.Second)
	claims := jwt.MapClaims{"sub": username, "role": role, "iss": "campaignd", "aud": []string{"campaignd-admin"},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// fakeClock is the admin API's clock in tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// do sends a request; body is JSON-encoded unless it is a string. headers alternate
// name, value. Every answer is validated against the server's /openapi.json (contract).
func (e *testEnv) do(t *testing.T, method, path, auth string, body any, headers ...string) (*http.Response, map[string]any) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req := httptest.NewRequest(method, path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.srv.App().Test(req, 10_000)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	e.contractOf(t).check(t, req, resp.StatusCode, resp.Header, data)
	var out map[string]any
	if len(data) > 0 && data[0] == '{' {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s %s: body %s: %v", method, path, data, err)
		}
	}
	return resp, out
}

func (e *testEnv) expect(t *testing.T, want int, method, path, auth string, body any, headers ...string) map[string]any {
	t.Helper()
	resp, out := e.do(t, method, path, auth, body, headers...)
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d %v, want %d", method, path, resp.StatusCode, out, want)
	}
	return out
}

func TestTokenEndpointChecksCredentials(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	if err := env.store.SetAdminDisabled(t.Context(), "viewer-user", true); err != nil {
		t.Fatal(err)
	}
	out := env.expect(t, 200, "POST", "/v1/auth/token", "", map[string]string{"username": "editor-user", "password": testPassword})
	if out["token_type"] != "Bearer" || out["expires_in"] != float64(600) || out["access_token"] == "" {
		t.Fatalf("token answer = %v", out)
	}
	env.expect(t, 200, "GET", "/v1/campaigns", "Bearer "+out["access_token"].(string), nil)

	tests := []struct {
		name string
		body any
		ct   string
		want int
	}{
		{"wrong password is 401", map[string]string{"username": "editor-user", "password": "nope"}, "", 401},
		{"unknown user is 401", map[string]string{"username": "ghost", "password": testPassword}, "", 401},
		{"disabled admin is 401", map[string]string{"username": "viewer-user", "password": testPassword}, "", 401},
		{"malformed JSON is 400", `{"username":`, "", 400},
		{"unknown field is 400", map[string]string{"username": "x", "password": "y", "otp": "1"}, "", 400},
		{"non-JSON content type is 415", "username=x", "application/x-www-form-urlencoded", 415},
	}
	var details []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hs []string
			if tt.ct != "" {
				hs = []string{"Content-Type", tt.ct}
			}
			out := env.expect(t, tt.want, "POST", "/v1/auth/token", "", tt.body, hs...)
			if tt.want == 401 {
				details = append(details, out["detail"].(string))
			}
		})
	}
	for _, d := range details[1:] {
		if d != details[0] {
			t.Fatalf("401 details differ, leaking which usernames exist: %q", details)
		}
	}
}

func TestAccessBoundaries(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	ctx := t.Context()
	key, secret, err := env.store.CreateAPIKey(ctx, "shop", "admin-user")
	if err != nil {
		t.Fatal(err)
	}
	if err := env.keys.PutAPIKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	passwords := admin.Passwords{Cost: bcrypt.MinCost}
	hash, _ := passwords.Hash(testPassword)
	for _, name := range []string{"gone-admin", "demoted-admin"} {
		if err := env.store.CreateAdmin(ctx, name, hash, persistence.RoleAdmin); err != nil {
			t.Fatal(err)
		}
	}
	disabledTok := env.token(t, "gone-admin", "admin")
	demotedTok := env.token(t, "demoted-admin", "admin")
	if err := env.store.SetAdminDisabled(ctx, "gone-admin", true); err != nil {
		t.Fatal(err)
	}
	if err := env.store.SetAdminRole(ctx, "demoted-admin", persistence.RoleViewer); err != nil {
		t.Fatal(err)
	}
	ghostTok := env.token(t, "ghost", "admin")
	otherTok := signToken(t, strings.Repeat("z", 40), "admin-user", "admin", env.clock.now())
	expiredTok := signToken(t, testSecret, "admin-user", "admin", env.clock.now().Add(-time.Hour))
	adminTok := env.tokens["admin"]
	tampered := adminTok[:len(adminTok)-4] + "AAAA"
	campaign := map[string]any{"name": "x", "rule": "true", "reward": map[string]any{"type": "coupon"}}
	event := `{"id":"e1","user_id":"u1","type":"purchase","amount":1,"currency":"USD","occurred_at":"2024-01-01T00:00:00Z"}`

	tests := []struct {
		name    string
		method  string
		path    string
		auth    string
		body    any
		headers []string
		want    int
	}{
		{"no token is 401", "GET", "/v1/campaigns", "", nil, nil, 401},
		{"tampered token is 401", "GET", "/v1/campaigns", tampered, nil, nil, 401},
		{"token of another key is 401", "GET", "/v1/campaigns", "Bearer " + otherTok, nil, nil, 401},
		{"expired token is 401", "GET", "/v1/campaigns", "Bearer " + expiredTok, nil, nil, 401},
		{"token of a disabled admin is 401", "GET", "/v1/campaigns", "Bearer " + disabledTok, nil, nil, 401},
		{"token of a deleted admin is 401", "GET", "/v1/campaigns", "Bearer " + ghostTok, nil, nil, 401},
		{"the stored role wins over the token's", "GET", "/v1/audit", "Bearer " + demotedTok, nil, nil, 403},
		{"API key in Authorization cannot reach admin routes", "GET", "/v1/api-keys", "ApiKey " + secret, nil, nil, 401},
		{"API key in X-API-Key cannot reach admin routes", "GET", "/v1/campaigns", "", nil, []string{"X-API-Key", secret}, 401},
		{"viewer may read campaigns", "GET", "/v1/campaigns", env.tokens["viewer"], nil, nil, 200},
		{"viewer cannot create a campaign", "POST", "/v1/campaigns", env.tokens["viewer"], campaign, nil, 403},
		{"editor may create a campaign", "POST", "/v1/campaigns", env.tokens["editor"], campaign, nil, 201},
		{"editor cannot create an API key", "POST", "/v1/api-keys", env.tokens["editor"], map[string]string{"name": "k"}, nil, 403},
		{"editor cannot read the audit log", "GET", "/v1/audit", env.tokens["editor"], nil, nil, 403},
		{"admin may read the audit log", "GET", "/v1/audit", adminTok, nil, nil, 200},
		{"admin token cannot ingest events", "POST", "/v1/events", adminTok, event, nil, 401},
		{"API key may ingest events", "POST", "/v1/events", "ApiKey " + secret, event, nil, 202},
		{"X-API-Key may ingest events", "POST", "/v1/events", "", event, []string{"X-API-Key", secret}, 202},
		{"unknown API key is 401", "POST", "/v1/events", "ApiKey cmk_nope", event, nil, 401},
		{"token endpoint is public", "POST", "/v1/auth/token", "", map[string]string{"username": "admin-user", "password": testPassword}, nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, out := env.do(t, tt.method, tt.path, tt.auth, tt.body, tt.headers...)
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d %v, want %d", resp.StatusCode, out, tt.want)
			}
			if tt.want >= 400 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
				t.Fatalf("error content type = %q", resp.Header.Get("Content-Type"))
			}
		})
	}
}

func TestAPIKeyLifecycle(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	admin := env.tokens["admin"]
	event := `{"id":"e1","user_id":"u1","type":"purchase","amount":1,"currency":"USD","occurred_at":"2024-01-01T00:00:00Z"}`

	created := env.expect(t, 201, "POST", "/v1/api-keys", admin, map[string]string{"name": "web shop"})
	secret, _ := created["key"].(string)
	id, _ := created["id"].(string)
	if !strings.HasPrefix(secret, "cmk_") || created["name"] != "web shop" || created["prefix"] != secret[:8] || created["created_at"] == nil {
		t.Fatalf("created = %v", created)
	}
	if _, ok := created["hash"]; ok {
		t.Fatal("the answer holds the hash")
	}
	env.expect(t, 202, "POST", "/v1/events", "ApiKey "+secret, event)

	list := env.expect(t, 200, "GET", "/v1/api-keys", admin, nil)
	keys := list["api_keys"].([]any)
	if len(keys) != 1 {
		t.Fatalf("api_keys = %v", keys)
	}
	k := keys[0].(map[string]any)
	if _, ok := k["key"]; ok {
		t.Fatal("list shows the secret")
	}
	if _, ok := k["hash"]; ok {
		t.Fatal("list shows the hash")
	}

	revoked := env.expect(t, 200, "DELETE", "/v1/api-keys/"+id, admin, nil)
	if revoked["revoked_at"] == nil {
		t.Fatalf("revoked = %v", revoked)
	}
	env.expect(t, 401, "POST", "/v1/events", "ApiKey "+secret, event)
	env.expect(t, 404, "DELETE", "/v1/api-keys/key_missing", admin, nil)
	env.expect(t, 400, "POST", "/v1/api-keys", admin, map[string]string{"name": ""})

	audit := env.expect(t, 200, "GET", "/v1/audit?target_type=api_key", admin, nil)
	var actions []string
	for _, e := range audit["entries"].([]any) {
		actions = append(actions, e.(map[string]any)["action"].(string))
	}
	if strings.Join(actions, ",") != "api_key.create,api_key.revoke" {
		t.Fatalf("audit actions = %v", actions)
	}

	env.keys.fail = errors.New("kv down")
	env.expect(t, 503, "POST", "/v1/api-keys", admin, map[string]string{"name": "other"})
}

func TestCampaignLifecycle(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	editor, viewer := env.tokens["editor"], env.tokens["viewer"]
	body := map[string]any{
		"name": "Big Spender! Q3", "rule": `event.type == "purchase" && event.amount > 50.0`,
		"reward": map[string]any{"type": "points", "points": 100}, "limits": map[string]any{"per_user": 1},
	}
	resp, created := env.do(t, "POST", "/v1/campaigns", editor, body)
	if resp.StatusCode != 201 {
		t.Fatalf("create = %d %v", resp.StatusCode, created)
	}
	id, _ := created["id"].(string)
	if !strings.HasPrefix(id, "big-spender-q3-") || created["version"] != float64(1) || created["status"] != "draft" {
		t.Fatalf("created = %v", created)
	}
	if resp.Header.Get("ETag") != `"1"` {
		t.Fatalf("ETag = %q", resp.Header.Get("ETag"))
	}
	if c, ok := env.campaigns.get(id); !ok || c.Version != 1 {
		t.Fatalf("campaign not published: %+v", c)
	}

	resp, got := env.do(t, "GET", "/v1/campaigns/"+id, viewer, nil)
	if resp.StatusCode != 200 || got["name"] != "Big Spender! Q3" || resp.Header.Get("ETag") != `"1"` {
		t.Fatalf("get = %d %v %s", resp.StatusCode, got, resp.Header.Get("ETag"))
	}

	body["name"] = "Renamed"
	updated := env.expect(t, 200, "PUT", "/v1/campaigns/"+id, editor, body, "If-Match", `"1"`)
	if updated["version"] != float64(2) || updated["name"] != "Renamed" || updated["status"] != "draft" {
		t.Fatalf("updated = %v", updated)
	}
	env.expect(t, 412, "PUT", "/v1/campaigns/"+id, editor, body, "If-Match", "1")
	body["id"] = "someone-else"
	env.expect(t, 400, "PUT", "/v1/campaigns/"+id, editor, body)
	delete(body, "id")

	active := env.expect(t, 200, "POST", "/v1/campaigns/"+id+"/activate", editor, nil, "If-Match", "2")
	if active["status"] != "active" || active["version"] != float64(3) {
		t.Fatalf("activate = %v", active)
	}
	again := env.expect(t, 200, "POST", "/v1/campaigns/"+id+"/activate", editor, nil)
	if again["version"] != float64(3) {
		t.Fatalf("activating an active campaign made a version: %v", again)
	}
	// PUT without status keeps the stored one.
	kept := env.expect(t, 200, "PUT", "/v1/campaigns/"+id, editor, body)
	if kept["status"] != "active" || kept["version"] != float64(4) {
		t.Fatalf("PUT without status = %v", kept)
	}
	paused := env.expect(t, 200, "POST", "/v1/campaigns/"+id+"/pause", editor, nil)
	if paused["status"] != "paused" {
		t.Fatalf("pause = %v", paused)
	}
	archived := env.expect(t, 200, "DELETE", "/v1/campaigns/"+id, editor, nil)
	if archived["status"] != "archived" || archived["version"] != float64(6) {
		t.Fatalf("archive = %v", archived)
	}
	if c, _ := env.campaigns.get(id); c.Status != campaign.StatusArchived || c.Version != 6 {
		t.Fatalf("bucket holds %+v", c)
	}
	env.expect(t, 409, "POST", "/v1/campaigns/"+id+"/activate", editor, nil)
	env.expect(t, 409, "POST", "/v1/campaigns/"+id+"/pause", editor, nil)

	versions := env.expect(t, 200, "GET", "/v1/campaigns/"+id+"/versions", viewer, nil)["versions"].([]any)
	if len(versions) != 6 || versions[0].(map[string]any)["created_by"] != "editor-user" {
		t.Fatalf("versions = %v", versions)
	}
	list := env.expect(t, 200, "GET", "/v1/campaigns", viewer, nil)["campaigns"].([]any)
	if len(list) != 1 {
		t.Fatalf("campaigns = %v", list)
	}

	audit := env.expect(t, 200, "GET", "/v1/audit?target_id="+id+"&limit=2", env.tokens["admin"], nil)
	entries := audit["entries"].([]any)
	if len(entries) != 2 || audit["next_cursor"] == nil || entries[0].(map[string]any)["actor"] != "editor-user" {
		t.Fatalf("audit page = %v", audit)
	}
	rest := env.expect(t, 200, "GET", "/v1/audit?target_id="+id+"&cursor="+audit["next_cursor"].(string), env.tokens["admin"], nil)
	if n := len(rest["entries"].([]any)); n != 4 {
		t.Fatalf("second audit page has %d entries, want 4", n)
	}

	explicit := map[string]any{"id": "summer", "name": "Summer", "status": "active", "rule": "true", "reward": map[string]any{"type": "free_shipping"}}
	if c := env.expect(t, 201, "POST", "/v1/campaigns", editor, explicit); c["id"] != "summer" || c["status"] != "active" {
		t.Fatalf("explicit create = %v", c)
	}
	env.expect(t, 409, "POST", "/v1/campaigns", editor, explicit)
}

func TestCampaignRequestProblems(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	editor := env.tokens["editor"]
	good := func() map[string]any {
		return map[string]any{"name": "x", "rule": "true", "reward": map[string]any{"type": "coupon"}}
	}
	badRule := good()
	badRule["rule"] = "event.amount >\n  user.nope"
	unknown := good()
	unknown["colour"] = "red"
	badID := good()
	badID["id"] = "Not A Slug"

	tests := []struct {
		name  string
		body  any
		ct    string
		want  int
		field string
	}{
		{"invalid rule is 400 with line and column", badRule, "", 400, "rule"},
		{"unknown field is 400 naming it", unknown, "", 400, "colour"},
		{"bad id is 400", badID, "", 400, "id"},
		{"malformed JSON is 400", `{"name": "x",`, "", 400, ""},
		{"two documents are 400", `{"name":"x"} {}`, "", 400, ""},
		{"non-JSON is 415", `name=x`, "text/plain", 415, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hs []string
			if tt.ct != "" {
				hs = []string{"Content-Type", tt.ct}
			}
			out := env.expect(t, tt.want, "POST", "/v1/campaigns", editor, tt.body, hs...)
			if tt.field != "" && out["field"] != tt.field {
				t.Fatalf("field = %v, want %s (%v)", out["field"], tt.field, out)
			}
		})
	}

	out := env.expect(t, 400, "POST", "/v1/campaigns", editor, badRule)
	errs, _ := out["errors"].([]any)
	if len(errs) == 0 {
		t.Fatalf("no errors array: %v", out)
	}
	first := errs[0].(map[string]any)
	if first["field"] != "rule" || first["message"] == "" || first["line"] != float64(2) || first["column"].(float64) < 1 {
		t.Fatalf("first error = %v", first)
	}

	env.expect(t, 404, "GET", "/v1/campaigns/nope", editor, nil)
	env.expect(t, 404, "PUT", "/v1/campaigns/nope", editor, good())
	env.expect(t, 404, "POST", "/v1/campaigns/nope/activate", editor, nil)
	env.expect(t, 404, "GET", "/v1/campaigns/nope/versions", editor, nil)
	env.expect(t, 400, "PUT", "/v1/campaigns/nope", editor, good(), "If-Match", "abc")
}

func TestCampaignPublishFailureIs503AfterCommit(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	env.campaigns.fail = errors.New("kv down")
	out := env.expect(t, 503, "POST", "/v1/campaigns", env.tokens["editor"],
		map[string]any{"id": "kept", "name": "x", "rule": "true", "reward": map[string]any{"type": "coupon"}})
	if out["detail"] == nil {
		t.Fatalf("503 without detail: %v", out)
	}
	if _, err := env.store.GetCampaign(t.Context(), "kept"); err != nil {
		t.Fatalf("campaign not in Postgres after 503: %v", err)
	}
}

func TestValidateRule(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	viewer := env.tokens["viewer"]
	tests := []struct {
		name  string
		body  any
		want  int
		field string
	}{
		{"a boolean rule is valid", map[string]any{"rule": `event.amount > 50 && user.tier == "gold"`}, 200, ""},
		{"rule and integer points are valid", map[string]any{"rule": "true", "points": "int(event.amount * 0.1)"}, 200, ""},
		{"a JSON integer is a constant points expression", map[string]any{"rule": "true", "points": 5}, 200, ""},
		{"a syntax error is 400", map[string]any{"rule": "event.amount >"}, 400, "rule"},
		{"a non-boolean rule is 400", map[string]any{"rule": "event.amount"}, 400, "rule"},
		{"double points are 400", map[string]any{"rule": "true", "points": "event.amount * 0.1"}, 400, "reward.points"},
		{"nothing to validate is 400", map[string]any{}, 400, "rule"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := env.expect(t, tt.want, "POST", "/v1/rules/validate", viewer, tt.body)
			if tt.want == 200 {
				if cost, ok := out["cost"].(float64); out["valid"] != true || !ok || cost < 0 {
					t.Fatalf("answer = %v", out)
				}
				return
			}
			if out["field"] != tt.field {
				t.Fatalf("field = %v, want %s", out["field"], tt.field)
			}
			errs, _ := out["errors"].([]any)
			if tt.field != "rule" || len(errs) == 0 {
				return
			}
			e := errs[0].(map[string]any)
			if e["line"].(float64) < 1 || e["column"].(float64) < 1 || e["message"] == "" {
				t.Fatalf("error = %v", e)
			}
		})
	}
}

func TestAdminManagementTakesEffectAtOnce(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	admin := env.tokens["admin"]
	const first, second = "long-enough-1", "changed-passphrase"
	created := env.expect(t, 201, "POST", "/v1/admins", admin, map[string]string{"username": "new-editor", "password": first, "role": "editor"})
	if created["role"] != "editor" || created["password_hash"] != nil {
		t.Fatalf("created = %v", created)
	}
	env.expect(t, 409, "POST", "/v1/admins", admin, map[string]string{"username": "new-editor", "password": first, "role": "editor"})
	env.expect(t, 400, "POST", "/v1/admins", admin, map[string]string{"username": "x", "password": first, "role": "root"})
	env.expect(t, 403, "POST", "/v1/admins", env.tokens["editor"], map[string]string{"username": "y", "password": first, "role": "admin"})

	tok := env.expect(t, 200, "POST", "/v1/auth/token", "", map[string]string{"username": "new-editor", "password": first})
	bearer := "Bearer " + tok["access_token"].(string)
	env.expect(t, 200, "GET", "/v1/campaigns", bearer, nil)

	env.expect(t, 200, "PATCH", "/v1/admins/new-editor", admin, map[string]any{"disabled": true})
	env.expect(t, 401, "GET", "/v1/campaigns", bearer, nil)
	env.expect(t, 200, "PATCH", "/v1/admins/new-editor", admin, map[string]any{"disabled": false, "role": "viewer"})
	env.expect(t, 403, "POST", "/v1/campaigns", bearer, map[string]any{"name": "x", "rule": "true", "reward": map[string]any{"type": "coupon"}})
	// A password reset ends the tokens issued before it.
	env.expect(t, 200, "PATCH", "/v1/admins/new-editor", admin, map[string]any{"password": second})
	env.expect(t, 401, "GET", "/v1/campaigns", bearer, nil)
	env.expect(t, 401, "POST", "/v1/auth/token", "", map[string]string{"username": "new-editor", "password": first})
	env.expect(t, 200, "POST", "/v1/auth/token", "", map[string]string{"username": "new-editor", "password": second})
	env.expect(t, 404, "PATCH", "/v1/admins/ghost", admin, map[string]any{"disabled": true})

	list := env.expect(t, 200, "GET", "/v1/admins", admin, nil)["admins"].([]any)
	if len(list) != 4 {
		t.Fatalf("admins = %v", list)
	}
	audit := env.expect(t, 200, "GET", "/v1/audit?target_type=admin&target_id=new-editor", admin, nil)["entries"].([]any)
	if len(audit) != 4 {
		t.Fatalf("admin audit = %v", audit)
	}
}

func TestOpenAPIDescribesAdminRoutes(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, withWebhooks(t, false, nil))
	resp, doc := env.do(t, "GET", "/openapi.json", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	paths := doc["paths"].(map[string]any)
	for _, p := range []string{"/v1/auth/token", "/v1/campaigns/{id}", "/v1/users/{id}/rewards", "/v1/api-keys/{id}", "/v1/audit"} {
		if paths[p] == nil {
			t.Errorf("path %s missing", p)
		}
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for _, s := range []string{"Campaign", "Token", "APIKeyCreated", "RewardList"} {
		if schemas[s] == nil {
			t.Errorf("schema %s missing", s)
		}
	}
}

func TestTokenEndpointIsRateLimited(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	clock := env.clock
	login := func(user, pw string) map[string]string { return map[string]string{"username": user, "password": pw} }

	for i := range 10 {
		env.expect(t, 401, "POST", "/v1/auth/token", "", login("editor-user", fmt.Sprintf("guess-%d", i)))
	}
	resp, out := env.do(t, "POST", "/v1/auth/token", "", login("editor-user", testPassword))
	if resp.StatusCode != 429 {
		t.Fatalf("the right password after %d failures = %d %v, want 429", 10, resp.StatusCode, out)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Fatalf("Retry-After = %q, want 1..60 seconds", resp.Header.Get("Retry-After"))
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") || out["status"] != float64(429) {
		t.Fatalf("429 is not a problem: %v %v", resp.Header, out)
	}
	// 10 attempts from this address have counted (refused ones take no token): another
	// admin still gets in, and that success leaves editor-user's bucket empty.
	env.expect(t, 200, "POST", "/v1/auth/token", "", login("admin-user", testPassword))
	env.expect(t, 429, "POST", "/v1/auth/token", "", login("editor-user", testPassword))

	// The address has 11 attempts; 19 more use it up.
	for i := 11; i < 30; i++ {
		env.expect(t, 401, "POST", "/v1/auth/token", "", login(fmt.Sprintf("ghost-%d", i), "x"))
	}
	env.expect(t, 429, "POST", "/v1/auth/token", "", login("viewer-user", testPassword))

	clock.advance(time.Minute)
	env.expect(t, 200, "POST", "/v1/auth/token", "", login("editor-user", testPassword))
}
