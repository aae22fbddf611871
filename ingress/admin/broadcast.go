package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// KV broadcasts campaigns and the tier configuration through their KV buckets, as JSON
// (the engines decode the same shapes). It implements CampaignSink and TierSink and is
// safe for concurrent use.
type KV struct {
	Campaigns *bus.Bucket
	Settings  *bus.Bucket
}

// PutCampaign puts c under its id in the campaigns bucket.
func (k KV) PutCampaign(ctx context.Context, c *campaign.Campaign) error {
	return k.Campaigns.Put(ctx, c.ID, mustJSON(c))
}

// PutTiers puts the tier configuration in the settings bucket.
func (k KV) PutTiers(ctx context.Context, c *loyalty.TierConfig) error {
	return k.Settings.Put(ctx, bus.TiersKey, mustJSON(c))
}

// Reconcile republishes the tier configuration, every campaign and every API key from
// Postgres, the authority, so the buckets are complete even if NATS lost them or a put
// failed after a commit. Values the buckets already hold unchanged are not put again
// (every put wakes every engine's watcher).
func (k KV) Reconcile(ctx context.Context, store *persistence.Store, keys KeySink) error {
	if cfg, err := store.GetTierConfig(ctx); err == nil {
		if err := k.Settings.Sync(ctx, bus.TiersKey, mustJSON(&cfg)); err != nil {
			return err
		}
	} else if !errors.Is(err, persistence.ErrNotFound) {
		return err
	}
	cs, err := store.ListCampaigns(ctx)
	if err != nil {
		return err
	}
	for i := range cs {
		if err := k.Campaigns.Sync(ctx, cs[i].ID, mustJSON(&cs[i])); err != nil {
			return err
		}
	}
	ks, err := store.ListAPIKeys(ctx)
	if err != nil {
		return err
	}
	for _, k := range ks {
		if err := keys.PutAPIKey(ctx, k); err != nil {
			return err
		}
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
