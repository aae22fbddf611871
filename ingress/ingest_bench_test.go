package ingress

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/campaignmanager/campaignmanager/ingress/api"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/bus/bustest"
	"github.com/campaignmanager/campaignmanager/ingress/event"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// benchConns is how many requests are in flight at once: the 64 connections.
const benchConns = 64

// benchJetStream starts the embedded server campaignd runs and returns a JetStream
// context on a connection as campaignd's user, with the streams created.
func benchJetStream(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	s := bustest.StartSecure(tb)
	nc, err := nats.Connect(s.ClientURL(), s.Identities().Campaignd...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := bus.EnsureStreams(context.Background(), js, bus.StreamsConfig{Partitions: 64}); err != nil {
		tb.Fatal(err)
	}
	return js
}

// startIngest serves ingest over pub on a free port and returns its base URL and the
// API key to send.
func startIngest(tb testing.TB, pub api.EventPublisher) (string, string) {
	tb.Helper()
	const secret = "cmk_bench-key"
	keys := &fakeKeys{byHash: map[string]persistence.APIKey{}}
	keys.byHash[persistence.HashAPIKeySecret(secret)] = persistence.APIKey{ID: "key_1", Name: "shop", Hash: persistence.HashAPIKeySecret(secret)}
	srv, err := New(Deps{Publisher: pub, Keys: keys, Logger: slog.New(slog.DiscardHandler)}, Config{Addr: "127.0.0.1:0"})
	if err != nil {
		tb.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
	})
	return "http://" + srv.Addr(), secret
}

// runCoalescer starts a Coalescer over js, stopped in tb.Cleanup.
func runCoalescer(tb testing.TB, js jetstream.JetStream) *bus.Coalescer {
	tb.Helper()
	c := bus.NewCoalescer(js, bus.CoalescerConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Error(err)
		}
	})
	return c
}

// parallel runs fn from benchConns goroutines until b.N calls are done and reports
// events/s.
func parallel(b *testing.B, fn func(id string) error) {
	var seq atomic.Int64
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	b.SetParallelism(max(benchConns/runtime.GOMAXPROCS(0), 1))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := fn(run + "-" + strconv.FormatInt(seq.Add(1), 10)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkSingleEventIngest measures one event per request with benchConns requests in
// flight: over HTTP into JetStream through Publisher (http/jetstream) and through the
// Coalescer (http/coalesced), over HTTP with a publisher that acknowledges at once
// (http/no-store: the HTTP share), Publisher.PublishEvents and Coalescer.PublishEvents
// alone (publisher, coalescer), and a raw JetStream publish waiting for its ack
// (raw-acked: the bound without HTTP). Compare lines of one run.
func BenchmarkSingleEventIngest(b *testing.B) {
	js := benchJetStream(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchConns, MaxConnsPerHost: benchConns}}
	post := func(url, key string) func(id string) error {
		return func(id string) error {
			body := fmt.Sprintf(`{"id":%q,"user_id":"u%s","type":"purchase","amount":12.5}`, id, id[len(id)-3:])
			req, _ := http.NewRequest("POST", url+"/v1/events", bytes.NewReader([]byte(body)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "ApiKey "+key)
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}
	}
	b.Run("http/jetstream", func(b *testing.B) {
		url, key := startIngest(b, bus.NewPublisher(js))
		parallel(b, post(url, key))
	})
	b.Run("http/coalesced", func(b *testing.B) {
		url, key := startIngest(b, runCoalescer(b, js))
		parallel(b, post(url, key))
	})
	b.Run("http/no-store", func(b *testing.B) {
		url, key := startIngest(b, fakePublisher{})
		parallel(b, post(url, key))
	})
	b.Run("publisher", func(b *testing.B) {
		pub := bus.NewPublisher(js)
		parallel(b, func(id string) error {
			ev := &event.Event{ID: id, UserID: "u" + id[len(id)-3:], Type: "purchase", Amount: 12.5, OccurredAt: time.Now().UTC()}
			return pub.PublishEvents(context.Background(), []*event.Event{ev}, "")[0].Err
		})
	})
	b.Run("coalescer", func(b *testing.B) {
		pub := runCoalescer(b, js)
		parallel(b, func(id string) error {
			ev := &event.Event{ID: id, UserID: "u" + id[len(id)-3:], Type: "purchase", Amount: 12.5, OccurredAt: time.Now().UTC()}
			return pub.PublishEvents(context.Background(), []*event.Event{ev}, "")[0].Err
		})
	})
	b.Run("raw-acked", func(b *testing.B) {
		parallel(b, func(id string) error {
			msg := &nats.Msg{Subject: bus.EventSubject("u" + id[len(id)-3:]), Header: nats.Header{},
				Data: []byte(`{"id":"` + id + `","user_id":"u","type":"purchase","amount":12.5}`)}
			msg.Header.Set(jetstream.MsgIDHeader, id)
			_, err := js.PublishMsg(context.Background(), msg)
			return err
		})
	})
}
