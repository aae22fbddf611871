package ingress

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/campaignmanager/campaignmanager/ingress/admin"
	"github.com/campaignmanager/campaignmanager/ingress/api"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// adminRoutes are the routes of the admin API in the table: everything under /v1/ but
// event ingest.
func adminRoutes(env *testEnv) []api.Route {
	var out []api.Route
	for _, r := range env.srv.routes.Routes {
		if strings.HasPrefix(r.Path, "/v1/") && r.Access != api.APIKey {
			out = append(out, r)
		}
	}
	return out
}

// requestField is a property of the route's request schema, the one the bad inputs go in:
// the first required one, else the first in name order.
func requestField(t *testing.T, env *testEnv, r api.Route) string {
	t.Helper()
	ref := env.contractOf(t).doc.Components.Schemas[r.Request]
	if ref == nil || ref.Value == nil || len(ref.Value.Properties) == 0 {
		t.Fatalf("%s %s: request schema %q has no properties", r.Method, r.Path, r.Request)
	}
	if len(ref.Value.Required) > 0 {
		return ref.Value.Required[0]
	}
	names := make([]string, 0, len(ref.Value.Properties))
	for n := range ref.Value.Properties {
		names = append(names, n)
	}
	slices.Sort(names)
	return names[0]
}

// expectFieldProblem requires a 400 problem details answer naming field.
func expectFieldProblem(t *testing.T, resp *http.Response, out map[string]any, field string) {
	t.Helper()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status = %d %v, want 400", resp.StatusCode, out)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("Content-Type = %q, want a problem", ct)
	}
	if out["field"] != field {
		t.Fatalf("field = %v, want %q (%v)", out["field"], field, out)
	}
}

// TestEveryAdminInputRefusesNULInvalidUTF8AndRepeatedKeysNamingTheField walks the route
// table: every admin route with a body gets NUL (escaped and raw), invalid UTF-8, a lone
// surrogate, a repeated key and a key in the wrong case in a field of its request; every
// path parameter and query parameter gets NUL and invalid UTF-8. Each answer must be a
// 400 problem naming the field, never a 500 and never a success.
func TestEveryAdminInputRefusesNULInvalidUTF8AndRepeatedKeysNamingTheField(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, func(ad *admin.Deps, _ *Deps) { ad.DLQ = &fakeDLQ{entries: map[uint64]bus.DLQMessage{}} })
	auth := env.tokens["admin"]
	var bodies, paths, queries int
	for _, r := range adminRoutes(env) {
		// A valid value for the path parameter, so the body is what is at fault.
		valid := segmentParam.ReplaceAllString(r.Path, "1")
		if r.Request != "" {
			bodies++
			f := requestField(t, env, r)
			cases := []struct{ name, body, field string }{
				{"escaped NUL", `{"` + f + `":"a\u0000b"}`, f},
				{"raw NUL", "{\"" + f + "\":\"a\x00b\"}", f},
				{"invalid UTF-8", "{\"" + f + "\":\"a\xffb\"}", f},
				{"lone surrogate", `{"` + f + `":"\udfff"}`, f},
				{"repeated key", `{"` + f + `":"a","` + f + `":"a"}`, f},
				{"key in the wrong case", `{"` + strings.ToUpper(f) + `":"a"}`, strings.ToUpper(f)},
				{"NUL in a key", `{"` + f + `\u0000":"a"}`, f + `\u0000`},
			}
			for _, tc := range cases {
				t.Run(r.Method+" "+r.Path+" body "+tc.name, func(t *testing.T) {
					resp, out := env.do(t, r.Method, valid, auth, tc.body)
					expectFieldProblem(t, resp, out, tc.field)
				})
			}
		}
		if m := segmentParam.FindString(r.Path); m != "" {
			paths++
			name := m[1:]
			for _, v := range []string{"%00", "a%00b", "%FF", "%C0%80", "%E2%82"} {
				t.Run(r.Method+" "+r.Path+" path "+v, func(t *testing.T) {
					resp, out := env.do(t, r.Method, strings.Replace(r.Path, m, v, 1), auth, nil)
					expectFieldProblem(t, resp, out, name)
				})
			}
		}
		for _, p := range r.Params {
			if p.In != "query" {
				continue
			}
			queries++
			for _, v := range []string{"%00", "a%00", "%FF"} {
				t.Run(r.Method+" "+r.Path+" query "+p.Name+"="+v, func(t *testing.T) {
					resp, out := env.do(t, r.Method, valid+"?"+p.Name+"="+v, auth, nil)
					expectFieldProblem(t, resp, out, p.Name)
				})
			}
		}
	}
	// The table has routes of each kind: the walk is not vacuous.
	if bodies < 10 || paths < 10 || queries < 5 {
		t.Fatalf("walked %d routes with a body, %d with a path parameter, %d query parameters", bodies, paths, queries)
	}
}

