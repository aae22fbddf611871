package ingress

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/ingress/admin"
	"github.com/campaignmanager/campaignmanager/ingress/api"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// These tests reach the operations the other tests of the package do not, each through
// env.do, so every answer is checked against /openapi.json as well.

// scriptedPublisher answers each event by its id: "dup-…" are duplicates, "down-…" (or
// events of user "down-…") fail.
type scriptedPublisher struct{}

func (scriptedPublisher) PublishEvents(_ context.Context, evs []*event.Event, _ string) []bus.PublishResult {
	out := make([]bus.PublishResult, len(evs))
	for i, ev := range evs {
		switch {
		case strings.HasPrefix(ev.ID, "dup-"):
			out[i].Duplicate = true
		case strings.HasPrefix(ev.ID, "down-"), strings.HasPrefix(ev.UserID, "down-"):
			out[i].Err = errors.New("no ack")
		}
	}
	return out
}

func withPublisher(p api.EventPublisher) envOption {
	return func(ad *admin.Deps, d *Deps) { ad.Publisher, d.Publisher = p, p }
}

func TestIngestAnswersMatchTheContract(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, withPublisher(scriptedPublisher{}))
	key, secret, err := env.store.CreateAPIKey(t.Context(), "shop", "admin-user")
	if err != nil {
		t.Fatal(err)
	}
	if err := env.keys.PutAPIKey(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	auth := "ApiKey " + secret
	ev := func(id string) map[string]any {
		return map[string]any{"id": id, "user_id": "u1", "type": "purchase", "amount": 5, "currency": "EUR"}
	}
	tests := []struct {
		name   string
		path   string
		body   any
		ct     string
		want   int
		verify func(t *testing.T, out map[string]any)
	}{
		{"a new event is 202", "/v1/events", ev("e1"), "", 202, nil},
		{"a duplicate is 200", "/v1/events", ev("dup-1"), "", 200, func(t *testing.T, out map[string]any) {
			if out["duplicate"] != true {
				t.Errorf("duplicate = %v", out["duplicate"])
			}
		}},
		{"an invalid event is 400", "/v1/events", map[string]any{"id": "e2", "type": "purchase"}, "", 400, nil},
		{"a reserved type is 400", "/v1/events", map[string]any{"id": "e3", "user_id": "u", "type": "points.adjust"}, "", 400, nil},
		{"an event over 64 KiB is 413", "/v1/events", `{"id":"big","user_id":"u","type":"x","attributes":{"a":"` + strings.Repeat("a", 70<<10) + `"}}`, "", 413, nil},
		{"not JSON is 415", "/v1/events", "id=1", "text/plain", 415, nil},
		{"no acknowledgement is 503", "/v1/events", ev("down-1"), "", 503, nil},
		{"a batch answers each event", "/v1/events/batch", map[string]any{"events": []any{ev("e4"), ev("dup-2"), ev("down-2"), map[string]any{"id": "bad"}}}, "", 200,
			func(t *testing.T, out map[string]any) {
				var got []string
				for _, r := range out["results"].([]any) {
					got = append(got, strconv.Itoa(int(r.(map[string]any)["status"].(float64))))
				}
				if strings.Join(got, ",") != "202,200,503,400" {
					t.Errorf("statuses = %v", got)
				}
			}},
		{"an empty batch is 400", "/v1/events/batch", map[string]any{"events": []any{}}, "", 400, nil},
		{"a batch none of which is stored is 503", "/v1/events/batch", map[string]any{"events": []any{ev("down-3")}}, "", 503, nil},
		{"a batch that is not JSON is 415", "/v1/events/batch", "x", "text/plain", 415, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hs []string
			if tt.ct != "" {
				hs = []string{"Content-Type", tt.ct}
			}
			out := env.expect(t, tt.want, "POST", tt.path, auth, tt.body, hs...)
			if tt.verify != nil {
				tt.verify(t, out)
			}
		})
	}
}

