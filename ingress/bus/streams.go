package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
	// LeaseTTL is how long an engine's lease lives without a renewal (DefaultLeaseTTL).
	LeaseTTL time.Duration
	// EventsFirstSeq, when EVENTS is created, is its first sequence (0: 1). A stream
	// created again after it was lost must start above every sequence the engine applied
	// (the users' last_seq), or new events would look applied already.
	EventsFirstSeq uint64
}

// EventsMaxAge is how long EVENTS keeps history (StreamsConfig.MaxAge's default): a
// message is redelivered or replayed at most this long after it was stored, so the
// engine's dedup horizon must be longer.
const EventsMaxAge = 7 * 24 * time.Hour

func (c *StreamsConfig) setDefaults() {
	if c.Partitions == 0 {
		c.Partitions = 64
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = 10 * time.Minute
	}
	if c.MaxAge == 0 {
		c.MaxAge = EventsMaxAge
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
}

// EnsureStreams creates the streams and buckets that do not exist yet, brings existing
// ones to cfg.Replicas (and EVENTS to the current subject layout), and returns the
// partition count of EVENTS (which may differ from cfg.Partitions when the stream was
// created earlier with another count: the stored one wins). A replica count the NATS
// cluster cannot hold is an error naming CAMPAIGN_STREAM_REPLICAS.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg StreamsConfig) (int, error) {
	cfg.setDefaults()
	partitions, err := ensureEvents(ctx, js, cfg)
	if err != nil {
		return 0, err
	}
	for _, sc := range otherStreams(cfg) {
		if err := ensureStream(ctx, js, sc, func(cur *jetstream.StreamConfig) bool { return cur.Replicas != sc.Replicas }); err != nil {
			return 0, err
		}
	}
	for _, kc := range bucketConfigs(cfg) {
		if err := ensureBucket(ctx, js, kc); err != nil {
			return 0, err
		}
	}
	return partitions, nil
}

// Missing names the streams and buckets EnsureStreams creates that do not exist now
// ("stream EVENTS", "bucket campaigns", ...), in that order.
func Missing(ctx context.Context, js jetstream.JetStream) ([]string, error) {
	var out []string
	for _, name := range []string{EventsStream, RewardsStream, LoyaltyStream, DLQStream, WebhooksStream} {
		_, err := js.Stream(ctx, name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			out = append(out, "stream "+name)
		case err != nil:
			return nil, fmt.Errorf("look up stream %s: %w", name, err)
		}
	}
	for _, kc := range bucketConfigs(StreamsConfig{}) {
		_, err := js.KeyValue(ctx, kc.Bucket)
		switch {
		case errors.Is(err, jetstream.ErrBucketNotFound):
			out = append(out, "bucket "+kc.Bucket)
		case err != nil:
			return nil, fmt.Errorf("look up bucket %s: %w", kc.Bucket, err)
		}
	}
	return out, nil
}

// ensureEvents creates or updates EVENTS and returns its partition count.
func ensureEvents(ctx context.Context, js jetstream.JetStream, cfg StreamsConfig) (int, error) {
	s, err := js.Stream(ctx, EventsStream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		sc := eventsConfig(cfg, cfg.Partitions)
		sc.FirstSeq = cfg.EventsFirstSeq
		if _, err := js.CreateStream(ctx, sc); err != nil {
			return 0, replicasError(cfg.Replicas, fmt.Errorf("create stream %s: %w", EventsStream, err))
		}
		return cfg.Partitions, nil
	case err != nil:
		return 0, fmt.Errorf("look up stream %s: %w", EventsStream, err)
	}
	cur := s.CachedInfo().Config
	n, err := PartitionsOf(cur)
	if err != nil {
		return 0, err
	}
	want := eventsConfig(cfg, n)
	if slices.Equal(cur.Subjects, want.Subjects) && *cur.SubjectTransform == *want.SubjectTransform && cur.Replicas == want.Replicas {
		return n, nil
	}
	// An earlier layout (events.* alone) takes ops.* in as well, keeping the partition
	// numbers: both transforms hash the same token.
	cur.Subjects, cur.SubjectTransform, cur.Replicas = want.Subjects, want.SubjectTransform, want.Replicas
	if _, err := js.UpdateStream(ctx, cur); err != nil {
		return 0, replicasError(cfg.Replicas, fmt.Errorf("update stream %s (subjects %v, %d replicas): %w", EventsStream, want.Subjects, want.Replicas, err))
	}
	return n, nil
}

