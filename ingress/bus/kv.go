package bus

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrKeyNotFound is returned by Bucket.Get for a key the bucket does not hold.
var ErrKeyNotFound = errors.New("bus: key not found")

// ErrValueTooLarge is wrapped by Bucket.Put when the value is larger than the NATS
// server accepts in one message.
var ErrValueTooLarge = errors.New("value larger than the bus' maximum message size")

// Bucket is one KV bucket (campaigns, settings, api_keys) in ids and bytes: what a value
// means is the caller's (Postgres is the authority for every bucket; KV carries changes
// to every process). It is safe for concurrent use.
type Bucket struct {
	kv   jetstream.KeyValue
	name string
}

// OpenBucket binds the bucket name, which EnsureStreams created.
func OpenBucket(ctx context.Context, js jetstream.JetStream, name string) (*Bucket, error) {
	kv, err := js.KeyValue(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", name, err)
	}
	return &Bucket{kv: kv, name: name}, nil
}

// Name is the bucket's name.
func (b *Bucket) Name() string { return b.name }

// Put stores value under key. It blocks until JetStream acknowledges.
func (b *Bucket) Put(ctx context.Context, key string, value []byte) error {
	if _, err := b.kv.Put(ctx, key, value); err != nil {
		if errors.Is(err, nats.ErrMaxPayload) {
			return fmt.Errorf("put %s/%s (%d bytes): %w", b.name, key, len(value), ErrValueTooLarge)
		}
		return fmt.Errorf("put %s/%s: %w", b.name, key, err)
	}
	return nil
}

// Sync puts value under key unless the bucket already holds exactly these bytes there.
func (b *Bucket) Sync(ctx context.Context, key string, value []byte) error {
	if cur, err := b.Get(ctx, key); err == nil && bytes.Equal(cur, value) {
		return nil
	}
	return b.Put(ctx, key, value)
}

// Get returns the value under key, or ErrKeyNotFound.
func (b *Bucket) Get(ctx context.Context, key string) ([]byte, error) {
	e, err := b.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get %s/%s: %w", b.name, key, err)
	}
	return e.Value(), nil
}

// Delete removes key; deleting a key that is not there is not an error.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := b.kv.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("delete %s/%s: %w", b.name, key, err)
	}
	return nil
}

// Keys returns every key the bucket holds.
func (b *Bucket) Keys(ctx context.Context) ([]string, error) {
	lister, err := b.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list keys of %s: %w", b.name, err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	return keys, nil
}

// Watch calls onEntry with every current value of the bucket and then with every change
// (value nil for a deleted or purged key), and onInit once, when the current values have
// all arrived (the watcher's nil marker). Both run on Watch's goroutine. Watch blocks
// until ctx ends (returning nil) or the watcher fails (returning the error; the caller
// restarts it).
func (b *Bucket) Watch(ctx context.Context, onEntry func(key string, value []byte), onInit func()) error {
	w, err := b.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch bucket %s: %w", b.name, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("watch bucket %s: watcher closed", b.name)
			}
			switch {
			case e == nil:
				onInit()
			case e.Operation() != jetstream.KeyValuePut:
				onEntry(e.Key(), nil)
			default:
				onEntry(e.Key(), e.Value())
			}
		}
	}
}
