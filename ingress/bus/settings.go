package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/campaignmanager/campaignmanager/persistence"
)

const tiersKey = "tiers"

// Settings is the settings KV bucket: admins put the tier configuration, every engine
// watches it. Safe for concurrent use.
type Settings struct {
	kv jetstream.KeyValue
}

// OpenSettings binds the settings bucket, which EnsureStreams created.
func OpenSettings(ctx context.Context, js jetstream.JetStream) (*Settings, error) {
	kv, err := js.KeyValue(ctx, SettingsKV)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", SettingsKV, err)
	}
	return &Settings{kv: kv}, nil
}

// PutTiers publishes the tier configuration. It blocks until JetStream acknowledges.
func (s *Settings) PutTiers(ctx context.Context, c *persistence.TierConfig) error {
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode tiers: %w", err)
	}
	if _, err := s.kv.Put(ctx, tiersKey, data); err != nil {
		return fmt.Errorf("put tiers: %w", err)
	}
	return nil
}

// SyncTiers puts c unless the bucket already holds that version.
func (s *Settings) SyncTiers(ctx context.Context, c *persistence.TierConfig) error {
	if e, err := s.kv.Get(ctx, tiersKey); err == nil {
		var cur persistence.TierConfig
		if json.Unmarshal(e.Value(), &cur) == nil && cur.Version == c.Version {
			return nil
		}
	}
	return s.PutTiers(ctx, c)
}

// WatchTiers calls onChange with the tier configuration (nil when none is set): once
// when the bucket's initial values are in, then after every change. It blocks until ctx
// ends.
func (s *Settings) WatchTiers(ctx context.Context, log *slog.Logger, onChange func(*persistence.TierConfig)) error {
	var cur *persistence.TierConfig
	initialised := false
	return watchBucket(ctx, s.kv, SettingsKV, log, func(key string, c *persistence.TierConfig) {
		if key != tiersKey {
			return
		}
		cur = c
		if initialised {
			onChange(cur)
		}
	}, func() {
		initialised = true
		onChange(cur)
	})
}
