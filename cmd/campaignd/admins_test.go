package main

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

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
