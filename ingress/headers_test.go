package ingress

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/campaignmanager/campaignmanager/ingress/admin"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
)

// TestEveryAnswerCarriesItsSecurityHeaders walks the route table: every answer (success,
// error, unmatched) carries X-Content-Type-Options: nosniff; every answer of the admin
// API, errors included, Cache-Control: no-store; every HTML answer a CSP that lets no
// inline script run.
func TestEveryAnswerCarriesItsSecurityHeaders(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, func(ad *admin.Deps, _ *Deps) { ad.DLQ = &fakeDLQ{entries: map[uint64]bus.DLQMessage{}} })
	var html int
	for _, r := range env.srv.routes.Routes {
		path := segmentParam.ReplaceAllString(r.Path, "x")
		auths := []string{""}
		if r.Access.IsAdmin() {
			auths = append(auths, env.tokens["admin"])
		}
		for _, auth := range auths {
			t.Run(r.Method+" "+r.Path+" auth="+map[bool]string{true: "yes", false: "no"}[auth != ""], func(t *testing.T) {
				resp, out := env.do(t, r.Method, path, auth, nil)
				if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
					t.Errorf("%d answer: X-Content-Type-Options = %q", resp.StatusCode, got)
				}
				cc := resp.Header.Get("Cache-Control")
				if admin := r.Access.IsAdmin() || strings.HasPrefix(r.Path, "/v1/auth/"); admin && cc != "no-store" {
					t.Errorf("%d admin answer %v: Cache-Control = %q, want no-store", resp.StatusCode, out, cc)
				}
				if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
					html++
					csp := resp.Header.Get("Content-Security-Policy")
					if csp == "" || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") ||
						!strings.Contains(csp, "frame-ancestors 'none'") || !regexp.MustCompile(`(default|script)-src '(none|self)'`).MatchString(csp) {
						t.Errorf("HTML answer's CSP = %q", csp)
					}
				}
			})
		}
	}
	if html < 2 { // /docs and the console's page
		t.Fatalf("%d HTML answers checked", html)
	}
	for _, p := range []string{"/nowhere", "/v1/nowhere"} {
		resp, _ := env.do(t, "GET", p, "", nil)
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s = %d, X-Content-Type-Options %q", p, resp.StatusCode, resp.Header.Get("X-Content-Type-Options"))
		}
	}
}

// TestRequestIDIsABoundedTokenOrANewOne: X-Request-ID is kept only when it is 1 to 64 of
// [A-Za-z0-9._:-]; anything else is replaced by a new id, which the answer and the
// publication (the Campaign-Correlation-Id NATS header) carry instead.
func TestRequestIDIsABoundedTokenOrANewOne(t *testing.T) {
	t.Parallel()
	pub := &recordingPublisher{}
	env := newTestEnv(t, withPublisher(pub))
	generated := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	tests := []struct {
		name, id string
		kept     bool
	}{
		{"a token is kept", "req-1.a_b:C", true},
		{"64 characters are kept", strings.Repeat("a", 64), true},
		{"65 characters are replaced", strings.Repeat("a", 65), false},
		{"a space is replaced", "a b", false},
		{"a NATS wildcard is replaced", "a.*", false},
		{"non-ASCII is replaced", "réq", false},
		{"a slash is replaced", "a/b", false},
		{"a header-looking value is replaced", "x\tCampaign-Correlation-Id: forged", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := env.do(t, "POST", "/v1/users/alice/adjustments", env.tokens["admin"],
				map[string]any{"points": 1, "reason": "correlation"}, "X-Request-ID", tt.id)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("status = %d", resp.StatusCode)
			}
			got := resp.Header.Get("X-Request-ID")
			switch {
			case tt.kept && got != tt.id:
				t.Fatalf("X-Request-ID = %q, want %q kept", got, tt.id)
			case !tt.kept && !generated.MatchString(got):
				t.Fatalf("X-Request-ID = %q, want a new UUID", got)
			}
			if cid := pub.lastCorrelationID(); cid != got {
				t.Fatalf("published correlation id = %q, want the answer's %q", cid, got)
			}
		})
	}
}
