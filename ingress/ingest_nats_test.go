package ingress

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/bus/bustest"
	"github.com/campaignmanager/campaignmanager/ingress/event"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// natsIngest is ingress over the embedded server campaignd runs (its accounts and
// users; ingress connects as campaignd), publishing through a running Coalescer, as
// campaignd wires it.
type natsIngest struct {
	url, key string
	js       jetstream.JetStream
	storeDir string
	listen   string
	pw       bus.Passwords
	ns       *server.Server
}

func startNATSIngest(t *testing.T, cfg Config) *natsIngest {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	listen := ln.Addr().String()
	require.NoError(t, ln.Close())
	env := &natsIngest{storeDir: t.TempDir(), listen: listen,
		pw: bus.Passwords{Campaignd: "campaignd-test-password", Ingest: "ingest-test-password", Downstream: "downstream-test-password"}}
	env.startServer(t)
	ids := (&bustest.Secure{Server: env.ns, Passwords: env.pw}).Identities()
	nc, err := nats.Connect(env.ns.ClientURL(), append(ids.Campaignd, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))...)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	env.js, err = jetstream.New(nc)
	require.NoError(t, err)
	_, err = bus.EnsureStreams(context.Background(), env.js, bus.StreamsConfig{Partitions: 8})
	require.NoError(t, err)
	c := bus.NewCoalescer(env.js, bus.CoalescerConfig{Window: 32})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	env.url, env.key = startIngestWith(t, c, cfg)
	return env
}

// startServer starts (or starts again, on the same store and port) the embedded server.
func (e *natsIngest) startServer(t *testing.T) {
	t.Helper()
	ns, err := bus.StartServer(bus.ServerConfig{Listen: e.listen, StoreDir: e.storeDir, Passwords: e.pw})
	require.NoError(t, err)
	e.ns = ns
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
}

// startIngestWith is startIngest with a chosen Config.
func startIngestWith(t *testing.T, pub *bus.Coalescer, cfg Config) (string, string) {
	t.Helper()
	const secret = "cmk_ingest-test-key"
	keys := &fakeKeys{byHash: map[string]persistence.APIKey{}}
	keys.byHash[persistence.HashAPIKeySecret(secret)] = persistence.APIKey{ID: "key_1", Name: "shop", Hash: persistence.HashAPIKeySecret(secret)}
	cfg.Addr = "127.0.0.1:0"
	srv, err := New(Deps{Publisher: pub, Keys: keys, Logger: slog.New(slog.DiscardHandler)}, cfg)
	require.NoError(t, err)
	require.NoError(t, srv.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
	})
	return "http://" + srv.Addr(), secret
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (e *natsIngest) post(t *testing.T, client *http.Client, id, user string) answer {
	t.Helper()
	body := fmt.Sprintf(`{"id":%q,"user_id":%q,"type":"purchase","amount":12.5}`, id, user)
	req, err := http.NewRequest("POST", e.url+"/v1/events", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "ApiKey "+e.key)
	resp, err := client.Do(req)
	if err != nil {
		t.Errorf("POST %s: %v", id, err)
		return answer{}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header}
	_ = json.Unmarshal(data, &a.body)
	return a
}

// lastStored is the id of the last event EVENTS holds for user, "" when none.
func (e *natsIngest) lastStored(user string) string {
	s, err := e.js.Stream(context.Background(), bus.EventsStream)
	if err != nil {
		return ""
	}
	m, err := s.GetLastMsgForSubject(context.Background(), "*."+bus.EventSubject(event.Token(user)))
	if err != nil {
		return ""
	}
	return m.Header.Get(jetstream.MsgIDHeader)
}

