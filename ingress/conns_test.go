package ingress

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestCloseDoesNotWaitForConnectionsThatServeNothing: a connection that never sent a
// request, and an idle keep-alive one, do not hold a shutdown (fasthttp alone waits for
// the first until its 30 s read timeout, which is what SIGTERM's handover needs).
func TestCloseDoesNotWaitForConnectionsThatServeNothing(t *testing.T) {
	srv, err := New(Deps{Publisher: fakePublisher{}, Keys: &fakeKeys{}, Logger: slog.New(slog.DiscardHandler)}, Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	silent, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = silent.Close() }() // the server closes it first
	client := &http.Client{Transport: &http.Transport{}}
	resp, err := client.Get("http://" + srv.Addr() + "/healthz") // leaves an idle keep-alive connection
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		t.Fatalf("Close waited for connections serving nothing: %v", err)
	}
}

// TestCloseRightAfterStartReturns: a Close that comes before the serving goroutine has
// started still stops it (fasthttp's Shutdown alone does not know a listener its Serve
// has not registered yet, and that Serve would accept for ever).
func TestCloseRightAfterStartReturns(t *testing.T) {
	for range 50 {
		srv, err := New(Deps{Publisher: fakePublisher{}, Keys: &fakeKeys{}, Logger: slog.New(slog.DiscardHandler)}, Config{Addr: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		done := make(chan error, 1)
		go func() { done <- srv.Close(ctx) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Close: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("Close right after Start did not return")
		}
		cancel()
	}
}
