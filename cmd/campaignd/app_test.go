package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/event"
	"github.com/campaignmanager/campaignmanager/persistence/pgtest"
)

func TestMain(m *testing.M) {
	pgtest.Main(m)
}

const testSecret = "test-secret-test-secret-test-secret-0123"

// env is one test's environment: a database and a data dir that survive restarts of
// campaignd within the test.
type env struct {
	t       *testing.T
	dbURL   string
	dataDir string
	app     *App
	base    string
	token   string
	apiKey  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dbURL: pgtest.New(t), dataDir: t.TempDir()}
	e.start()
	t.Cleanup(e.stop)
	e.token = e.login("admin", "admin-password-1")
	var key struct{ Key string }
	e.do("POST", "/v1/api-keys", e.token, map[string]any{"name": "storefront"}, http.StatusCreated, &key)
	require.NotEmpty(t, key.Key)
	e.apiKey = key.Key
	e.waitKey()
	return e
}

// start runs campaignd in-process on free ports.
func (e *env) start() {
	e.t.Helper()
	vars := map[string]string{
		"CAMPAIGN_HTTP_ADDR":      "127.0.0.1:0",
		"CAMPAIGN_NATS_LISTEN":    "127.0.0.1:-1",
		"DATABASE_URL":            e.dbURL,
		"CAMPAIGN_DATA_DIR":       e.dataDir,
		"CAMPAIGN_JWT_SECRET":     testSecret,
		"CAMPAIGN_ADMIN_PASSWORD": "admin-password-1",
		"CAMPAIGN_PARTITIONS":     "8",
		"CAMPAIGN_EXPIRY_SWEEP":   "200ms",
	}
	cfg, err := loadConfig(nil, func(k string) string { return vars[k] }, io.Discard)
	require.NoError(e.t, err)
	log := slog.New(slog.NewTextHandler(testWriter{e.t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	app := newApp(cfg, log, io.Discard)
	app.passwordCost = bcrypt.MinCost // production cost under -race takes seconds per hash
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		_ = app.Close(context.Background())
		e.t.Fatalf("start campaignd: %v", err)
	}
	e.app = app
	e.base = "http://" + app.http.Addr()
}

func (e *env) stop() {
	if e.app == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(e.t, e.app.Close(ctx))
	e.app = nil
}

func (e *env) restart() {
	e.t.Helper()
	e.stop()
	e.start()
	e.waitKey()
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// do sends a JSON request and decodes the answer into out, requiring status want.
func (e *env) do(method, path, auth string, body any, want int, out any) []byte {
	e.t.Helper()
	status, data := e.raw(method, path, auth, body)
	require.Equalf(e.t, want, status, "%s %s: %s", method, path, data)
	if out != nil {
		require.NoError(e.t, json.Unmarshal(data, out), string(data))
	}
	return data
}

func (e *env) raw(method, path, auth string, body any) (int, []byte) {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		require.NoError(e.t, err)
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.base+path, r)
	require.NoError(e.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case strings.HasPrefix(auth, "cmk_") || strings.HasPrefix(auth, "key:"):
		req.Header.Set("Authorization", "ApiKey "+strings.TrimPrefix(auth, "key:"))
	case auth != "":
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return resp.StatusCode, data
}

func (e *env) login(user, pw string) string {
	e.t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	e.do("POST", "/v1/auth/token", "", map[string]any{"username": user, "password": pw}, http.StatusOK, &tok)
	require.Equal(e.t, "Bearer", tok.TokenType)
	return tok.AccessToken
}

// waitKey waits until the API key is known to ingress (it travels through KV).
func (e *env) waitKey() {
	e.t.Helper()
	if e.apiKey == "" {
		return
	}
	eventually(e.t, func() bool {
		_, ok := e.app.keys.CheckAPIKey(e.apiKey)
		return ok
	})
}

func (e *env) createCampaign(c map[string]any) {
	e.t.Helper()
	e.do("POST", "/v1/campaigns", e.token, c, http.StatusCreated, nil)
	id := c["id"].(string)
	if c["status"] == "active" {
		eventually(e.t, func() bool {
			for _, k := range e.app.engine.Rules().Campaigns() {
				if k.ID == id {
					return true
				}
			}
			return false
		})
	}
}

func (e *env) postEvent(ev map[string]any, want int) map[string]any {
	e.t.Helper()
	var out map[string]any
	e.do("POST", "/v1/events", "key:"+e.apiKey, ev, want, &out)
	return out
}

type userView struct {
	UserID         string           `json:"user_id"`
	Points         int64            `json:"points"`
	LifetimePoints int64            `json:"lifetime_points"`
	PurchaseCount  int64            `json:"purchase_count"`
	TotalSpent     float64          `json:"total_spent"`
	EventCounts    map[string]int64 `json:"event_counts"`
	RewardCounts   map[string]int64 `json:"reward_counts"`
}

func (e *env) user(id string) (userView, bool) {
	e.t.Helper()
	status, data := e.raw("GET", "/v1/users/"+url.PathEscape(id), e.token, nil)
	if status == http.StatusNotFound {
		return userView{}, false
	}
	require.Equal(e.t, http.StatusOK, status, string(data))
	var u userView
	require.NoError(e.t, json.Unmarshal(data, &u))
	return u, true
}

// waitUser polls until the user has seen n events.
func (e *env) waitUser(id string, n int64) userView {
	e.t.Helper()
	var u userView
	eventually(e.t, func() bool {
		var ok bool
		u, ok = e.user(id)
		var total int64
		for _, c := range u.EventCounts {
			total += c
		}
		return ok && total >= n
	})
	return u
}

type rewardView struct {
	ID              string `json:"id"`
	CampaignID      string `json:"campaign_id"`
	CampaignVersion int64  `json:"campaign_version"`
	EventID         string `json:"event_id"`
	Type            string `json:"type"`
	Points          int64  `json:"points"`
}

func (e *env) rewards(id string) []rewardView {
	e.t.Helper()
	var out struct{ Rewards []rewardView }
	e.do("GET", "/v1/users/"+url.PathEscape(id)+"/rewards", e.token, nil, http.StatusOK, &out)
	return out.Rewards
}

func (e *env) js() jetstream.JetStream {
	e.t.Helper()
	nc, err := nats.Connect(e.app.NATSURL)
	require.NoError(e.t, err)
	e.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(e.t, err)
	return js
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var tenPercent = map[string]any{
	"id": "ten-percent", "name": "10% back in points", "status": "active",
	"rule":   `event.type == "purchase" && event.amount > 50`,
	"reward": map[string]any{"type": "points", "points": "int(event.amount * 0.1)"},
}

func TestHTTPEventGrantsRewardAndUpdatesState(t *testing.T) {
	e := newEnv(t)
	e.createCampaign(tenPercent)
	e.createCampaign(map[string]any{
		"id": "welcome", "name": "Welcome coupon", "status": "active", "priority": 10,
		"rule": `user.purchase_count == 0 && event.type == "purchase"`, "limits": map[string]any{"per_user": 1},
		"reward": map[string]any{"type": "coupon", "data": map[string]any{"template": "WELCOME10"}},
	})
	user := "Zoë 🙂/with.dots*"
	out := e.postEvent(map[string]any{"id": "e1", "user_id": user, "type": "purchase", "amount": 120.0, "currency": "EUR"}, http.StatusAccepted)
	require.Equal(t, false, out["duplicate"])
	e.postEvent(map[string]any{"id": "e2", "user_id": user, "type": "purchase", "amount": 80}, http.StatusAccepted)
	e.postEvent(map[string]any{"id": "e3", "user_id": user, "type": "review", "attributes": map[string]any{"rating": 5}}, http.StatusAccepted)

	u := e.waitUser(user, 3)
	require.Equal(t, int64(20), u.Points) // 12 + 8
	require.Equal(t, int64(20), u.LifetimePoints)
	require.Equal(t, int64(2), u.PurchaseCount)
	require.InDelta(t, 200.0, u.TotalSpent, 1e-9)
	require.Equal(t, map[string]int64{"purchase": 2, "review": 1}, u.EventCounts)
	require.Equal(t, int64(1), u.RewardCounts["welcome"])

	rs := e.rewards(user)
	require.Len(t, rs, 3)
	// Oldest first; within e1 the higher priority campaign first.
	require.Equal(t, "welcome", rs[0].CampaignID)
	require.Equal(t, "coupon", rs[0].Type)
	require.Equal(t, "ten-percent", rs[1].CampaignID)
	require.Equal(t, int64(12), rs[1].Points)
	require.Equal(t, int64(1), rs[1].CampaignVersion)
	require.Equal(t, "e2", rs[2].EventID)

	// Rewards reach the REWARDS stream, one message per reward.
	js := e.js()
	stream, err := js.Stream(context.Background(), bus.RewardsStream)
	require.NoError(t, err)
	eventually(t, func() bool {
		info, err := stream.Info(context.Background())
		return err == nil && info.State.Msgs == 3
	})
	// Each reward once, with Nats-Msg-Id = reward id, on rewards.<campaign>.<token>.
	// (Publication order across a user's events is not promised.)
	published := map[string]string{}
	for seq := uint64(1); seq <= 3; seq++ {
		msg, err := stream.GetMsg(context.Background(), seq)
		require.NoError(t, err)
		published[msg.Header.Get(jetstream.MsgIDHeader)] = msg.Subject
	}
	for _, r := range rs {
		require.Equal(t, bus.RewardSubject(r.CampaignID, event.Token(user)), published[r.ID])
	}

	_, found := e.user("never-seen")
	require.False(t, found)
}

func TestNATSPublishedEventGrantsReward(t *testing.T) {
	e := newEnv(t)
	e.createCampaign(tenPercent)
	js := e.js()
	user := "svc user.1"
	data := []byte(`{"id":"n1","user_id":"svc user.1","type":"purchase","amount":300}`)
	msg := &nats.Msg{Subject: "events." + event.Token(user), Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, "n1")
	_, err := js.PublishMsg(context.Background(), msg)
	require.NoError(t, err)
	u := e.waitUser(user, 1)
	require.Equal(t, int64(30), u.Points)
}

func TestDuplicateEventIDGrantsOnce(t *testing.T) {
	e := newEnv(t)
	e.createCampaign(tenPercent)
	ev := map[string]any{"id": "dup-1", "user_id": "u-dup", "type": "purchase", "amount": 100}
	e.postEvent(ev, http.StatusAccepted)
	out := e.postEvent(ev, http.StatusOK)
	require.Equal(t, true, out["duplicate"])
	e.waitUser("u-dup", 1)

	// After a restart, JetStream's window still knows the id.
	e.restart()
	out = e.postEvent(ev, http.StatusOK)
	require.Equal(t, true, out["duplicate"])

	// Outside the window (simulated: another Nats-Msg-Id), the processed record drops it.
	js := e.js()
	data, _ := json.Marshal(ev)
	msg := &nats.Msg{Subject: "events.u-dup", Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, "dup-1-replayed-later")
	_, err := js.PublishMsg(context.Background(), msg)
	require.NoError(t, err)
	// A later event shows the engine went past the duplicate.
	e.postEvent(map[string]any{"id": "dup-2", "user_id": "u-dup", "type": "signup"}, http.StatusAccepted)
	u := e.waitUser("u-dup", 2)
	require.Equal(t, int64(10), u.Points)
	require.Equal(t, int64(1), u.PurchaseCount)
	require.Len(t, e.rewards("u-dup"), 1)
}

func TestPauseTakesEffectWithoutRestart(t *testing.T) {
	e := newEnv(t)
	e.createCampaign(tenPercent)
	e.postEvent(map[string]any{"id": "p1", "user_id": "u-pause", "type": "purchase", "amount": 100}, http.StatusAccepted)
	e.waitUser("u-pause", 1)
	e.do("POST", "/v1/campaigns/ten-percent/pause", e.token, nil, http.StatusOK, nil)
	eventually(t, func() bool { return e.app.engine.Rules().Len() == 0 })
	e.postEvent(map[string]any{"id": "p2", "user_id": "u-pause", "type": "purchase", "amount": 100}, http.StatusAccepted)
	u := e.waitUser("u-pause", 2)
	require.Equal(t, int64(10), u.Points)
	e.do("POST", "/v1/campaigns/ten-percent/activate", e.token, nil, http.StatusOK, nil)
	eventually(t, func() bool { return e.app.engine.Rules().Len() == 1 })
	e.postEvent(map[string]any{"id": "p3", "user_id": "u-pause", "type": "purchase", "amount": 100}, http.StatusAccepted)
	u = e.waitUser("u-pause", 3)
	require.Equal(t, int64(20), u.Points)
}

func TestRestartMidStreamKeepsExactTotals(t *testing.T) {
	e := newEnv(t)
	e.createCampaign(map[string]any{
		"id": "per-event", "name": "1 point per purchase", "status": "active",
		"rule": `event.type == "purchase"`, "reward": map[string]any{"type": "points", "points": 1},
	})
	const users, perUser = 20, 30
	send := func(from, to int) {
		var wg sync.WaitGroup
		for u := 0; u < users; u++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				evs := make([]map[string]any, 0, to-from)
				for i := from; i < to; i++ {
					evs = append(evs, map[string]any{"id": fmt.Sprintf("r-%d-%d", u, i), "user_id": fmt.Sprintf("user-%d", u), "type": "purchase", "amount": 1})
				}
				var out struct{ Results []struct{ Status int } }
				e.do("POST", "/v1/events/batch", "key:"+e.apiKey, map[string]any{"events": evs}, http.StatusOK, &out)
				for _, r := range out.Results {
					require.Equal(t, http.StatusAccepted, r.Status)
				}
			}()
		}
		wg.Wait()
	}
	send(0, perUser/2)
	e.restart() // in-flight events must neither be lost nor counted twice
	send(perUser/2, perUser)
	for u := 0; u < users; u++ {
		v := e.waitUser(fmt.Sprintf("user-%d", u), perUser)
		require.Equal(t, int64(perUser), v.Points, "user-%d", u)
		require.Equal(t, int64(perUser), v.PurchaseCount, "user-%d", u)
	}
	// Nothing more arrives afterwards.
	time.Sleep(200 * time.Millisecond)
	v, _ := e.user("user-0")
	require.Equal(t, int64(perUser), v.Points)
}

func TestBadEventsGetProblemDetails(t *testing.T) {
	e := newEnv(t)
	key := "key:" + e.apiKey
	cases := []struct {
		name        string
		auth        string
		contentType string
		body        string
		status      int
		field       string
	}{
		{"missing id names the field", key, "application/json", `{"user_id":"u","type":"purchase"}`, 400, "id"},
		{"bad type names the field", key, "application/json", `{"id":"x","user_id":"u","type":"Purchase"}`, 400, "type"},
		{"negative amount names the field", key, "application/json", `{"id":"x","user_id":"u","type":"purchase","amount":-1}`, 400, "amount"},
		{"malformed JSON is 400", key, "application/json", `{"id":`, 400, ""},
		{"over 64 KiB is 413", key, "application/json", `{"id":"x","user_id":"u","type":"t","attributes":{"a":"` + strings.Repeat("x", 70<<10) + `"}}`, 413, ""},
		{"non-JSON body is 415", key, "text/plain", `hello`, 415, ""},
		{"no key is 401", "", "application/json", `{"id":"x","user_id":"u","type":"t"}`, 401, ""},
		{"unknown key is 401", "key:cmk_nope", "application/json", `{"id":"x","user_id":"u","type":"t"}`, 401, ""},
		{"wrong type names the field", key, "application/json", `{"id":"x","user_id":7,"type":"t"}`, 400, "user_id"},
		{"unknown field names the field", key, "application/json", `{"id":"x","user_id":"u","type":"t","ammount":3}`, 400, "ammount"},
		{"id over 128 characters names the field", key, "application/json", `{"id":"` + strings.Repeat("é", 129) + `","user_id":"u","type":"t"}`, 400, "id"},
		{"id with a line break (header injection) names the field", key, "application/json", `{"id":"a\r\nNats-Msg-Id: b","user_id":"u","type":"t"}`, 400, "id"},
		{"invalid UTF-8 is 400", key, "application/json", "{\"id\":\"x\",\"user_id\":\"\xff\xfe\",\"type\":\"t\"}", 400, ""},
		{"deeply nested attributes are 400", key, "application/json", `{"id":"x","user_id":"u","type":"t","attributes":` + strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40) + `}`, 400, ""},
		{"number out of range names the field", key, "application/json", `{"id":"x","user_id":"u","type":"t","amount":1e400}`, 400, "amount"},
		{"a JSON array is 400", key, "application/json", `[{"id":"x"}]`, 400, ""},
		{"an empty body is 400", key, "application/json", ``, 400, ""},
		{"trailing data is 400", key, "application/json", `{"id":"x","user_id":"u","type":"t"} {}`, 400, ""},
		{"the engine's own types are refused", key, "application/json", `{"id":"x","user_id":"u","type":"points.adjust"}`, 400, "type"},
	}
	bad := 0
	for _, tc := range cases {
		if tc.status == 400 {
			bad++
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", e.base+"/v1/events", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.contentType)
			if tc.auth != "" {
				req.Header.Set("Authorization", "ApiKey "+strings.TrimPrefix(tc.auth, "key:"))
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, tc.status, resp.StatusCode)
			require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			var p struct {
				Status int    `json:"status"`
				Field  string `json:"field"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
			require.Equal(t, tc.status, p.Status)
			if tc.field != "" {
				require.Equal(t, tc.field, p.Field)
			}
		})
	}
	// A hostile X-Request-ID is not echoed: a fresh id is used instead.
	req, _ := http.NewRequest("GET", e.base+"/healthz", nil)
	req.Header.Set("X-Request-ID", strings.Repeat("A", 1000))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Less(t, len(resp.Header.Get("X-Request-ID")), 129)
	// Headers past the server's buffer are refused, and the process carries on.
	req, _ = http.NewRequest("GET", e.base+"/healthz", nil)
	req.Header.Set("X-Padding", strings.Repeat("A", 8000))
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
	status, _ := e.raw("GET", "/healthz", "", nil)
	require.Equal(t, http.StatusOK, status)
	// Metrics stay scrapeable after many requests (label values must not alias Fiber's
	// reused buffers) and count the rejections by reason.
	for i := 0; i < 3; i++ {
		status, body := e.raw("GET", "/metrics", "", nil)
		require.Equal(t, http.StatusOK, status, string(body))
		require.Contains(t, string(body), fmt.Sprintf(`campaign_events_rejected_total{reason="invalid"} %d`, bad))
		require.Contains(t, string(body), fmt.Sprintf(`campaign_http_requests_total{method="POST",route="/v1/events",status="400"} %d`, bad))
	}
	eventually(t, func() bool { s, _ := e.raw("GET", "/readyz", "", nil); return s == http.StatusOK })
}

func TestInvalidNATSEventsGoToDLQWithReason(t *testing.T) {
	e := newEnv(t)
	js := e.js()
	publish := func(subject, id, data string) {
		msg := &nats.Msg{Subject: subject, Data: []byte(data), Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, id)
		_, err := js.PublishMsg(context.Background(), msg)
		require.NoError(t, err)
	}
	publish("events.alice", "bad-json", `{"id":`)
	publish("events.alice", "mismatch", `{"id":"mismatch","user_id":"bob","type":"purchase"}`)
	dlq, err := js.Stream(context.Background(), bus.DLQStream)
	require.NoError(t, err)
	eventually(t, func() bool {
		info, err := dlq.Info(context.Background())
		return err == nil && info.State.Msgs == 2
	})
	var reasons []string
	for seq := uint64(1); seq <= 2; seq++ {
		m, err := dlq.GetMsg(context.Background(), seq)
		require.NoError(t, err)
		reasons = append(reasons, m.Header.Get(bus.HeaderDLQReason))
		require.NotEmpty(t, m.Header.Get(bus.HeaderDLQPartition))
	}
	// Parking runs concurrently: the order of the two entries is not fixed.
	joined := strings.Join(reasons, "\n")
	require.Contains(t, joined, "invalid event")
	require.Contains(t, joined, `user_id "bob" does not match the subject token "alice"`)
	// The engine keeps working.
	e.createCampaign(tenPercent)
	e.postEvent(map[string]any{"id": "ok-1", "user_id": "alice", "type": "purchase", "amount": 100}, http.StatusAccepted)
	require.Equal(t, int64(10), e.waitUser("alice", 1).Points)
}
