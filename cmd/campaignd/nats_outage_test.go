package main

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

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
	app := startApp(t, vars)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = app.Close(ctx)
	})
	c := newClient(t, "http://"+app.http.Addr(), "")
	post := func(id string) response {
		t.Helper()
		return c.request("POST", "/v1/events", "x-api-key:"+secret, `{"id":"`+id+`","user_id":"u","type":"purchase","amount":1}`)
	}
	poll(t, patience, "the API key reached ingress", func() bool { _, ok := app.keys.CheckAPIKey(secret); return ok })
	require.Equal(t, http.StatusAccepted, post("before").status)

	ns.Shutdown()
	ns.WaitForShutdown()
	resp := post("during")
	require.Equal(t, http.StatusServiceUnavailable, resp.status)
	require.Equal(t, "1", resp.header.Get("Retry-After"))
	poll(t, patience, "/readyz reports NATS down", func() bool {
		status, _ := c.raw("GET", "/readyz", "", nil)
		return status == http.StatusServiceUnavailable
	})

	bustest.StartAt(t, storeDir, listen)
	// The client retries the refused event with the same id until it is stored. (The
	// connection buffered the first attempt and may have stored it on reconnect: then the
	// retry is a duplicate, 200.)
	poll(t, patience, "the refused event stored on retry", func() bool {
		s := post("during").status
		return s == http.StatusAccepted || s == http.StatusOK
	})
	require.Equal(t, http.StatusAccepted, post("after").status)
	require.Equal(t, http.StatusOK, post("before").status, "the dedup window survived the restart")
}
