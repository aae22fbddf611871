package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/campaignmanager/campaignmanager/ingress"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/bus/bustest"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// TestIngressAnswers503DuringANATSOutageAndRecoversByItself runs campaignd in ingress
// mode against an external NATS server, stops the server, and restarts it on the same
// store and port.
func TestIngressAnswers503DuringANATSOutageAndRecoversByItself(t *testing.T) {
	storeDir := t.TempDir()
	listen := "127.0.0.1:" + strconv.Itoa(freePort(t))
	ns := bustest.StartAt(t, storeDir, listen)

	// A storefront key, put where ingress looks for it (the api_keys bucket).
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = bus.EnsureStreams(context.Background(), js, bus.StreamsConfig{Partitions: 4})
	require.NoError(t, err)
	bucket, err := bus.OpenBucket(context.Background(), js, bus.APIKeysKV)
	require.NoError(t, err)
	keys := ingress.NewKeyMirror(bucket, slog.Default())
	require.NoError(t, err)
	const secret = "cmk_outage-test-key"
	require.NoError(t, keys.PutAPIKey(context.Background(), persistence.APIKey{ID: "key_1", Name: "shop", Hash: persistence.HashAPIKeySecret(secret)}))
	nc.Close()

	vars := map[string]string{
		"CAMPAIGN_MODE": "ingress", "NATS_URL": ns.ClientURL(), "CAMPAIGN_HTTP_ADDR": "127.0.0.1:0",
		"CAMPAIGN_DATA_DIR": t.TempDir(),
	}
	cfg, err := loadConfig(nil, func(k string) string { return vars[k] }, io.Discard)
	require.NoError(t, err)
	app := newApp(cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})), io.Discard)
	app.passwordCost = bcrypt.MinCost
	require.NoError(t, app.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = app.Close(ctx)
	})
	base := "http://" + app.http.Addr()
	post := func(id string) *http.Response {
		req, _ := http.NewRequest("POST", base+"/v1/events", strings.NewReader(`{"id":"`+id+`","user_id":"u","type":"purchase","amount":1}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", secret)
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	eventually(t, func() bool { _, ok := app.keys.CheckAPIKey(secret); return ok })
	require.Equal(t, http.StatusAccepted, post("before").StatusCode)

	ns.Shutdown()
	ns.WaitForShutdown()
	resp := post("during")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	eventually(t, func() bool {
		r, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusServiceUnavailable
	})

	bustest.StartAt(t, storeDir, listen)
	// The client retries the refused event with the same id until it is stored. (The
	// connection buffered the first attempt and may have stored it on reconnect: then the
	// retry is a duplicate, 200.)
	eventually(t, func() bool {
		c := post("during").StatusCode
		return c == http.StatusAccepted || c == http.StatusOK
	})
	require.Equal(t, http.StatusAccepted, post("after").StatusCode)
	require.Equal(t, http.StatusOK, post("before").StatusCode, "the dedup window survived the restart")
}