// TestNestedAdminInputsNameTheirPath: bad strings and repeated keys deep inside a body
// are named by their path.
func TestNestedAdminInputsNameTheirPath(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	tests := []struct {
		name, method, path, role, body, field string
	}{
		{"NUL in a campaign's reward data", "POST", "/v1/campaigns", "editor",
			`{"name":"x","rule":"true","reward":{"type":"coupon","data":{"code":"A\u0000"}}}`, "reward.data.code"},
		{"repeated key in a campaign's reward data", "POST", "/v1/campaigns", "editor",
			`{"name":"x","rule":"true","reward":{"type":"coupon","data":{"code":"A","code":"B"}}}`, "reward.data.code"},
		{"a campaign's repeated rule", "POST", "/v1/campaigns", "editor",
			`{"name":"x","rule":"true","rule":"false","reward":{"type":"coupon"}}`, "rule"},
		{"a campaign name in another case", "POST", "/v1/campaigns", "editor",
			`{"name":"x","Name":"y","rule":"true","reward":{"type":"coupon"}}`, "Name"},
		{"a lone surrogate in a campaign name", "PUT", "/v1/campaigns/x", "editor",
			`{"name":"\ud800","rule":"true","reward":{"type":"coupon"}}`, "name"},
		{"invalid UTF-8 in a tier name", "PUT", "/v1/tiers", "admin",
			"{\"basis\":\"lifetime_points\",\"tiers\":[{\"name\":\"a\",\"threshold\":1},{\"name\":\"\xff\",\"threshold\":2}]}", "tiers[1].name"},
		{"NUL in a rule test's event", "POST", "/v1/rules/test", "viewer",
			`{"rule":"true","event":{"id":"e","user_id":"u\u0000","type":"x"}}`, "event.user_id"},
		{"repeated key in a rule test's user", "POST", "/v1/rules/test", "viewer",
			`{"rule":"true","event":{"id":"e","user_id":"u","type":"x"},"user":{"points":1,"points":2}}`, "user.points"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, out := env.do(t, tt.method, tt.path, env.tokens[tt.role], tt.body)
			expectFieldProblem(t, resp, out, tt.field)
		})
	}
}

// recordingPublisher accepts every event and remembers it with its correlation id.
type recordingPublisher struct {
	mu   sync.Mutex
	evs  []*event.Event
	cids []string
}

func (p *recordingPublisher) PublishEvents(_ context.Context, evs []*event.Event, cid string) []bus.PublishResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.evs = append(p.evs, evs...)
	p.cids = append(p.cids, cid)
	return make([]bus.PublishResult, len(evs))
}

// lastCorrelationID is the correlation id of the last publication.
func (p *recordingPublisher) lastCorrelationID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.cids) == 0 {
		return ""
	}
	return p.cids[len(p.cids)-1]
}

func (p *recordingPublisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.evs)
}

// TestAdjustmentWithNULInItsReasonIsRefusedBeforeItIsStored: such an adjustment was
// answered 202 and then lost with its audit entry (Postgres refuses NUL in text when the
// engine applied it). It is now a 400 naming reason: nothing is published or audited.
func TestAdjustmentWithNULInItsReasonIsRefusedBeforeItIsStored(t *testing.T) {
	t.Parallel()
	pub := &recordingPublisher{}
	env := newTestEnv(t, withPublisher(pub))
	adm := env.tokens["admin"]
	path := "/v1/users/" + url.PathEscape("alice") + "/adjustments"
	for _, body := range []string{`{"points":5,"reason":"goodwill\u0000"}`, "{\"points\":5,\"reason\":\"goodwill\x00\"}", `{"points":5,"reason":"\ud800"}`} {
		resp, out := env.do(t, "POST", path, adm, body)
		expectFieldProblem(t, resp, out, "reason")
	}
	if n := pub.count(); n != 0 {
		t.Fatalf("%d adjustments published", n)
	}
	audit := env.expect(t, 200, "GET", "/v1/audit?target_type=user", adm, nil)["entries"].([]any)
	if len(audit) != 0 {
		t.Fatalf("audit = %v", audit)
	}
	env.expect(t, 202, "POST", path, adm, `{"points":5,"reason":"goodwill"}`)
	if n := pub.count(); n != 1 {
		t.Fatalf("%d adjustments published, want 1", n)
	}
}
