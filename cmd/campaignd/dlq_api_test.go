package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
)

// TestDLQAPIListsReplaysAndDeletesParkedEvents parks bad events through the engine,
// lists them with their reasons, replays and deletes them, and checks who may do so.
func TestDLQAPIListsReplaysAndDeletesParkedEvents(t *testing.T) {
	e := newEnv(t)
	e.createCampaign(tenPercent)
	js := e.jetStream()
	ctx := context.Background()
	publishRaw(t, js, "events.x", "", []byte(`{"id":`))                                                  // invalid JSON, no id
	publishRaw(t, js, "events.alice", "mm-1", []byte(`{"id":"mm-1","user_id":"bob","type":"purchase"}`)) // token mismatch
	var page dlqPage
	poll(t, patience, "two entries in the DLQ", func() bool { page = e.dlq(""); return len(page.Entries) == 2 })
	byEvent := map[string]dlqEntry{}
	for _, en := range page.Entries {
		require.NotEmpty(t, en.ID)
		require.NotEmpty(t, en.ParkedAt)
		require.NotZero(t, en.StreamSeq)
		require.GreaterOrEqual(t, en.Deliveries, uint64(1))
		require.True(t, strings.HasSuffix(en.Subject, ".events."+map[bool]string{true: "x", false: "alice"}[en.EventID == ""]), en.Subject)
		byEvent[en.EventID] = en
	}
	invalid, mismatch := byEvent[""], byEvent["mm-1"]
	require.Contains(t, invalid.Reason, "invalid event")
	require.JSONEq(t, `"{\"id\":"`, string(invalid.Event), "an undecodable payload is shown as a string")
	require.Contains(t, mismatch.Reason, `does not match the subject token "alice"`)
	require.JSONEq(t, `{"id":"mm-1","user_id":"bob","type":"purchase"}`, string(mismatch.Event))

	t.Run("pages follow the cursor", func(t *testing.T) {
		e := e.with(t) // fail this subtest, from its goroutine
		first := e.dlq("?limit=1")
		require.Len(t, first.Entries, 1)
		require.Equal(t, first.Entries[0].ID, first.NextCursor)
		second := e.dlq("?limit=1&cursor=" + first.NextCursor)
		require.Len(t, second.Entries, 1)
		require.NotEqual(t, first.Entries[0].ID, second.Entries[0].ID)
		require.Empty(t, e.dlq("?limit=5&cursor="+second.Entries[0].ID).Entries)
	})

	t.Run("the DLQ size is a metric", func(t *testing.T) {
		e := e.with(t)
		_, body := e.raw("GET", "/metrics", "", nil)
		require.Contains(t, string(body), "\ncampaign_dlq_messages 2\n")
	})

	t.Run("only admins may read or change the DLQ", func(t *testing.T) {
		e := e.with(t)
		for _, role := range []string{"viewer", "editor"} {
			e.do("POST", "/v1/admins", e.token, map[string]any{"username": role + "-1", "password": role + "-password-1", "role": role}, http.StatusCreated, nil)
			tok := e.login(role+"-1", role+"-password-1")
			cases := []struct{ method, path string }{
				{"GET", "/v1/dlq"},
				{"POST", "/v1/dlq/" + mismatch.ID + "/replay"},
				{"DELETE", "/v1/dlq/" + mismatch.ID},
			}
			for _, c := range cases {
				status, body := e.raw(c.method, c.path, tok, nil)
				require.Equal(t, http.StatusForbidden, status, "%s %s as %s: %s", c.method, c.path, role, body)
			}
		}
		status, _ := e.raw("GET", "/v1/dlq", "", nil)
		require.Equal(t, http.StatusUnauthorized, status)
		require.Len(t, e.dlq("").Entries, 2, "refused calls changed nothing")
	})

	t.Run("replaying an invalid event parks it again", func(t *testing.T) {
		e := e.with(t)
		e.do("POST", "/v1/dlq/"+invalid.ID+"/replay", e.token, nil, http.StatusOK, nil)
		poll(t, patience, "the replayed invalid event parked again under a new id", func() bool {
			p := e.dlq("")
			for _, en := range p.Entries {
				if en.ID == invalid.ID {
					return false // not deleted yet
				}
			}
			for _, en := range p.Entries {
				if en.EventID == "" && strings.Contains(en.Reason, "invalid event") {
					return true
				}
			}
			return false
		})
	})

	t.Run("replaying an id inside the duplicate window is refused and keeps the entry", func(t *testing.T) {
		e := e.with(t)
		status, body := e.raw("POST", "/v1/dlq/"+mismatch.ID+"/replay", e.token, nil)
		require.Equal(t, http.StatusConflict, status, string(body))
		found := false
		for _, en := range e.dlq("").Entries {
			found = found || en.ID == mismatch.ID
		}
		require.True(t, found)
	})

	t.Run("deleting removes the entry once", func(t *testing.T) {
		e := e.with(t)
		e.do("DELETE", "/v1/dlq/"+mismatch.ID, e.token, nil, http.StatusOK, nil)
		for _, en := range e.dlq("").Entries {
			require.NotEqual(t, mismatch.ID, en.ID)
		}
		status, _ := e.raw("DELETE", "/v1/dlq/"+mismatch.ID, e.token, nil)
		require.Equal(t, http.StatusNotFound, status)
		status, _ = e.raw("POST", "/v1/dlq/"+mismatch.ID+"/replay", e.token, nil)
		require.Equal(t, http.StatusNotFound, status)
		status, _ = e.raw("POST", "/v1/dlq/not-a-number/replay", e.token, nil)
		require.Equal(t, http.StatusBadRequest, status)
	})

	t.Run("a replayed valid event is applied once", func(t *testing.T) {
		e := e.with(t)
		// An event parked by an earlier failure (crafted here) that never reached EVENTS.
		data := []byte(`{"id":"fix-1","user_id":"carol","type":"purchase","amount":200}`)
		park := func(origSeq uint64) {
			require.NoError(t, bus.PublishDLQ(ctx, js, bus.DLQEntry{Partition: 3, StreamSeq: origSeq, Subject: "3.events.carol",
				Deliveries: 10, Reason: "test: retries exhausted", Data: data,
				Header: nats.Header{jetstream.MsgIDHeader: []string{"fix-1"}}}))
		}
		park(1_000_001)
		park(1_000_002) // the same event parked twice
		var ids []string
		poll(t, patience, "both copies of fix-1 in the DLQ", func() bool {
			ids = ids[:0]
			for _, en := range e.dlq("").Entries {
				if en.EventID == "fix-1" {
					ids = append(ids, en.ID)
				}
			}
			return len(ids) == 2
		})
		e.do("POST", "/v1/dlq/"+ids[0]+"/replay", e.token, nil, http.StatusOK, nil)
		require.Equal(t, int64(20), e.waitUser("carol", 1).Points)
		// The second copy carries the same event id: replaying it changes nothing.
		status, _ := e.raw("POST", "/v1/dlq/"+ids[1]+"/replay", e.token, nil)
		require.Equal(t, http.StatusConflict, status)
		e.postEvent(map[string]any{"id": "fix-2", "user_id": "carol", "type": "signup"}, http.StatusAccepted)
		u := e.waitUser("carol", 2)
		require.Equal(t, int64(20), u.Points)
		require.Len(t, e.rewards("carol"), 1)
	})

	t.Run("every change is audited", func(t *testing.T) {
		e := e.with(t)
		var audit struct {
			Entries []map[string]any `json:"entries"`
		}
		e.do("GET", "/v1/audit?target_type=dlq", e.token, nil, http.StatusOK, &audit)
		actions := map[string]int{}
		for _, a := range audit.Entries {
			require.Equal(t, "admin", a["actor"])
			actions[a["action"].(string)]++
		}
		require.Equal(t, map[string]int{"dlq.replay": 2, "dlq.delete": 1}, actions)
	})
}
