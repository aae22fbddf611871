package ingress

import "testing"

// TestTiersAnswerTheDefaultUntilOneIsStored proves a fresh install answers the default
// configuration (version 0, ETag "0", no tiers) rather than 404, and that If-Match "0"
// replaces it only while nothing is stored.
func TestTiersAnswerTheDefaultUntilOneIsStored(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	admin, viewer := env.tokens["admin"], env.tokens["viewer"]
	resp, got := env.do(t, "GET", "/v1/tiers", viewer, nil)
	if resp.StatusCode != 200 || resp.Header.Get("ETag") != `"0"` || got["version"] != float64(0) ||
		got["basis"] != "lifetime_points" || len(got["tiers"].([]any)) != 0 {
		t.Fatalf("GET /v1/tiers on a fresh install = %d %s %v, want the default: version 0, ETag \"0\", no tiers",
			resp.StatusCode, resp.Header.Get("ETag"), got)
	}
	cfg := map[string]any{"basis": "lifetime_points", "tiers": []map[string]any{{"name": "silver", "threshold": 1000}}}
	env.expect(t, 412, "PUT", "/v1/tiers", admin, cfg, "If-Match", `"1"`)
	env.expect(t, 403, "PUT", "/v1/tiers", viewer, cfg)
	env.expect(t, 400, "PUT", "/v1/tiers", admin, map[string]any{"basis": "karma", "tiers": []any{}})
	env.expect(t, 400, "PUT", "/v1/tiers", admin, cfg, "If-Match", "x")
	put := env.expect(t, 200, "PUT", "/v1/tiers", admin, cfg, "If-Match", `"0"`)
	if put["version"] != float64(1) {
		t.Fatalf("PUT based on the default = %v", put)
	}
	env.expect(t, 412, "PUT", "/v1/tiers", admin, cfg, "If-Match", "0")
	resp, got = env.do(t, "GET", "/v1/tiers", viewer, nil)
	if resp.Header.Get("ETag") != `"1"` || got["updated_by"] != "admin-user" {
		t.Fatalf("GET after PUT = %s %v", resp.Header.Get("ETag"), got)
	}
	env.expect(t, 200, "PUT", "/v1/tiers", admin, map[string]any{"basis": "spend", "window": "720h", "tiers": []any{}}, "If-Match", "1")
}