// TestConcurrentSingleEventRequestsAreStoredOnceAndAnsweredAfterTheirAck posts many
// single events at once, each twice, through the real path (HTTP, coalescing publisher,
// JetStream with campaignd's accounts): the first answer is 202 and the event is in
// EVENTS by the time it arrives, the second is 200 duplicate, and EVENTS holds every
// event exactly once.
func TestConcurrentSingleEventRequestsAreStoredOnceAndAnsweredAfterTheirAck(t *testing.T) {
	env := startNATSIngest(t, Config{})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	const conns, perConn = 64, 6
	var wg sync.WaitGroup
	for w := range conns {
		wg.Go(func() {
			for i := range perConn {
				id, user := fmt.Sprintf("ev-%d-%d", w, i), fmt.Sprintf("user %d/%d", w, i)
				a := env.post(t, client, id, user)
				if a.status != http.StatusAccepted || a.body["duplicate"] != false {
					t.Errorf("%s: %d %v, want 202 not duplicate", id, a.status, a.body)
					return
				}
				if got := env.lastStored(user); got != id {
					t.Errorf("%s answered 202 before it was stored (EVENTS has %q)", id, got)
				}
				if a := env.post(t, client, id, user); a.status != http.StatusOK || a.body["duplicate"] != true {
					t.Errorf("%s sent again: %d %v, want 200 duplicate", id, a.status, a.body)
				}
			}
		})
	}
	wg.Wait()
	s, err := env.js.Stream(context.Background(), bus.EventsStream)
	require.NoError(t, err)
	info, err := s.Info(context.Background())
	require.NoError(t, err)
	require.Equal(t, uint64(conns*perConn), info.State.Msgs, "every event stored exactly once")
}

// TestPublishFailureAnswers503AndLosesNothingAcknowledged: with the stream deleted, and
// then with the server stopped, a request is answered 503 with Retry-After (problem
// details), and once the server is back every event acknowledged before is still there.
func TestPublishFailureAnswers503AndLosesNothingAcknowledged(t *testing.T) {
	env := startNATSIngest(t, Config{PublishTimeout: 2 * time.Second})
	client := &http.Client{Timeout: 30 * time.Second}
	ctx := context.Background()
	for i := range 10 {
		id := "before-" + strconv.Itoa(i)
		require.Equal(t, http.StatusAccepted, env.post(t, client, id, "u"+id).status)
	}
	require503 := func(what string, a answer) {
		t.Helper()
		require.Equal(t, http.StatusServiceUnavailable, a.status, what)
		require.Equal(t, "application/problem+json", strings.Split(a.header.Get("Content-Type"), ";")[0], what)
		require.NotEmpty(t, a.header.Get("Retry-After"), what)
	}

	// The stream gone: nothing can store the event.
	require.NoError(t, env.js.DeleteStream(ctx, bus.EventsStream))
	require503("stream deleted", env.post(t, client, "no-stream", "uno-stream"))
	_, err := bus.EnsureStreams(ctx, env.js, bus.StreamsConfig{Partitions: 8})
	require.NoError(t, err)
	// A 503 says "not acknowledged", not "not stored": a publish still in flight (nats.go
	// sends one again after no responders) may store it in the new stream. Sent again,
	// it is stored once either way.
	status := env.post(t, client, "no-stream", "uno-stream").status
	require.Contains(t, []int{http.StatusAccepted, http.StatusOK}, status, "the refused event sent again")
	acked := []string{"no-stream"} // what was acknowledged before went with the stream
	for i := range 10 {
		id := "after-" + strconv.Itoa(i)
		require.Equal(t, http.StatusAccepted, env.post(t, client, id, "u"+id).status)
		acked = append(acked, id)
	}

	// The server stopped: a request waits for its deadline and is refused.
	env.ns.Shutdown()
	env.ns.WaitForShutdown()
	require503("server stopped", env.post(t, client, "during", "u-during"))
	env.startServer(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := env.post(t, client, "during", "u-during").status
		if s == http.StatusAccepted || s == http.StatusOK { // the refused attempt may have been stored on reconnect
			break
		}
		require.True(t, time.Now().Before(deadline), "no 2xx after the server came back (last %d)", s)
	}
	for _, id := range acked {
		require.Equal(t, id, env.lastStored("u"+id), "acknowledged event %s kept", id)
	}
	s, err := env.js.Stream(ctx, bus.EventsStream)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(len(acked)+1), info.State.Msgs, "each event stored once (the acknowledged ones and \"during\")")
}
