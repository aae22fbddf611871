package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// LeasesKV is the bucket of the engines' leases: a member key per running engine and a
// lane key per owned range of partitions.
const LeasesKV = "engine_leases"

// DefaultLeaseTTL is how long a lease lives without a renewal.
const DefaultLeaseTTL = 5 * time.Second

// Errors of lease operations.
var (
	// ErrLeaseHeld: another owner holds the key.
	ErrLeaseHeld = errors.New("bus: lease held by another owner")
	// ErrLeaseLost: the lease expired or was taken over since the revision given.
	ErrLeaseLost = errors.New("bus: lease lost")
)

// leasesConfig is the leases bucket: one value per key, expiring LeaseTTL after its last
// write (a renewal is a new write), with a delete marker on expiry so that watchers see
// a lease go.
func leasesConfig(cfg StreamsConfig) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{Bucket: LeasesKV, Description: "Engine members and partition leases",
		History: 1, TTL: cfg.LeaseTTL, LimitMarkerTTL: time.Second, Replicas: cfg.Replicas, Storage: jetstream.FileStorage}
}

// Leases is the engine_leases bucket: each key is held by at most one owner at a time,
// who keeps it by renewing it more often than its TTL. Acquisition is a compare-and-set
// on the key's absence, so one of several contenders wins. It is safe for concurrent use.
type Leases struct {
	kv  jetstream.KeyValue
	ttl time.Duration
}

// OpenLeases binds the leases bucket, which EnsureStreams created.
func OpenLeases(ctx context.Context, js jetstream.JetStream) (*Leases, error) {
	kv, err := js.KeyValue(ctx, LeasesKV)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", LeasesKV, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("status of bucket %s: %w", LeasesKV, err)
	}
	return &Leases{kv: kv, ttl: st.TTL()}, nil
}

// TTL is how long a lease lives without a renewal.
func (l *Leases) TTL() time.Duration { return l.ttl }

// Acquire takes key with value when nobody holds it, and returns its revision (renew and
// release with it); ErrLeaseHeld when it is held.
func (l *Leases) Acquire(ctx context.Context, key string, value []byte) (uint64, error) {
	rev, err := l.kv.Create(ctx, key, value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, ErrLeaseHeld
	}
	if err != nil {
		return 0, fmt.Errorf("acquire lease %s: %w", key, err)
	}
	return rev, nil
}

// Renew rewrites key with value, restarting its TTL, when rev is still its revision; it
// returns the new revision, or ErrLeaseLost.
func (l *Leases) Renew(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	next, err := l.kv.Update(ctx, key, value, rev)
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, ErrLeaseLost
	}
	if err != nil {
		return 0, fmt.Errorf("renew lease %s: %w", key, err)
	}
	return next, nil
}

// Release gives key up when rev is still its revision (ErrLeaseLost otherwise), so
// another owner can take it at once.
func (l *Leases) Release(ctx context.Context, key string, rev uint64) error {
	err := l.kv.Delete(ctx, key, jetstream.LastRevision(rev))
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return ErrLeaseLost
	}
	if err != nil {
		return fmt.Errorf("release lease %s: %w", key, err)
	}
	return nil
}

// Held returns every held key with its value (a snapshot).
func (l *Leases) Held(ctx context.Context) (map[string][]byte, error) {
	lister, err := l.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	out := map[string][]byte{}
	for k := range lister.Keys() {
		e, err := l.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // expired meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("read lease %s: %w", k, err)
		}
		out[k] = e.Value()
	}
	return out, nil
}
