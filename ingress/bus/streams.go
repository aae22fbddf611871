package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of streams, subjects and buckets; part of the external contract (DESIGN §5).
const (
	EventsStream  = "EVENTS"
	RewardsStream = "REWARDS"
	DLQStream     = "DLQ"
	// LoyaltyStream carries loyalty notices: loyalty.points_expired.<token>, ...
	LoyaltyStream = "LOYALTY"
	CampaignsKV   = "campaigns"
	APIKeysKV     = "api_keys"
	// SettingsKV holds engine-wide settings; key TiersKey is the tier configuration.
	SettingsKV = "settings"
	// TiersKey is the settings bucket's key of the tier configuration.
	TiersKey = "tiers"

	// Headers set on DLQ entries.
	HeaderDLQReason     = "Campaign-DLQ-Reason"
	HeaderDLQPartition  = "Campaign-DLQ-Partition"
	HeaderDLQDeliveries = "Campaign-DLQ-Deliveries"
	HeaderDLQStreamSeq  = "Campaign-DLQ-Stream-Seq"
	HeaderDLQSubject    = "Campaign-DLQ-Subject"
	// HeaderCorrelationID carries the correlation id from HTTP to the reward.
	HeaderCorrelationID = "Campaign-Correlation-Id"
)

// StreamsConfig configures the streams created at start.
type StreamsConfig struct {
	// Partitions of EVENTS, fixed at creation.
	Partitions int
	// DuplicateWindow is JetStream's dedup window for event ids.
	DuplicateWindow time.Duration
	// MaxAge is how long EVENTS keeps history for replay.
	MaxAge time.Duration
	// Replicas for every stream and bucket (1 for a single server).
	Replicas int
}

func (c *StreamsConfig) setDefaults() {
	if c.Partitions == 0 {
		c.Partitions = 64
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = 10 * time.Minute
	}
	if c.MaxAge == 0 {
		c.MaxAge = 7 * 24 * time.Hour
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
}

// EnsureStreams creates the streams and buckets that do not exist yet and returns the
// partition count of EVENTS (which may differ from cfg.Partitions when the stream was
// created earlier with another count: the stored one wins).
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg StreamsConfig) (int, error) {
	cfg.setDefaults()
	events := eventsConfig(cfg, cfg.Partitions)
	partitions := cfg.Partitions
	s, err := js.Stream(ctx, EventsStream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if _, err := js.CreateStream(ctx, events); err != nil {
			return 0, fmt.Errorf("create stream %s: %w", EventsStream, err)
		}
	case err != nil:
		return 0, fmt.Errorf("look up stream %s: %w", EventsStream, err)
	default:
		cur := s.CachedInfo().Config
		n, err := partitionsOf(cur)
		if err != nil {
			return 0, err
		}
		partitions = n
		if want := eventsConfig(cfg, n); !slices.Equal(cur.Subjects, want.Subjects) || *cur.SubjectTransform != *want.SubjectTransform {
			// An earlier layout (events.* alone): take ops.* in as well. Partitions keep
			// their numbers: both transforms hash the same token.
			cur.Subjects, cur.SubjectTransform = want.Subjects, want.SubjectTransform
			if _, err := js.UpdateStream(ctx, cur); err != nil {
				return 0, fmt.Errorf("update stream %s to take %s.* and %s.*: %w", EventsStream, KindEvents, KindOps, err)
			}
		}
	}
	for _, sc := range []jetstream.StreamConfig{
		{
			Name:        RewardsStream,
			Description: "Granted rewards for downstream senders",
			Subjects:    []string{"rewards.>"},
			Storage:     jetstream.FileStorage,
			Duplicates:  cfg.DuplicateWindow,
			MaxAge:      cfg.MaxAge,
			Replicas:    cfg.Replicas,
		},
		{
			Name:        LoyaltyStream,
			Description: "Loyalty notices (points expired) for downstream senders",
			Subjects:    []string{"loyalty.>"},
			Storage:     jetstream.FileStorage,
			Duplicates:  cfg.DuplicateWindow,
			MaxAge:      cfg.MaxAge,
			Replicas:    cfg.Replicas,
		},
		{
			Name:        DLQStream,
			Description: "Events that failed validation or exhausted their retries",
			Subjects:    []string{"dlq.>"},
			Storage:     jetstream.FileStorage,
			Duplicates:  cfg.DuplicateWindow,
			Replicas:    cfg.Replicas,
		},
	} {
		if _, err := js.Stream(ctx, sc.Name); errors.Is(err, jetstream.ErrStreamNotFound) {
			if _, err := js.CreateStream(ctx, sc); err != nil {
				return 0, fmt.Errorf("create stream %s: %w", sc.Name, err)
			}
		} else if err != nil {
			return 0, fmt.Errorf("look up stream %s: %w", sc.Name, err)
		}
	}
	for _, kc := range []jetstream.KeyValueConfig{
		{Bucket: CampaignsKV, Description: "Campaign definitions by id", History: 5, Replicas: cfg.Replicas, Storage: jetstream.FileStorage},
		{Bucket: SettingsKV, Description: "Engine-wide settings (tiers)", History: 5, Replicas: cfg.Replicas, Storage: jetstream.FileStorage},
		{Bucket: APIKeysKV, Description: "Ingest API keys by SHA-256", History: 1, Replicas: cfg.Replicas, Storage: jetstream.FileStorage},
	} {
		if _, err := js.KeyValue(ctx, kc.Bucket); errors.Is(err, jetstream.ErrBucketNotFound) {
			if _, err := js.CreateKeyValue(ctx, kc); err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
				return 0, fmt.Errorf("create bucket %s: %w", kc.Bucket, err)
			}
		} else if err != nil {
			return 0, fmt.Errorf("look up bucket %s: %w", kc.Bucket, err)
		}
	}
	return partitions, nil
}

// eventsConfig is the configuration of EVENTS with p partitions: events.* and ops.*,
// each stored as <partition>.<kind>.<token>, the partition a hash of the token.
func eventsConfig(cfg StreamsConfig, p int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        EventsStream,
		Description: "Customer events (events.*) and the engine's own (ops.*), partitioned by user",
		Subjects:    []string{KindEvents + ".*", KindOps + ".*"},
		SubjectTransform: &jetstream.SubjectTransformConfig{
			Source:      "*.*",
			Destination: "{{partition(" + strconv.Itoa(p) + ",2)}}.{{wildcard(1)}}.{{wildcard(2)}}",
		},
		Retention:  jetstream.LimitsPolicy,
		Storage:    jetstream.FileStorage,
		Duplicates: cfg.DuplicateWindow,
		MaxAge:     cfg.MaxAge,
		Replicas:   cfg.Replicas,
		Discard:    jetstream.DiscardOld,
	}
}

// partitionsOf reads P back from the stream's subject transform.
func partitionsOf(cfg jetstream.StreamConfig) (int, error) {
	if cfg.SubjectTransform == nil {
		return 0, fmt.Errorf("stream %s has no subject transform; it was not created by campaignd", EventsStream)
	}
	var n int
	if _, err := fmt.Sscanf(cfg.SubjectTransform.Destination, "{{partition(%d,", &n); err != nil || n <= 0 {
		return 0, fmt.Errorf("stream %s: unexpected subject transform %q", EventsStream, cfg.SubjectTransform.Destination)
	}
	return n, nil
}
