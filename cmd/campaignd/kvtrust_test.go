package main

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// TestAStartLeavesKVHoldingExactlyWhatPostgresHolds writes into KV what only a client
// on the bus could (a campaign granting 1,000,777 points to everyone, a stored campaign
// overwritten, a minted API key, a stray setting) and stores a campaign too large for
// the bus; after a restart KV holds what Postgres holds, the minted key is refused, the
// engine grants by the stored campaign only, and /readyz names the campaign it could not
// publish.
func TestAStartLeavesKVHoldingExactlyWhatPostgresHolds(t *testing.T) {
	e := newEnv(t)
	e.createCampaign(tenPercent)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bucket := func(name string) jetstream.KeyValue {
		kv, err := e.jetStream().KeyValue(ctx, name)
		require.NoError(t, err)
		return kv
	}
	put := func(name, key string, v any) {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		_, err = bucket(name).Put(ctx, key, b)
		require.NoError(t, err)
	}
	stored, err := bucket(bus.CampaignsKV).Get(ctx, "ten-percent")
	require.NoError(t, err)
	put(bus.CampaignsKV, "rogue", map[string]any{"id": "rogue", "name": "rogue", "status": "active", "version": 1,
		"rule": "true", "reward": map[string]any{"type": "points", "points": "1000777"}})
	var tampered map[string]any
	require.NoError(t, json.Unmarshal(stored.Value(), &tampered))
	tampered["version"], tampered["reward"] = 99, map[string]any{"type": "points", "points": "5000"}
	put(bus.CampaignsKV, "ten-percent", tampered)
	minted := persistence.APIKey{ID: "minted", Name: "minted", Prefix: "cmk_mint", Hash: persistence.HashAPIKeySecret("cmk_minted"), CreatedAt: time.Now()}
	put(bus.APIKeysKV, minted.Hash, minted)
	put(bus.SettingsKV, "rogue", map[string]any{"x": 1})

	store, err := persistence.Open(ctx, e.dbURL)
	require.NoError(t, err)
	defer store.Close()
	huge := campaign.Campaign{ID: "huge", Name: "huge", Status: campaign.StatusActive, Description: strings.Repeat("<", 3<<19), // the audit's 1.5 MB, 9 MB once JSON escapes it
		Rule: "true", Reward: campaign.Reward{Type: campaign.RewardPoints, Points: "1"}}
	require.NoError(t, store.CreateCampaign(ctx, &huge, "test"), "stored as an older version could have")

	e.restart()
	keys := func(name string) []string {
		ks, err := bus.OpenBucket(ctx, e.jetStream(), name)
		require.NoError(t, err)
		held, err := ks.Keys(ctx)
		require.NoError(t, err)
		slices.Sort(held)
		return held
	}
	require.Equal(t, []string{"ten-percent"}, keys(bus.CampaignsKV), "KV-only campaigns are removed; the one too large is not in")
	require.NotContains(t, keys(bus.APIKeysKV), minted.Hash)
	require.NotContains(t, keys(bus.SettingsKV), "rogue")
	again, err := bucket(bus.CampaignsKV).Get(ctx, "ten-percent")
	require.NoError(t, err)
	require.JSONEq(t, string(stored.Value()), string(again.Value()), "the stored campaign is back in KV as Postgres holds it")

	res := e.request("POST", "/v1/events", "key:cmk_minted", map[string]any{"id": "m-1", "user_id": "mallory", "type": "purchase", "amount": 100})
	require.Equal(t, http.StatusUnauthorized, res.status, "a key minted in KV is refused")

	var ready struct {
		Unpublished []struct{ ID, Reason string } `json:"campaigns_not_published"`
	}
	e.waitReady() // the restarted engine takes its lanes first
	e.do("GET", "/readyz", "", nil, http.StatusOK, &ready)
	require.Len(t, ready.Unpublished, 1)
	require.Equal(t, "huge", ready.Unpublished[0].ID)
	require.Contains(t, ready.Unpublished[0].Reason, "larger than the bus' maximum message size")

	e.postEvent(map[string]any{"id": "p-1", "user_id": "alice", "type": "purchase", "amount": 100}, http.StatusAccepted)
	u := e.waitUser("alice", 1)
	require.Equal(t, int64(10), u.Points, "only the stored campaign grants, at its stored version")
	rs := e.rewards("alice")
	require.Len(t, rs, 1)
	require.Equal(t, "ten-percent", rs[0].CampaignID)
	require.Equal(t, int64(1), rs[0].CampaignVersion)
}
