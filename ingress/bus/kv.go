package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/campaignmanager/campaignmanager/cel"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// Campaigns is the campaigns KV bucket: admins put, every engine watches. It is safe for
// concurrent use.
type Campaigns struct {
	kv jetstream.KeyValue
}

// OpenCampaigns binds the campaigns bucket, which EnsureStreams created.
func OpenCampaigns(ctx context.Context, js jetstream.JetStream) (*Campaigns, error) {
	kv, err := js.KeyValue(ctx, CampaignsKV)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", CampaignsKV, err)
	}
	return &Campaigns{kv: kv}, nil
}

// PutCampaign stores c under its id. It blocks until JetStream acknowledges.
func (c *Campaigns) PutCampaign(ctx context.Context, camp *cel.Campaign) error {
	data, err := json.Marshal(camp)
	if err != nil {
		return fmt.Errorf("encode campaign: %w", err)
	}
	if _, err := c.kv.Put(ctx, camp.ID, data); err != nil {
		return fmt.Errorf("put campaign %s: %w", camp.ID, err)
	}
	return nil
}

// Watch delivers the complete set of campaigns to onChange: once when the bucket's current
// values have all arrived (the watcher's nil marker), and again after every later change.
// Values that fail to decode are logged and left out. onChange runs on Watch's goroutine.
// Watch blocks until ctx ends.
func (c *Campaigns) Watch(ctx context.Context, log *slog.Logger, onChange func([]cel.Campaign)) error {
	byID := map[string]cel.Campaign{}
	initialised := false
	emit := func() {
		all := make([]cel.Campaign, 0, len(byID))
		for _, camp := range byID {
			all = append(all, camp)
		}
		onChange(all)
	}
	return watchBucket(ctx, c.kv, CampaignsKV, log, func(key string, camp *cel.Campaign) {
		if camp == nil {
			delete(byID, key)
		} else {
			byID[key] = *camp
		}
		if initialised {
			emit()
		}
	}, func() {
		initialised = true
		emit()
	})
}

// watchBucket decodes every value of kv as T and calls onEntry (with nil for a deleted
// key), and onInit once at the watcher's nil marker. It blocks until ctx ends.
func watchBucket[T any](ctx context.Context, kv jetstream.KeyValue, bucket string, log *slog.Logger,
	onEntry func(key string, v *T), onInit func()) error {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch bucket %s: %w", bucket, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("watch bucket %s: watcher closed", bucket)
			}
			if e == nil {
				onInit()
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				onEntry(e.Key(), nil)
				continue
			}
			v := new(T)
			if err := json.Unmarshal(e.Value(), v); err != nil {
				log.Error("value in KV does not decode; ignored", "bucket", bucket, "key", e.Key(), "err", err)
				continue
			}
			onEntry(e.Key(), v)
		}
	}
}

// APIKeys mirrors the api_keys bucket in memory so every ingress checks keys without a
// database round trip. It is safe for concurrent use.
type APIKeys struct {
	kv     jetstream.KeyValue
	mu     sync.RWMutex
	byHash map[string]persistence.APIKey
	loaded atomic.Bool
}

// OpenAPIKeys binds the api_keys bucket, which EnsureStreams created.
func OpenAPIKeys(ctx context.Context, js jetstream.JetStream) (*APIKeys, error) {
	kv, err := js.KeyValue(ctx, APIKeysKV)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", APIKeysKV, err)
	}
	return &APIKeys{kv: kv, byHash: map[string]persistence.APIKey{}}, nil
}

// PutAPIKey publishes a key's metadata (never the secret) under its hash.
func (a *APIKeys) PutAPIKey(ctx context.Context, k persistence.APIKey) error {
	data, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("encode api key: %w", err)
	}
	if _, err := a.kv.Put(ctx, k.Hash, data); err != nil {
		return fmt.Errorf("put api key %s: %w", k.ID, err)
	}
	a.store(k)
	return nil
}

func (a *APIKeys) store(k persistence.APIKey) {
	a.mu.Lock()
	a.byHash[k.Hash] = k
	a.mu.Unlock()
}

// CheckAPIKey reports whether secret is a known key that is not revoked.
func (a *APIKeys) CheckAPIKey(secret string) (persistence.APIKey, bool) {
	h := persistence.HashAPIKeySecret(secret)
	a.mu.RLock()
	k, ok := a.byHash[h]
	a.mu.RUnlock()
	if !ok || k.RevokedAt != nil {
		return persistence.APIKey{}, false
	}
	return k, true
}

// Loaded reports whether the initial values have arrived.
func (a *APIKeys) Loaded() bool { return a.loaded.Load() }

// Watch keeps the in-memory copy current until ctx ends. Loaded turns true once the
// bucket's initial values are in.
func (a *APIKeys) Watch(ctx context.Context, log *slog.Logger) error {
	return watchBucket(ctx, a.kv, APIKeysKV, log, func(key string, k *persistence.APIKey) {
		if k == nil {
			a.mu.Lock()
			delete(a.byHash, key)
			a.mu.Unlock()
			return
		}
		a.store(*k)
	}, func() { a.loaded.Store(true) })
}

// SyncCampaign puts camp unless the bucket already holds that version.
func (c *Campaigns) SyncCampaign(ctx context.Context, camp *cel.Campaign) error {
	if e, err := c.kv.Get(ctx, camp.ID); err == nil {
		var cur cel.Campaign
		if json.Unmarshal(e.Value(), &cur) == nil && cur.Version == camp.Version {
			return nil
		}
	}
	return c.PutCampaign(ctx, camp)
}