// ensureStream creates sc, or updates the stored stream to sc's replicas when differs
// says its configuration is out of date.
func ensureStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig, differs func(*jetstream.StreamConfig) bool) error {
	s, err := js.Stream(ctx, sc.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if _, err := js.CreateStream(ctx, sc); err != nil {
			return replicasError(sc.Replicas, fmt.Errorf("create stream %s: %w", sc.Name, err))
		}
		return nil
	case err != nil:
		return fmt.Errorf("look up stream %s: %w", sc.Name, err)
	}
	cur := s.CachedInfo().Config
	if !differs(&cur) {
		return nil
	}
	cur.Replicas = sc.Replicas
	if _, err := js.UpdateStream(ctx, cur); err != nil {
		return replicasError(sc.Replicas, fmt.Errorf("update stream %s to %d replicas: %w", sc.Name, sc.Replicas, err))
	}
	return nil
}

// ensureBucket creates the bucket kc, or brings its replicas to kc's.
func ensureBucket(ctx context.Context, js jetstream.JetStream, kc jetstream.KeyValueConfig) error {
	kv, err := js.KeyValue(ctx, kc.Bucket)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
		if _, err := js.CreateKeyValue(ctx, kc); err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
			return replicasError(kc.Replicas, fmt.Errorf("create bucket %s: %w", kc.Bucket, err))
		}
		return nil
	case err != nil:
		return fmt.Errorf("look up bucket %s: %w", kc.Bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("status of bucket %s: %w", kc.Bucket, err)
	}
	if st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas == kc.Replicas {
		return nil
	}
	if _, err := js.UpdateKeyValue(ctx, kc); err != nil {
		return replicasError(kc.Replicas, fmt.Errorf("update bucket %s to %d replicas: %w", kc.Bucket, kc.Replicas, err))
	}
	return nil
}

// JetStream API error codes (nats-server's errors.json) that mean too few servers.
const (
	errNoSuitablePeers       jetstream.ErrorCode = 10005 // "no suitable peers for placement"
	errInsufficientResources jetstream.ErrorCode = 10023
	errReplicasNotSupported  jetstream.ErrorCode = 10074 // "replicas > 1 not supported in non-clustered mode"
)

// replicasError names CAMPAIGN_STREAM_REPLICAS when the cluster cannot hold that many
// replicas (fewer JetStream servers than asked for, or a single server).
func replicasError(replicas int, err error) error {
	var apiErr *jetstream.APIError
	if replicas > 1 && errors.As(err, &apiErr) && (apiErr.ErrorCode == errReplicasNotSupported ||
		apiErr.ErrorCode == errNoSuitablePeers || apiErr.ErrorCode == errInsufficientResources || strings.Contains(apiErr.Description, "replicas")) {
		return fmt.Errorf("CAMPAIGN_STREAM_REPLICAS=%d: the NATS cluster cannot hold %d replicas (it needs at least %d JetStream servers): %w",
			replicas, replicas, replicas, err)
	}
	return err
}

// otherStreams are REWARDS, LOYALTY, DLQ and WEBHOOKS.
func otherStreams(cfg StreamsConfig) []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
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
			Description: "Loyalty notices (points expired, tier changed) for downstream senders",
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
		{
			Name:        WebhooksStream,
			Description: "Manual retries of failed webhook deliveries (webhooks.<endpoint>.retry)",
			Subjects:    []string{"webhooks.>"},
			Storage:     jetstream.FileStorage,
			Duplicates:  cfg.DuplicateWindow,
			MaxAge:      cfg.MaxAge,
			Replicas:    cfg.Replicas,
		},
	}
}

// bucketConfigs are the KV buckets: campaigns, settings, api_keys, webhooks and the
// engines' partition leases.
func bucketConfigs(cfg StreamsConfig) []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{Bucket: CampaignsKV, Description: "Campaign definitions by id", History: 5, Replicas: cfg.Replicas, Storage: jetstream.FileStorage},
		{Bucket: SettingsKV, Description: "Engine-wide settings (tiers)", History: 5, Replicas: cfg.Replicas, Storage: jetstream.FileStorage},
		{Bucket: APIKeysKV, Description: "Ingest API keys by SHA-256", History: 1, Replicas: cfg.Replicas, Storage: jetstream.FileStorage},
		{Bucket: WebhooksKV, Description: "Webhook endpoints by id (no secrets)", History: 1, Replicas: cfg.Replicas, Storage: jetstream.FileStorage},
		leasesConfig(cfg),
	}
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

// PartitionsOf reads the partition count P back from the EVENTS stream's subject
// transform.
func PartitionsOf(cfg jetstream.StreamConfig) (int, error) {
	if cfg.SubjectTransform == nil {
		return 0, fmt.Errorf("stream %s has no subject transform; it was not created by campaignd", EventsStream)
	}
	var n int
	if _, err := fmt.Sscanf(cfg.SubjectTransform.Destination, "{{partition(%d,", &n); err != nil || n <= 0 {
		return 0, fmt.Errorf("stream %s: unexpected subject transform %q", EventsStream, cfg.SubjectTransform.Destination)
	}
	return n, nil
}
