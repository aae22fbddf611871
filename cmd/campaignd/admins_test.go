package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/persistence/pgtest"
)

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// take returns what was written and empties the buffer.
func (l *lockedBuffer) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	l.b.Reset()
	return s
}

// TestBootstrapAdminIsRestoredWhenNoEnabledAdminRemains: the last enabled admin cannot
// be disabled over the API (409), and when no enabled admin with the admin role remains
// anyway (changed by hand, or by a version without that rule), a restart with
// CAMPAIGN_ADMIN_* enables CAMPAIGN_ADMIN_USER again as an admin with the given password,
// or creates it when it is gone; each is printed once.
func TestBootstrapAdminIsRestoredWhenNoEnabledAdminRemains(t *testing.T) {
	out := &lockedBuffer{}
	e := &env{client: *newClient(t, "", ""), dbURL: pgtest.New(t), dataDir: t.TempDir(), out: out}
	e.start()
	t.Cleanup(e.stop)
	require.Contains(t, out.take(), `Bootstrap admin created: username "admin" with the password from CAMPAIGN_ADMIN_PASSWORD`)
	e.token = e.login("admin", adminPassword)

	status, body := e.raw("PATCH", "/v1/admins/admin", e.token, map[string]any{"disabled": true})
	require.Equal(t, http.StatusConflict, status, string(body))
	require.Contains(t, string(body), "last enabled admin")
	e.do("POST", "/v1/admins", e.token, map[string]any{"username": "ops", "password": "ops passphrase", "role": "admin"}, http.StatusCreated, nil)
	e.do("PATCH", "/v1/admins/admin", e.token, map[string]any{"role": "viewer"}, http.StatusOK, nil)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := pgx.Connect(ctx, e.dbURL)
	require.NoError(t, err)
	defer db.Close(context.Background())
	_, err = db.Exec(ctx, `UPDATE admins SET disabled = true WHERE username = 'ops'`)
	require.NoError(t, err)

	// A restart with the same settings restores the bootstrap admin.
	e.vars = map[string]string{"CAMPAIGN_ADMIN_PASSWORD": "restored passphrase"}
	e.restart()
	require.Contains(t, out.take(), `Bootstrap admin restored (no enabled admin had the admin role; it is enabled again as an admin): username "admin"`)
	status, _ = e.raw("GET", "/v1/campaigns", e.token, nil)
	require.Equal(t, http.StatusUnauthorized, status, "a token issued before the restore still works")
	status, _ = e.raw("POST", "/v1/auth/token", "", map[string]any{"username": "admin", "password": adminPassword})
	require.Equal(t, http.StatusUnauthorized, status, "the old password still works")
	e.token = e.login("admin", "restored passphrase")
	var audit struct {
		Entries []struct{ Action, Actor string } `json:"entries"`
	}
	e.do("GET", "/v1/audit?target_id=admin&actor=system", e.token, nil, http.StatusOK, &audit)
	require.Len(t, audit.Entries, 2)
	require.Equal(t, "admin.bootstrap_restore", audit.Entries[1].Action)

	// Once: with an admin in place, a restart changes and prints nothing.
	e.restart()
	require.Empty(t, out.take())
	e.login("admin", "restored passphrase")

	// Gone altogether (and ops still disabled): created again.
	_, err = db.Exec(ctx, `DELETE FROM admins WHERE username = 'admin'`)
	require.NoError(t, err)
	e.vars = map[string]string{"CAMPAIGN_ADMIN_PASSWORD": "recreated passphrase"}
	e.restart()
	require.Contains(t, out.take(), `Bootstrap admin created: username "admin"`)
	e.login("admin", "recreated passphrase")
}

// TestAdminInputsAndHeadersOverTheRealPath: over HTTP against campaignd with its NATS and
// Postgres. An adjustment with NUL in its reason (once answered 202, then lost with its
// audit entry when Postgres refused the text) is a 400 naming reason and stores nothing;
// admin answers are no-store and every answer nosniff; a client's X-Request-ID reaches
// the EVENTS stream's Campaign-Correlation-Id header only when it is a bounded token.
func TestAdminInputsAndHeadersOverTheRealPath(t *testing.T) {
	e := newEnv(t)
	path := "/v1/users/" + url.PathEscape("nul user") + "/adjustments"
	for _, body := range []string{`{"points":5,"reason":"goodwill\u0000"}`, "{\"points\":5,\"reason\":\"goodwill\x00\"}"} {
		res := e.request("POST", path, e.token, body)
		require.Equal(t, http.StatusBadRequest, res.status, string(res.body))
		var p problem
		require.NoError(t, json.Unmarshal(res.body, &p))
		require.Equal(t, "reason", p.Field)
	}
	res := e.request("POST", path, e.token, `{"points":5,"reason":"goodwill"}`, "X-Request-ID", "adj-1")
	require.Equal(t, http.StatusAccepted, res.status, string(res.body))
	require.Equal(t, "no-store", res.header.Get("Cache-Control"))
	require.Equal(t, "nosniff", res.header.Get("X-Content-Type-Options"))
	poll(t, patience, "the adjustment applied", func() bool { u, ok := e.user("nul user"); return ok && u.Points == 5 })
	var audit struct {
		Entries []struct{ Action string } `json:"entries"`
	}
	e.do("GET", "/v1/audit?target_type=user", e.token, nil, http.StatusOK, &audit)
	require.Len(t, audit.Entries, 1, "only the valid adjustment is audited")

	// Headers of an unauthenticated admin error and of a public answer.
	res = e.request("GET", "/v1/campaigns", "", nil)
	require.Equal(t, http.StatusUnauthorized, res.status)
	require.Equal(t, "no-store", res.header.Get("Cache-Control"))
	require.Equal(t, "nosniff", res.header.Get("X-Content-Type-Options"))
	res = e.request("GET", "/healthz", "", nil)
	require.Equal(t, "nosniff", res.header.Get("X-Content-Type-Options"))

	// The correlation id in JetStream.
	js := e.jetStream()
	lastHeader := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, bus.EventsStream)
		require.NoError(t, err)
		info, err := s.Info(ctx)
		require.NoError(t, err)
		msg, err := s.GetMsg(ctx, info.State.LastSeq)
		require.NoError(t, err)
		return msg.Header.Get(bus.HeaderCorrelationID)
	}
	for i, tc := range []struct{ sent, want string }{
		{"order-42:retry.1", "order-42:retry.1"},
		{"evil\tNats-Msg-Id: x", ""},
		{strings.Repeat("a", 65), ""},
	} {
		res := e.request("POST", "/v1/events", "key:"+e.apiKey,
			map[string]any{"id": fmt.Sprintf("cid-%d", i), "user_id": "cid", "type": "signup"}, "X-Request-ID", tc.sent)
		require.Equal(t, http.StatusAccepted, res.status, string(res.body))
		got := res.header.Get("X-Request-ID")
		if tc.want != "" {
			require.Equal(t, tc.want, got)
		} else {
			require.NotEqual(t, tc.sent, got)
			require.Regexp(t, `^[0-9a-f-]{36}$`, got)
		}
		require.Equal(t, got, lastHeader(), "the NATS header carries the answer's id, never the raw one")
	}
}
