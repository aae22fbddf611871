package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// KV broadcasts campaigns and the tier configuration through their KV buckets, as JSON
// (the engines decode the same shapes), and reconciles every bucket Postgres is the
// authority of. It implements CampaignSink and TierSink and is safe for concurrent use.
type KV struct {
	Campaigns *bus.Bucket
	Settings  *bus.Bucket
	// Keys is the api_keys bucket; only Reconcile uses it (the key mirror puts keys).
	Keys *bus.Bucket
	// Webhooks, when set, is the webhooks bucket; only Reconcile uses it (WebhookSink
	// puts endpoints).
	Webhooks *bus.Bucket
}

// PutCampaign puts c under its id in the campaigns bucket.
func (k KV) PutCampaign(ctx context.Context, c *campaign.Campaign) error {
	return k.Campaigns.Put(ctx, c.ID, mustJSON(c))
}

// PutTiers puts the tier configuration in the settings bucket.
func (k KV) PutTiers(ctx context.Context, c *loyalty.TierConfig) error {
	return k.Settings.Put(ctx, bus.TiersKey, mustJSON(c))
}

// Reconciled is what Reconcile changed, and what it could not publish.
type Reconciled struct {
	// Removed are the entries ("bucket/key") Postgres does not hold: put by someone other
	// than campaignd, or left behind by a delete that did not reach KV.
	Removed []string
	// Skipped are the stored campaigns that could not be published (larger than the bus
	// takes): engines do not apply them until they are saved again, smaller.
	Skipped []SkippedCampaign
}

// SkippedCampaign is a stored campaign Reconcile could not publish, and why.
type SkippedCampaign struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// Reconcile makes the campaigns, settings, api_keys and (when set) webhooks buckets hold
// exactly what Postgres, the authority, holds: it republishes the tier configuration,
// every campaign, every API key and every webhook endpoint without its secrets (values already there unchanged are not put again: every put wakes
// every watcher), and deletes every other entry. A campaign too large for the bus is
// skipped and reported, not an error: one bad stored campaign must not stop a start.
func (k KV) Reconcile(ctx context.Context, store *persistence.Store) (Reconciled, error) {
	var out Reconciled
	settings := map[string][]byte{}
	if cfg, err := store.GetTierConfig(ctx); err == nil {
		settings[bus.TiersKey] = mustJSON(&cfg)
	} else if !errors.Is(err, persistence.ErrNotFound) {
		return out, err
	}
	cs, err := store.ListCampaigns(ctx)
	if err != nil {
		return out, err
	}
	campaigns := make(map[string][]byte, len(cs))
	for i := range cs {
		campaigns[cs[i].ID] = mustJSON(&cs[i])
	}
	ks, err := store.ListAPIKeys(ctx)
	if err != nil {
		return out, err
	}
	keys := make(map[string][]byte, len(ks))
	for i := range ks {
		keys[ks[i].Hash] = mustJSON(&ks[i])
	}
	buckets := []struct {
		bucket *bus.Bucket
		want   map[string][]byte
	}{{k.Settings, settings}, {k.Campaigns, campaigns}, {k.Keys, keys}}
	if k.Webhooks != nil {
		ws, err := store.ListWebhooks(ctx, 0, 0)
		if err != nil {
			return out, err
		}
		hooks := make(map[string][]byte, len(ws))
		for i := range ws {
			hooks[ws[i].ID] = mustJSON(&ws[i])
		}
		buckets = append(buckets, struct {
			bucket *bus.Bucket
			want   map[string][]byte
		}{k.Webhooks, hooks})
	}
	for _, b := range buckets {
		if err := reconcileBucket(ctx, b.bucket, b.want, &out); err != nil {
			return out, err
		}
	}
	return out, nil
}

// reconcileBucket syncs want into b and deletes every other key, recording in out what
// it removed and what was too large to put.
func reconcileBucket(ctx context.Context, b *bus.Bucket, want map[string][]byte, out *Reconciled) error {
	for _, key := range slices.Sorted(maps.Keys(want)) {
		err := b.Sync(ctx, key, want[key])
		if errors.Is(err, bus.ErrValueTooLarge) {
			out.Skipped = append(out.Skipped, SkippedCampaign{ID: key, Reason: err.Error()})
			continue
		}
		if err != nil {
			return err
		}
	}
	held, err := b.Keys(ctx)
	if err != nil {
		return err
	}
	for _, key := range held {
		if _, ok := want[key]; ok {
			continue
		}
		if err := b.Delete(ctx, key); err != nil {
			return err
		}
		out.Removed = append(out.Removed, b.Name()+"/"+key)
	}
	return nil
}

// mustJSON encodes v, plain data that always encodes.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", v, err))
	}
	return b
}
