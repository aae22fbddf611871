package ingress

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/ingress/admin"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
)

// fakeNotices records the notices the admin API publishes; fail makes the next ones
// fail.
type fakeNotices struct {
	mu   sync.Mutex
	sent []bus.Notice
	fail error
}

func (f *fakeNotices) PublishNotice(_ context.Context, n bus.Notice) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.sent = append(f.sent, n)
	return nil
}

func (f *fakeNotices) last() (bus.Notice, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sent) == 0 {
		return bus.Notice{}, 0
	}
	return f.sent[len(f.sent)-1], len(f.sent)
}

func withNotices(n admin.NoticeSink) envOption {
	return func(ad *admin.Deps, _ *Deps) { ad.Notices = n }
}

// storefrontKey creates an ingest key the server knows and returns its Authorization.
func storefrontKey(t *testing.T, env *testEnv) string {
	t.Helper()
	key, secret, err := env.store.CreateAPIKey(t.Context(), "shop", "admin-user")
	if err != nil {
		t.Fatal(err)
	}
	if err := env.keys.PutAPIKey(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	return "ApiKey " + secret
}

// issue commits the first event of user with one reward of campaign from pool, as the
// engine would, and returns the code it took.
func issue(t *testing.T, env *testEnv, user, campaignID, pool string) string {
	t.Helper()
	at := time.Now().UTC()
	ev := "ev-" + user
	d := loyalty.Decision{EventID: ev, EventType: "signup", StreamSeq: 1,
		User: loyalty.User{UserID: user, FirstSeen: at, EventCounts: map[string]int64{"signup": 1},
			RewardCounts: map[string]int64{campaignID: 1}, LastSeq: 1, Version: 1},
		Rewards: []loyalty.Reward{{ID: loyalty.RewardID(ev, campaignID), UserID: user, CampaignID: campaignID, CampaignVersion: 1,
			EventID: ev, Type: "free_shipping", Pool: pool, Payload: map[string]any{"pool": pool, "data": map[string]any{"max_weight_kg": 5.0}}, OccurredAt: at}},
	}
	outs, err := env.store.CommitBatch(t.Context(), []loyalty.Decision{d}, nil)
	if err != nil || outs[0] != 0 {
		t.Fatalf("issue a code to %s: %v %v", user, outs, err)
	}
	return d.Rewards[0].Payload["coupon_code"].(string)
}

func TestPoolsCreateImportGenerateAndCount(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	editor, viewer := env.tokens["editor"], env.tokens["viewer"]

	p := env.expect(t, 201, "POST", "/v1/pools", editor, map[string]any{"id": "ship", "name": "Free shipping", "pattern": "ship-####-####", "count": 50, "low_water": 10})
	if p["total"] != 50.0 || p["left"] != 50.0 || p["issued"] != 0.0 || p["pattern"] != "SHIP-####-####" || p["low"] != false {
		t.Fatalf("created pool = %v", p)
	}
	env.expect(t, 409, "POST", "/v1/pools", editor, map[string]any{"id": "ship", "name": "again"})
	env.expect(t, 403, "POST", "/v1/pools", viewer, map[string]any{"name": "viewer's"})
	for _, bad := range []map[string]any{
		{"name": "x", "pattern": "SHIP/####"},
		{"name": "x", "count": 10},
		{"name": "x", "pattern": "A-####", "count": 10_000},
		{"name": ""},
		{"id": "Bad Id", "name": "x"},
		{"name": "x", "low_water": -1},
		{"name": "x", "expires_at": "2020-01-01T00:00:00Z"},
		{"name": "x", "colour": "red"},
	} {
		env.expect(t, 400, "POST", "/v1/pools", editor, bad)
	}
	partner := env.expect(t, 201, "POST", "/v1/pools", editor, map[string]any{"name": "Partner codes"})
	pid := partner["id"].(string)
	if !strings.HasPrefix(pid, "partner-codes-") || partner["low_water"] != 0.0 {
		t.Fatalf("pool without an id = %v", partner)
	}

	// Text import: comments skipped, repeats counted, an existing code (in another
	// pool) left out.
	text := "# from the partner\npart-1\nPART-2,2031-01-01T00:00:00Z\npart-1\npart-3\n"
	out := env.expect(t, 200, "POST", "/v1/pools/"+pid+"/codes", editor, text, "Content-Type", "text/plain")
	if out["added"] != 3.0 || out["repeated"] != 1.0 || out["duplicates"] != 0.0 || out["total"] != 3.0 {
		t.Fatalf("text import = %v", out)
	}
	out = env.expect(t, 200, "POST", "/v1/pools/"+pid+"/codes", editor, map[string]any{"codes": []string{"part-3", "PART-4"}})
	if out["added"] != 1.0 || out["duplicates"] != 1.0 || out["total"] != 4.0 {
		t.Fatalf("JSON import = %v", out)
	}
	if ex := out["duplicate_examples"].([]any); len(ex) != 1 || ex[0] != "PART-3" {
		t.Fatalf("duplicate examples = %v", ex)
	}
	env.expect(t, 400, "POST", "/v1/pools/"+pid+"/codes", editor, "ok\nnot/a/code\n", "Content-Type", "text/plain")
	env.expect(t, 400, "POST", "/v1/pools/"+pid+"/codes", editor, map[string]any{"codes": []string{}})
	env.expect(t, 415, "POST", "/v1/pools/"+pid+"/codes", editor, "<codes/>", "Content-Type", "application/xml")
	env.expect(t, 404, "POST", "/v1/pools/nope/codes", editor, map[string]any{"codes": []string{"Z-1"}})

	// Generation: from the pool's pattern, or one given; the partner pool has none.
	out = env.expect(t, 200, "POST", "/v1/pools/ship/generate", editor, map[string]any{"count": 25})
	if out["added"] != 25.0 || out["total"] != 75.0 || out["pattern"] != "SHIP-####-####" {
		t.Fatalf("generate = %v", out)
	}
	env.expect(t, 400, "POST", "/v1/pools/"+pid+"/generate", editor, map[string]any{"count": 5})
	env.expect(t, 200, "POST", "/v1/pools/"+pid+"/generate", editor, map[string]any{"count": 5, "pattern": "P-######"})
	env.expect(t, 404, "POST", "/v1/pools/nope/generate", editor, map[string]any{"count": 5, "pattern": "P-######"})

	got := env.expect(t, 200, "GET", "/v1/pools/"+pid, viewer, nil)
	if got["total"] != 9.0 || got["left"] != 9.0 {
		t.Fatalf("partner pool = %v", got)
	}
	env.expect(t, 404, "GET", "/v1/pools/nope", viewer, nil)
	list := env.expect(t, 200, "GET", "/v1/pools?limit=1", viewer, nil)
	if ps := list["pools"].([]any); len(ps) != 1 || ps[0].(map[string]any)["id"] != "ship" || list["next_cursor"] == nil {
		t.Fatalf("first page of pools = %v", list)
	}
	list = env.expect(t, 200, "GET", "/v1/pools?cursor="+list["next_cursor"].(string), viewer, nil)
	if ps := list["pools"].([]any); len(ps) != 1 || ps[0].(map[string]any)["id"] != pid {
		t.Fatalf("second page of pools = %v", list)
	}

	// Every change is audited.
	audit := env.expect(t, 200, "GET", "/v1/audit?target_type=pool&target_id=ship", env.tokens["admin"], nil)
	var actions []string
	for _, e := range audit["entries"].([]any) {
		actions = append(actions, e.(map[string]any)["action"].(string))
	}
	if strings.Join(actions, " ") != "pool.create pool.generate pool.generate" {
		t.Fatalf("audit of pool ship: %v", actions)
	}
}

// TestCampaignRewardPoolMustExist: a campaign naming a pool that does not exist is
// refused naming reward.pool; once the pool exists it saves.
func TestCampaignRewardPoolMustExist(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	editor := env.tokens["editor"]
	c := map[string]any{"id": "ship-free", "name": "Free shipping", "rule": `event.type == "purchase"`,
		"reward": map[string]any{"type": "free_shipping", "pool": "ship"}}
	_, out := env.do(t, "POST", "/v1/campaigns", editor, c)
	if out["status"] != 400.0 || out["field"] != "reward.pool" {
		t.Fatalf("campaign with an unknown pool = %v", out)
	}
	env.expect(t, 201, "POST", "/v1/pools", editor, map[string]any{"id": "ship", "name": "Shipping"})
	env.expect(t, 201, "POST", "/v1/campaigns", editor, c)
	c["reward"] = map[string]any{"type": "free_shipping", "pool": "gone"}
	_, out = env.do(t, "PUT", "/v1/campaigns/ship-free", editor, c)
	if out["status"] != 400.0 || out["field"] != "reward.pool" {
		t.Fatalf("PUT with an unknown pool = %v", out)
	}
	c["reward"] = map[string]any{"type": "points", "points": 1, "pool": "ship"}
	_, out = env.do(t, "PUT", "/v1/campaigns/ship-free", editor, c)
	if out["status"] != 400.0 || out["field"] != "reward.pool" {
		t.Fatalf("a pool on a points reward = %v", out)
	}
}

// TestCouponsValidateAndRedeemSayWhy walks a code through the storefront API: valid for
// its user (with what it grants), refused for another user and unknown codes, redeemed
// once and idempotently for the same order (announced once per code), refused for
// another order, and an expired code says so. The user's coupons show the states.
func TestCouponsValidateAndRedeemSayWhy(t *testing.T) {
	t.Parallel()
	notices := &fakeNotices{}
	env := newTestEnv(t, withNotices(notices))
	key := storefrontKey(t, env)
	env.expect(t, 201, "POST", "/v1/pools", env.tokens["editor"], map[string]any{"id": "ship", "name": "Shipping", "pattern": "S-######", "count": 3})
	code := issue(t, env, "alice", "ship-free", "ship")
	late := issue(t, env, "bob", "ship-free", "ship")

	problem := func(status int, path string, body any, reason string) {
		t.Helper()
		_, out := env.do(t, "POST", path, key, body)
		if out["status"] != float64(status) || out["reason"] != reason {
			t.Fatalf("POST %s %v = %v, want %d %s", path, body, out, status, reason)
		}
	}
	v := env.expect(t, 200, "POST", "/v1/coupons/"+strings.ToLower(code)+"/validate", key, map[string]any{"user_id": "alice"})
	if v["valid"] != true || v["code"] != code || v["type"] != "free_shipping" || v["campaign_id"] != "ship-free" ||
		v["data"].(map[string]any)["max_weight_kg"] != 5.0 {
		t.Fatalf("validate = %v", v)
	}
	problem(403, "/v1/coupons/"+code+"/validate", map[string]any{"user_id": "mallory"}, "other_user")
	problem(404, "/v1/coupons/NOPE-1/validate", map[string]any{"user_id": "alice"}, "unknown")
	problem(404, "/v1/coupons/not%20a%20code/validate", map[string]any{"user_id": "alice"}, "unknown")
	env.expect(t, 400, "POST", "/v1/coupons/"+code+"/validate", key, map[string]any{})
	env.expect(t, 401, "POST", "/v1/coupons/"+code+"/validate", env.tokens["admin"], map[string]any{"user_id": "alice"})

	// A failed announcement is 503; the same order again redeems idempotently and
	// announces it.
	notices.fail = errors.New("nats down")
	env.expect(t, 503, "POST", "/v1/coupons/"+code+"/redeem", key, map[string]any{"user_id": "alice", "order_id": "o-1"})
	notices.fail = nil
	r := env.expect(t, 200, "POST", "/v1/coupons/"+code+"/redeem", key, map[string]any{"user_id": "alice", "order_id": "o-1"})
	if r["status"] != "redeemed" || r["order_id"] != "o-1" || r["repeated"] != true {
		t.Fatalf("redeem after the failed announcement = %v", r)
	}
	r = env.expect(t, 200, "POST", "/v1/coupons/"+code+"/redeem", key, map[string]any{"user_id": "alice", "order_id": "o-1"})
	if r["repeated"] != true {
		t.Fatalf("redeem again = %v", r)
	}
	n, sent := notices.last()
	var body loyalty.CouponRedeemed
	if err := json.Unmarshal(n.Body, &body); err != nil {
		t.Fatal(err)
	}
	if sent != 2 || n.Subject != "loyalty.coupon_redeemed.alice" || n.ID != "coupon_redeemed_"+code ||
		body.Type != "coupon_redeemed" || body.Code != code || body.OrderID != "o-1" || body.PoolID != "ship" || body.UserID != "alice" {
		t.Fatalf("notice %d %s %s %+v", sent, n.Subject, n.ID, body)
	}
	problem(409, "/v1/coupons/"+code+"/redeem", map[string]any{"user_id": "alice", "order_id": "o-2"}, "redeemed")
	problem(409, "/v1/coupons/"+code+"/validate", map[string]any{"user_id": "alice"}, "redeemed")
	problem(403, "/v1/coupons/"+code+"/redeem", map[string]any{"user_id": "mallory", "order_id": "o-3"}, "other_user")
	env.expect(t, 400, "POST", "/v1/coupons/"+code+"/redeem", key, map[string]any{"user_id": "alice"})

	// bob's code expires.
	conn, err := pgx.Connect(t.Context(), env.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if _, err := conn.Exec(t.Context(), `UPDATE coupon_codes SET expires_at = now() - interval '1 minute' WHERE code = $1`, late); err != nil {
		t.Fatal(err)
	}
	problem(410, "/v1/coupons/"+late+"/validate", map[string]any{"user_id": "bob"}, "expired")
	problem(410, "/v1/coupons/"+late+"/redeem", map[string]any{"user_id": "bob", "order_id": "o-9"}, "expired")

	cs := env.expect(t, 200, "GET", "/v1/users/alice/coupons", env.tokens["viewer"], nil)["coupons"].([]any)
	if len(cs) != 1 || cs[0].(map[string]any)["status"] != "redeemed" || cs[0].(map[string]any)["order_id"] != "o-1" {
		t.Fatalf("alice's coupons = %v", cs)
	}
	cs = env.expect(t, 200, "GET", "/v1/users/bob/coupons", env.tokens["viewer"], nil)["coupons"].([]any)
	if len(cs) != 1 || cs[0].(map[string]any)["status"] != "expired" {
		t.Fatalf("bob's coupons = %v", cs)
	}
	env.expect(t, 404, "GET", "/v1/users/ghost/coupons", env.tokens["viewer"], nil)
}

// TestCampaignStatsCountRefusedRewards: refusals committed with their events show in the
// campaign's stats with the pool's level.
func TestCampaignStatsCountRefusedRewards(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	editor := env.tokens["editor"]
	env.expect(t, 201, "POST", "/v1/pools", editor, map[string]any{"id": "ship", "name": "Shipping", "low_water": 5})
	env.expect(t, 201, "POST", "/v1/campaigns", editor, map[string]any{"id": "ship-free", "name": "Free shipping",
		"rule": `event.type == "purchase"`, "reward": map[string]any{"type": "free_shipping", "pool": "ship"}})
	at := time.Now().UTC()
	var ds []loyalty.Decision
	for _, u := range []string{"u1", "u2"} {
		ds = append(ds, loyalty.Decision{EventID: "ev-" + u, EventType: "purchase", StreamSeq: 1,
			User:    loyalty.User{UserID: u, FirstSeen: at, EventCounts: map[string]int64{"purchase": 1}, RewardCounts: map[string]int64{}, LastSeq: 1, Version: 1},
			Refused: []loyalty.Refusal{{CampaignID: "ship-free", Pool: "ship", Reason: loyalty.RefusedPoolExhausted}}})
	}
	if outs, err := env.store.CommitBatch(t.Context(), ds, nil); err != nil || outs[0] != 0 || outs[1] != 0 {
		t.Fatalf("commit refusals: %v %v", outs, err)
	}
	st := env.expect(t, 200, "GET", "/v1/campaigns/ship-free/stats", env.tokens["viewer"], nil)
	pool := st["pool"].(map[string]any)
	if st["rewards_refused"] != 2.0 || st["refused_by_reason"].(map[string]any)["pool_exhausted"] != 2.0 ||
		pool["left"] != 0.0 || pool["low"] != true || pool["low_water"] != 5.0 {
		t.Fatalf("stats = %v", st)
	}
}

// TestPoolsUpdateAndDelete: PATCH changes the fields given (each bad field named, 403
// for a viewer, 404 for an unknown pool), DELETE refuses a pool in use saying why and
// removes an unused one; every change is audited.
func TestPoolsUpdateAndDelete(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	editor, viewer := env.tokens["editor"], env.tokens["viewer"]
	env.expect(t, 201, "POST", "/v1/pools", editor, map[string]any{"id": "ship", "name": "Shipping", "pattern": "S-######", "count": 10, "low_water": 5})

	exp := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	p := env.expect(t, 200, "PATCH", "/v1/pools/ship", editor, map[string]any{"low_water": 12, "name": " Free shipping ", "expires_at": exp})
	if p["low_water"] != 12.0 || p["low"] != true || p["name"] != "Free shipping" || p["expires_at"] != exp ||
		p["description"] != nil || p["pattern"] != "S-######" || p["total"] != 10.0 {
		t.Fatalf("patched pool = %v", p)
	}
	p = env.expect(t, 200, "PATCH", "/v1/pools/ship", editor, map[string]any{"expires_at": nil, "pattern": "ship-####-####", "description": "June"})
	if p["expires_at"] != nil || p["pattern"] != "SHIP-####-####" || p["description"] != "June" || p["low_water"] != 12.0 {
		t.Fatalf("pool after a second patch = %v", p)
	}
	for field, bad := range map[string]map[string]any{
		"low_water":  {"low_water": -1},
		"name":       {"name": "  "},
		"expires_at": {"expires_at": "2020-01-01T00:00:00Z"},
		"pattern":    {"pattern": "S/###"},
	} {
		_, out := env.do(t, "PATCH", "/v1/pools/ship", editor, bad)
		if out["status"] != 400.0 || out["field"] != field {
			t.Errorf("PATCH %v = %v, want a 400 naming %s", bad, out, field)
		}
	}
	env.expect(t, 400, "PATCH", "/v1/pools/ship", editor, map[string]any{"colour": "red"})
	env.expect(t, 403, "PATCH", "/v1/pools/ship", viewer, map[string]any{"low_water": 1})
	env.expect(t, 404, "PATCH", "/v1/pools/nope", editor, map[string]any{"low_water": 1})
	if got := env.expect(t, 200, "GET", "/v1/pools/ship", viewer, nil); got["low_water"] != 12.0 || got["name"] != "Free shipping" {
		t.Fatalf("pool after refused patches = %v", got)
	}

	// In use: named by a campaign that is not archived, or a code issued.
	camp := map[string]any{"id": "ship-free", "name": "Free shipping", "rule": `event.type == "purchase"`,
		"reward": map[string]any{"type": "free_shipping", "pool": "ship"}}
	env.expect(t, 201, "POST", "/v1/campaigns", editor, camp)
	_, out := env.do(t, "DELETE", "/v1/pools/ship", editor, nil)
	if out["status"] != 409.0 || !strings.Contains(out["detail"].(string), "ship-free") {
		t.Fatalf("delete a pool a draft campaign names = %v", out)
	}
	env.expect(t, 201, "POST", "/v1/pools", editor, map[string]any{"id": "used", "name": "Used", "pattern": "U-######", "count": 2})
	issue(t, env, "alice", "other", "used")
	_, out = env.do(t, "DELETE", "/v1/pools/used", editor, nil)
	if out["status"] != 409.0 || !strings.Contains(out["detail"].(string), "1 of its codes were issued") {
		t.Fatalf("delete a pool with an issued code = %v", out)
	}

	env.expect(t, 403, "DELETE", "/v1/pools/ship", viewer, nil)
	env.expect(t, 200, "DELETE", "/v1/campaigns/ship-free", editor, nil)
	gone := env.expect(t, 200, "DELETE", "/v1/pools/ship", editor, nil)
	if gone["id"] != "ship" || gone["total"] != 10.0 {
		t.Fatalf("deleted pool = %v", gone)
	}
	env.expect(t, 404, "GET", "/v1/pools/ship", viewer, nil)
	env.expect(t, 404, "DELETE", "/v1/pools/ship", editor, nil)
	camp["status"] = "active"
	_, out = env.do(t, "PUT", "/v1/campaigns/ship-free", editor, camp)
	if out["status"] != 400.0 || out["field"] != "reward.pool" {
		t.Fatalf("bring back a campaign whose pool was deleted = %v", out)
	}

	audit := env.expect(t, 200, "GET", "/v1/audit?target_type=pool&target_id=ship", env.tokens["admin"], nil)
	var actions []string
	for _, e := range audit["entries"].([]any) {
		actions = append(actions, e.(map[string]any)["action"].(string))
	}
	if strings.Join(actions, " ") != "pool.create pool.generate pool.update pool.update pool.delete" {
		t.Fatalf("audit of pool ship: %v", actions)
	}
}