func TestHealthReadinessAndMetricsMatchTheContract(t *testing.T) {
	t.Parallel()
	var ready sync.Mutex
	notReady := errors.New("postgres: not answering")
	var readyErr error
	env := newTestEnv(t, func(_ *admin.Deps, d *Deps) {
		d.Ready = func(context.Context) (map[string]any, error) {
			ready.Lock()
			defer ready.Unlock()
			return map[string]any{"mode": "all", "partitions": []int{0, 1}}, readyErr
		}
	})
	env.expect(t, 200, "GET", "/healthz", "", nil)
	env.expect(t, 200, "GET", "/readyz", "", nil)
	ready.Lock()
	readyErr = notReady
	ready.Unlock()
	resp, out := env.do(t, "GET", "/readyz", "", nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(out["detail"].(string), "postgres") {
		t.Fatalf("not ready = %d %v", resp.StatusCode, out)
	}
	env.expect(t, 200, "GET", "/metrics", "", nil)
}

// fakeDLQ is the dead-letter stream in memory.
type fakeDLQ struct {
	mu      sync.Mutex
	entries map[uint64]bus.DLQMessage
}

func (f *fakeDLQ) List(_ context.Context, after uint64, limit int) ([]bus.DLQMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []bus.DLQMessage
	for id := after + 1; id <= 10 && len(out) < limit; id++ {
		if m, ok := f.entries[id]; ok {
			out = append(out, m)
		}
	}
	return out, nil
}

func (f *fakeDLQ) Get(_ context.Context, id uint64) (bus.DLQMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.entries[id]
	if !ok {
		return m, bus.ErrDLQNotFound
	}
	return m, nil
}

func (f *fakeDLQ) Replay(ctx context.Context, id uint64) (bus.DLQMessage, error) {
	m, err := f.Get(ctx, id)
	switch {
	case err != nil:
		return m, err
	case m.Subject == "":
		return m, bus.ErrDLQNotReplayable
	case strings.HasPrefix(m.EventID, "dup-"):
		return m, bus.ErrReplayDuplicate
	}
	return m, f.Delete(ctx, id)
}

func (f *fakeDLQ) Delete(_ context.Context, id uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.entries[id]; !ok {
		return bus.ErrDLQNotFound
	}
	delete(f.entries, id)
	return nil
}

func (f *fakeDLQ) Size(context.Context) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return uint64(len(f.entries)), nil
}

func TestDLQAnswersMatchTheContract(t *testing.T) {
	t.Parallel()
	parked := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	dlq := &fakeDLQ{entries: map[uint64]bus.DLQMessage{
		1: {ID: 1, Reason: "decode: not JSON", Partition: 3, Deliveries: 1, StreamSeq: 17, Subject: "3.events.alice", Data: []byte("not json"), ParkedAt: parked},
		2: {ID: 2, Reason: "rule panicked", Partition: 3, Deliveries: 5, StreamSeq: 18, Subject: "3.events.alice", EventID: "e-2",
			Data: []byte(`{"id":"e-2","user_id":"alice","type":"purchase"}`), ParkedAt: parked},
		3: {ID: 3, Reason: "token mismatch", StreamSeq: 19, EventID: "e-3", Data: []byte(`{}`), ParkedAt: parked},
		4: {ID: 4, Reason: "rule panicked", Partition: 1, StreamSeq: 20, Subject: "1.events.bob", EventID: "dup-4", Data: []byte(`{}`), ParkedAt: parked},
	}}
	env := newTestEnv(t, func(ad *admin.Deps, _ *Deps) { ad.DLQ = dlq })
	adm := env.tokens["admin"]
	page := env.expect(t, 200, "GET", "/v1/dlq?limit=2", adm, nil)
	if len(page["entries"].([]any)) != 2 || page["next_cursor"] != "2" {
		t.Fatalf("first page = %v", page)
	}
	env.expect(t, 200, "GET", "/v1/dlq?cursor=2", adm, nil)
	env.expect(t, 400, "GET", "/v1/dlq?limit=0", adm, nil)
	env.expect(t, 422, "POST", "/v1/dlq/3/replay", adm, nil)
	env.expect(t, 409, "POST", "/v1/dlq/4/replay", adm, nil)
	env.expect(t, 200, "POST", "/v1/dlq/2/replay", adm, nil)
	env.expect(t, 404, "POST", "/v1/dlq/2/replay", adm, nil)
	env.expect(t, 400, "POST", "/v1/dlq/zero/replay", adm, nil)
	env.expect(t, 200, "DELETE", "/v1/dlq/1", adm, nil)
	env.expect(t, 404, "DELETE", "/v1/dlq/1", adm, nil)
	env.expect(t, 400, "DELETE", "/v1/dlq/0", adm, nil)
}

