package ingress

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/ingress/admin"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// KeyMirror mirrors the api_keys bucket in memory so every ingress checks keys without a
// database round trip. It is safe for concurrent use.
type KeyMirror struct {
	bucket *bus.Bucket
	log    *slog.Logger
	mu     sync.RWMutex
	byHash map[string]persistence.APIKey
	loaded atomic.Bool
}

// NewKeyMirror mirrors bucket (the api_keys bucket); it holds nothing until Watch runs.
func NewKeyMirror(bucket *bus.Bucket, log *slog.Logger) *KeyMirror {
	return &KeyMirror{bucket: bucket, log: log, byHash: map[string]persistence.APIKey{}}
}

// PutAPIKey publishes a key's metadata (never the secret) under its hash, and holds it
// at once (the watch brings it to every other ingress).
func (m *KeyMirror) PutAPIKey(ctx context.Context, k persistence.APIKey) error {
	data, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("encode api key: %w", err)
	}
	if err := m.bucket.Put(ctx, k.Hash, data); err != nil {
		return err
	}
	m.store(k)
	return nil
}

func (m *KeyMirror) store(k persistence.APIKey) {
	m.mu.Lock()
	m.byHash[k.Hash] = k
	m.mu.Unlock()
}

// CheckAPIKey reports whether secret is a known key that is not revoked.
func (m *KeyMirror) CheckAPIKey(secret string) (persistence.APIKey, bool) {
	h := persistence.HashAPIKeySecret(secret)
	m.mu.RLock()
	k, ok := m.byHash[h]
	m.mu.RUnlock()
	if !ok || k.RevokedAt != nil {
		return persistence.APIKey{}, false
	}
	return k, true
}

// Loaded reports whether the bucket's initial values have arrived.
func (m *KeyMirror) Loaded() bool { return m.loaded.Load() }

// Run keeps the in-memory copy current until ctx ends (nil) or the watch fails (its
// error). Loaded turns true once the bucket's current values are in.
func (m *KeyMirror) Run(ctx context.Context) error {
	return m.bucket.Watch(ctx, func(key string, value []byte) {
		if value == nil {
			m.mu.Lock()
			delete(m.byHash, key)
			m.mu.Unlock()
			return
		}
		var k persistence.APIKey
		if err := json.Unmarshal(value, &k); err != nil || k.Hash != key || !persistence.IsAPIKeyHash(key) {
			m.log.Error("api key in KV is not a stored key's record; ignored", "key", key, "err", err)
			m.mu.Lock()
			delete(m.byHash, key)
			m.mu.Unlock()
			return
		}
		m.store(k)
	}, func() { m.loaded.Store(true) })
}

// localAPIKey is the Locals key of the persistence.APIKey guardAPIKey let through.
const localAPIKey = "api_key"

// guardAPIKey lets a request with a valid, unrevoked ingest key through.
func (s *Server) guardAPIKey(c *fiber.Ctx) error {
	key := strings.TrimSpace(c.Get("X-API-Key"))
	if key == "" {
		scheme, cred := admin.AuthScheme(c.Get(fiber.HeaderAuthorization))
		if scheme == "apikey" {
			key = cred
		}
	}
	if key == "" {
		return admin.Unauthorized(c, "ApiKey", "this route needs an API key: Authorization: ApiKey <key> or X-API-Key")
	}
	k, ok := s.deps.Keys.CheckAPIKey(key)
	if !ok {
		return admin.Unauthorized(c, "ApiKey", "unknown or revoked API key")
	}
	c.Locals(localAPIKey, k)
	return c.Next()
}
