package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
)

// TestRestartMidStreamKeepsExactTotals restarts campaignd gracefully between two halves
// of a batch load: in-flight events are neither lost nor counted twice.
func TestRestartMidStreamKeepsExactTotals(t *testing.T) {
	e := newEnv(t)
	e.createCampaign(pointPerPurchase)
	e.createCampaign(oneOffBonus)
	l := purchaseLoad{name: "restart", users: 20, perUser: 30}
	send := func(from, to int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(t, together(l.users, func(u int) error {
			evs := make([]map[string]any, 0, to-from)
			for i := from; i < to; i++ {
				evs = append(evs, l.event(u, i))
			}
			res, err := e.try(ctx, "POST", "/v1/events/batch", "key:"+e.apiKey, map[string]any{"events": evs})
			if err != nil {
				return err
			}
			var out struct{ Results []struct{ Status int } }
			if err := json.Unmarshal(res.body, &out); err != nil || res.status != http.StatusOK || len(out.Results) != len(evs) {
				return fmt.Errorf("batch of %s: %d %s", l.user(u), res.status, res.body)
			}
			for i, r := range out.Results {
				if r.Status != http.StatusAccepted {
					return fmt.Errorf("batch of %s: event %d: status %d", l.user(u), i, r.Status)
				}
			}
			return nil
		}))
	}
	send(0, l.perUser/2)
	e.restart() // in-flight events must neither be lost nor counted twice
	send(l.perUser/2, l.perUser)
	// Waits until nothing more arrives, then checks every total.
	l.requireExactlyOnce(t, &e.client, patience)
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
		{"an event dated in the future names the field", key, "application/json", `{"id":"x","user_id":"u","type":"t","occurred_at":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}`, 400, "occurred_at"},
		{"an amount over the maximum names the field", key, "application/json", `{"id":"x","user_id":"u","type":"purchase","amount":1e308}`, 400, "amount"},
		{"a list of 257 attributes names the field", key, "application/json", `{"id":"x","user_id":"u","type":"t","attributes":{"tags":[` + strings.TrimSuffix(strings.Repeat(`"a",`, 257), ",") + `]}}`, 400, "attributes.tags"},
	}
	bad := 0
	for _, tc := range cases {
		if tc.status == 400 {
			bad++
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := e.try(ctx, "POST", "/v1/events", tc.auth, tc.body, "Content-Type", tc.contentType)
			require.NoError(t, err)
			require.Equal(t, tc.status, res.status, string(res.body))
			require.Equal(t, "application/problem+json", res.header.Get("Content-Type"))
			var p problem
			require.NoError(t, json.Unmarshal(res.body, &p))
			require.Equal(t, tc.status, p.Status)
			if tc.field != "" {
				require.Equal(t, tc.field, p.Field)
			}
		})
	}
	// A hostile X-Request-ID is not echoed: a fresh id is used instead.
	res := e.request("GET", "/healthz", "", nil, "X-Request-ID", strings.Repeat("A", 1000))
	require.Equal(t, http.StatusOK, res.status)
	require.NotEmpty(t, res.header.Get("X-Request-ID"))
	require.Less(t, len(res.header.Get("X-Request-ID")), 129)
	// Headers past the server's buffer are refused, and the process carries on.
	res = e.request("GET", "/healthz", "", nil, "X-Padding", strings.Repeat("A", 8000))
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, res.status)
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
	poll(t, patience, "/readyz answers 200", func() bool { s, _ := e.raw("GET", "/readyz", "", nil); return s == http.StatusOK })
}

func TestInvalidNATSEventsGoToDLQWithReason(t *testing.T) {
	e := newEnv(t)
	js := e.jetStream()
	publishRaw(t, js, "events.alice", "bad-json", []byte(`{"id":`))
	publishRaw(t, js, "events.alice", "mismatch", []byte(`{"id":"mismatch","user_id":"bob","type":"purchase"}`))
	future := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	publishRaw(t, js, "events.alice", "future", []byte(`{"id":"future","user_id":"alice","type":"purchase","amount":5,"occurred_at":"`+future+`"}`))
	publishRaw(t, js, "events.alice", "huge", []byte(`{"id":"huge","user_id":"alice","type":"purchase","amount":9.2e19}`))
	e.waitStreamMsgs(bus.DLQStream, "", 4)
	dlq, err := js.Stream(context.Background(), bus.DLQStream)
	require.NoError(t, err)
	var reasons []string
	for seq := uint64(1); seq <= 4; seq++ {
		m, err := dlq.GetMsg(context.Background(), seq)
		require.NoError(t, err)
		reasons = append(reasons, m.Header.Get(bus.HeaderDLQReason))
		require.NotEmpty(t, m.Header.Get(bus.HeaderDLQPartition))
	}
	// Parking runs concurrently: the order of the two entries is not fixed.
	joined := strings.Join(reasons, "\n")
	require.Contains(t, joined, "invalid event")
	require.Contains(t, joined, `user_id "bob" does not match the subject token "alice"`)
	require.Contains(t, joined, "invalid event: occurred_at: is "+future+", more than 5m0s after the time received")
	require.Contains(t, joined, "invalid event: amount: must be at most 1e12")
	// The engine keeps working, and an event dated within the skew is applied.
	e.createCampaign(tenPercent)
	e.postEvent(map[string]any{"id": "ok-1", "user_id": "alice", "type": "purchase", "amount": 100}, http.StatusAccepted)
	require.Equal(t, int64(10), e.waitUser("alice", 1).Points)
	soon := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	publishRaw(t, js, "events.alice", "soon", []byte(`{"id":"soon","user_id":"alice","type":"purchase","amount":100,"occurred_at":"`+soon+`"}`))
	require.Equal(t, int64(20), e.waitUser("alice", 2).Points)
}