// TestLoyaltyAnswersMatchTheContract stores users as the engine commits them (one with
// history, lots, a rejection and rewards, one fresh) and reads them through the API.
func TestLoyaltyAnswersMatchTheContract(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, withPublisher(scriptedPublisher{}))
	viewer, adm := env.tokens["viewer"], env.tokens["admin"]
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	expires := at.Add(365 * 24 * time.Hour)
	rich := loyalty.User{UserID: "alice/ü", Tier: "gold", Points: 12, LifetimePoints: 12, PurchaseCount: 1, TotalSpent: 120,
		FirstSeen: at, LastPurchaseAt: &at, EventCounts: map[string]int64{"purchase": 1}, RewardCounts: map[string]int64{"ten": 1},
		RewardDays: map[string]loyalty.DayCount{"ten": {Day: "2025-06-01", Count: 1}},
		History:    []loyalty.DayStat{{Day: loyalty.DayOf(at), Spent: 120, Counts: map[string]int64{"purchase": 1}}},
		Lots:       []loyalty.Lot{{Points: 12, ExpiresAt: &expires}}, NextExpiry: &expires,
		LastRejection: &loyalty.Rejection{EventID: "r-1", Type: "redeem", Reason: "more than the balance", At: at},
		TierReviewed:  "2025-06", Version: 1}
	reward := loyalty.Reward{ID: "rw-1", UserID: rich.UserID, CampaignID: "ten", CampaignVersion: 2, EventID: "order-1", Type: "points",
		Points: 12, Payload: map[string]any{"note": "x"}, OccurredAt: at}
	fresh := loyalty.NewUser("bob")
	fresh.Version, fresh.FirstSeen = 1, at
	_, err := env.store.CommitBatch(t.Context(), []loyalty.Decision{
		{EventID: "order-1", EventType: "purchase", StreamSeq: 1, User: rich, Rewards: []loyalty.Reward{reward},
			Ledger: []loyalty.LedgerEntry{{UserID: rich.UserID, Kind: loyalty.LedgerEarn, Points: 12, BalanceAfter: 12, EventID: "order-1",
				RewardID: "rw-1", CampaignID: "ten", CampaignVersion: 2, ExpiresAt: &expires, OccurredAt: at}}},
		{EventID: "signup-1", EventType: "signup", StreamSeq: 2, User: fresh},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{rich.UserID, "bob"} {
		base := "/v1/users/" + url.PathEscape(id)
		u := env.expect(t, 200, "GET", base, viewer, nil)
		if u["user_id"] != id {
			t.Fatalf("user = %v", u)
		}
		env.expect(t, 200, "GET", base+"/rewards?limit=1", viewer, nil)
		ledger := env.expect(t, 200, "GET", base+"/ledger", viewer, nil)
		if id == rich.UserID && len(ledger["entries"].([]any)) != 1 {
			t.Fatalf("ledger = %v", ledger)
		}
		env.expect(t, 400, "GET", base+"/ledger?cursor=x", viewer, nil)
	}
	env.expect(t, 404, "GET", "/v1/users/nobody/ledger", viewer, nil)
	adj := env.expect(t, 202, "POST", "/v1/users/bob/adjustments", adm, map[string]any{"points": 50, "reason": "goodwill"})
	if id, _ := adj["event_id"].(string); !strings.HasPrefix(id, "adj_") {
		t.Fatalf("adjustment = %v", adj)
	}
	env.expect(t, 400, "POST", "/v1/users/bob/adjustments", adm, map[string]any{"points": 0, "reason": "x"})
	env.expect(t, 403, "POST", "/v1/users/bob/adjustments", viewer, map[string]any{"points": 1, "reason": "x"})

	env.expect(t, 503, "POST", "/v1/users/down-1/adjustments", adm, map[string]any{"points": 1, "reason": "x"})
}

func TestCampaignStatsAndOwnPasswordMatchTheContract(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	editor := env.tokens["editor"]
	env.expect(t, 201, "POST", "/v1/campaigns", editor, map[string]any{"id": "budget", "name": "Budget", "rule": "true",
		"reward": map[string]any{"type": "points", "points": 5}, "limits": map[string]any{"total_points": 100}})
	stats := env.expect(t, 200, "GET", "/v1/campaigns/budget/stats", env.tokens["viewer"], nil)
	if b := stats["budget"].(map[string]any); b["points_left"] != float64(100) || b["exhausted"] != false {
		t.Fatalf("stats = %v", stats)
	}
	env.expect(t, 404, "GET", "/v1/campaigns/nope/stats", editor, nil)
	env.expect(t, 200, "DELETE", "/v1/campaigns/budget", editor, nil)
	env.expect(t, 200, "DELETE", "/v1/campaigns/budget", editor, nil)

	env.expect(t, 403, "PUT", "/v1/auth/password", editor, map[string]any{"current_password": "wrong", "new_password": "long enough now"})
	env.expect(t, 400, "PUT", "/v1/auth/password", editor, map[string]any{"current_password": testPassword, "new_password": "short"})
	env.expect(t, 204, "PUT", "/v1/auth/password", editor, map[string]any{"current_password": testPassword, "new_password": "long enough now"})
	env.expect(t, 200, "POST", "/v1/auth/token", "", map[string]any{"username": "editor-user", "password": "long enough now"})
	env.expect(t, 400, "PATCH", "/v1/admins/editor-user", env.tokens["admin"], map[string]any{"role": "owner"})
}

// TestProblemsKeepTheirShape checks the fields the document promises of a problem.
func TestProblemsKeepTheirShape(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	out := env.expect(t, 400, "POST", "/v1/rules/validate", env.tokens["viewer"], map[string]any{"rule": "event.amount >"})
	b, _ := json.Marshal(out)
	for _, k := range []string{`"type":"about:blank"`, `"status":400`, `"snippet":`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("problem %s lacks %s", b, k)
		}
	}
}
