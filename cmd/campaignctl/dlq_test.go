package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestDLQListReplayAndDeleteAgainstCampaignd parks two events through the engine (a
// payload that is not JSON, an event published for another user's subject), lists them
// with their reasons, replays the first (parked again), is refused replaying the second
// inside JetStream's duplicate window, and deletes both.
func TestDLQListReplayAndDeleteAgainstCampaignd(t *testing.T) {
	const ingestPassword = "ingest-password-for-the-dlq-test"
	natsAddr := freeAddr(t)
	server := startCampaignd(t, "CAMPAIGN_NATS_LISTEN="+natsAddr, "CAMPAIGN_NATS_INGEST_PASSWORD="+ingestPassword)
	c := ctl{t: t, server: server, configDir: filepath.Join(t.TempDir(), "config")}
	if r := c.run(adminPassword+"\n", "login", "--username", "admin", "--password-stdin"); r.code != exitOK {
		t.Fatalf("login: exit %d\n%s", r.code, r.stderr)
	}

	nc, err := nats.Connect("nats://"+natsAddr, nats.UserInfo("ingest", ingestPassword))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, "events.x", []byte(`{"id":`)); err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "events.alice", Data: []byte(`{"id":"mm-1","user_id":"bob","type":"purchase"}`),
		Header: nats.Header{jetstream.MsgIDHeader: {"mm-1"}}}); err != nil {
		t.Fatal(err)
	}
	entries := func() []dlqEntry {
		return decode[struct {
			Entries []dlqEntry `json:"entries"`
		}](t, c.must(exitOK, "dlq", "list", "--chunk-size", "1", "-o", "json").stdout).Entries
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(entries()) < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	list := entries()
	if len(list) != 2 {
		t.Fatalf("DLQ entries: %+v", list)
	}
	var invalid, mismatch dlqEntry
	for _, e := range list {
		if e.EventID == "mm-1" {
			mismatch = e
		} else {
			invalid = e
		}
	}
	if !strings.Contains(invalid.Reason, "invalid event") || !strings.Contains(mismatch.Reason, `does not match the subject token "alice"`) {
		t.Fatalf("reasons: %q, %q", invalid.Reason, mismatch.Reason)
	}
	table := c.must(exitOK, "dlq", "list").stdout
	if !strings.Contains(table, "REASON") || !regexp.MustCompile(`(?m)^`+mismatch.ID+`\s+mm-1\s`).MatchString(table) {
		t.Errorf("dlq list table:\n%s", table)
	}

	if r := c.must(exitOK, "dlq", "replay", invalid.ID); r.stdout != "dlq/"+invalid.ID+" replayed (event -)\n" {
		t.Errorf("replay: %q", r.stdout)
	}
	if r := c.must(exitError, "dlq", "replay", mismatch.ID); !strings.Contains(r.stderr, "duplicate window") {
		t.Errorf("replay inside the duplicate window:\n%s", r.stderr)
	}
	c.must(exitNotFound, "dlq", "replay", invalid.ID) // replayed: gone from the DLQ
	for len(entries()) < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // the replayed event is parked again
	}
	for _, e := range entries() {
		if r := c.must(exitOK, "dlq", "delete", e.ID); !strings.HasPrefix(r.stdout, "dlq/"+e.ID+" deleted") {
			t.Errorf("delete: %q", r.stdout)
		}
	}
	if left := entries(); len(left) != 0 {
		t.Errorf("entries after deleting them: %+v", left)
	}
	c.must(exitNotFound, "dlq", "delete", mismatch.ID)
	c.must(exitUsage, "dlq", "replay")
}
