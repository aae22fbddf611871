package actors

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/cel"
	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
)

// ruleWatcher keeps the engine's rule set current from the campaigns bucket: it compiles
// the complete set of campaigns once the bucket's current values are in, and again after
// every change, and swaps it in atomically.
type ruleWatcher struct {
	bucket  *bus.Bucket
	log     *slog.Logger
	metrics *metrics
	rules   *atomic.Pointer[cel.RuleSet]
	loaded  chan struct{}
	once    sync.Once
}

// Run watches until ctx ends (nil) or the watch fails (its error).
func (w *ruleWatcher) Run(ctx context.Context) error {
	byID := map[string]campaign.Campaign{}
	initialised := false
	emit := func() {
		all := make([]campaign.Campaign, 0, len(byID))
		for _, id := range slices.Sorted(maps.Keys(byID)) {
			all = append(all, byID[id])
		}
		rs, errs := cel.NewRuleSetFrom(w.rules.Load(), all) // compiles only what changed
		for _, err := range errs {
			w.log.Error("campaign left out of the rule set", "err", err)
		}
		w.rules.Store(rs)
		for i := range all { // dashboards see 0, not "no data", before the first one
			w.metrics.ruleErrors.WithLabelValues(all[i].ID)
			w.metrics.rewards.WithLabelValues(all[i].ID, all[i].Reward.Type)
		}
		w.metrics.rulesLoaded.Set(float64(rs.Len()))
		w.log.Info("rule set loaded", "active_campaigns", rs.Len(), "campaigns", len(all))
		w.once.Do(func() { close(w.loaded) })
	}
	return w.bucket.Watch(ctx, func(key string, value []byte) {
		if value == nil {
			delete(byID, key)
		} else {
			var c campaign.Campaign
			if err := json.Unmarshal(value, &c); err != nil {
				w.log.Error("campaign in KV does not decode; ignored", "key", key, "err", err)
				delete(byID, key)
			} else if c.ID != key {
				w.log.Error("campaign in KV under another id; ignored", "key", key, "id", c.ID)
				delete(byID, key)
			} else {
				byID[key] = c // validated and compiled with the whole set (cel.NewRuleSet)
			}
		}
		if initialised {
			emit()
		}
	}, func() {
		initialised = true
		emit()
	})
}

// tierWatcher keeps the tier configuration current from the settings bucket (key
// "tiers"); nil while none is set.
type tierWatcher struct {
	bucket *bus.Bucket
	log    *slog.Logger
	tiers  *atomic.Pointer[loyalty.TierConfig]
	loaded chan struct{}
	once   sync.Once
}

// Run watches until ctx ends (nil) or the watch fails (its error).
func (w *tierWatcher) Run(ctx context.Context) error {
	return w.bucket.Watch(ctx, func(key string, value []byte) {
		if key != bus.TiersKey {
			return
		}
		if value == nil {
			w.tiers.Store(nil)
			return
		}
		var c loyalty.TierConfig
		if err := json.Unmarshal(value, &c); err != nil {
			w.log.Error("tier configuration in KV does not decode; the one before stays", "err", err)
			return
		}
		if err := c.Validate(); err != nil {
			w.log.Error("tier configuration in KV is invalid; the one before stays", "err", err)
			return
		}
		w.tiers.Store(&c)
	}, func() { w.once.Do(func() { close(w.loaded) }) })
}
