package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Outbound webhooks on the bus: the webhooks bucket (endpoint id -> the endpoint's JSON,
// never its secret; Postgres is the authority), the WEBHOOKS stream (manual retries of a
// failed delivery, on webhooks.<endpoint>.retry), and each endpoint's durable consumers
// webhook-<endpoint id>, one on each of REWARDS, LOYALTY and WEBHOOKS that the endpoint's
// filter needs. The consumers are shared by every engine replica, so a notice is handed
// to one replica at a time.

// Names of the webhook stream and bucket.
const (
	WebhooksStream = "WEBHOOKS"
	WebhooksKV     = "webhooks"
)

// Headers of a manual retry on WEBHOOKS: where the notice came from and how many attempts
// it had.
const (
	HeaderWebhookSubject   = "Campaign-Webhook-Subject"
	HeaderWebhookStream    = "Campaign-Webhook-Stream"
	HeaderWebhookStreamSeq = "Campaign-Webhook-Stream-Seq"
	HeaderWebhookNoticeID  = "Campaign-Webhook-Notice-Id"
	HeaderWebhookAttempts  = "Campaign-Webhook-Attempts"
	HeaderWebhookTime      = "Campaign-Webhook-Time"
)

// WebhookConsumerName is the durable name of endpoint id's consumers: webhook-<id>.
func WebhookConsumerName(id string) string { return "webhook-" + id }

// WebhookRetrySubject is the WEBHOOKS subject of endpoint id's manual retries.
func WebhookRetrySubject(id string) string { return "webhooks." + id + ".retry" }

// WebhookSpec is what an endpoint's consumers follow.
type WebhookSpec struct {
	ID string
	// Kinds are the notice kinds it receives: "reward", "tier_changed", "points_expired",
	// "coupon_redeemed" (the LOYALTY subject loyalty.<kind>.<token>).
	Kinds []string
	// Campaigns, when set, narrows the rewards to these campaigns' subjects.
	Campaigns []string
	// Since is where a consumer created now starts (the time of the endpoint's creation,
	// or of the change that added its stream) unless After says where.
	Since time.Time
	// After, when it holds a stream, is where a consumer created now on that stream
	// starts instead: right after that sequence, the stream's end read (Ends) before the
	// change was saved. A start by sequence does not depend on Postgres' clock (Since)
	// and NATS' (the stored times) agreeing: a notice published after the change is
	// never skipped.
	After map[string]uint64
}

// subjects are the filter subjects of the spec's consumer on stream (none: no consumer).
func (s WebhookSpec) subjects(stream string) []string {
	var out []string
	switch stream {
	case RewardsStream:
		if !slices.Contains(s.Kinds, "reward") {
			return nil
		}
		if len(s.Campaigns) == 0 {
			return []string{"rewards.>"}
		}
		for _, c := range s.Campaigns {
			out = append(out, "rewards."+c+".*")
		}
	case LoyaltyStream:
		for _, k := range s.Kinds {
			if k != "reward" {
				out = append(out, "loyalty."+k+".*")
			}
		}
	case WebhooksStream:
		out = []string{"webhooks." + s.ID + ".>"}
	}
	return out
}

// WebhookStreams are the streams an endpoint's consumers live on.
var WebhookStreams = []string{RewardsStream, LoyaltyStream, WebhooksStream}

// WebhookConsumerConfig configures every endpoint's consumers.
type WebhookConsumerConfig struct {
	// AckWait is how long a notice handed to a replica stays its own before JetStream
	// hands it to another: well over one attempt's timeout, so two replicas never deliver
	// one notice at once. 0 means 30 s.
	AckWait time.Duration
	// MaxAckPending bounds the notices of one endpoint handed out and not yet
	// acknowledged over all replicas (attempts in flight, successes whose records are
	// being written, failures waiting for their retry); 0 means 4096.
	MaxAckPending int
}

// Webhooks is the bus side of outbound webhooks: the bucket, the consumers and the
// retry stream. It is safe for concurrent use.
type Webhooks struct {
	js     jetstream.JetStream
	bucket *Bucket
	cfg    WebhookConsumerConfig
}

// OpenWebhooks binds the webhooks bucket, which EnsureStreams created.
func OpenWebhooks(ctx context.Context, js jetstream.JetStream, cfg WebhookConsumerConfig) (*Webhooks, error) {
	if cfg.AckWait == 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.MaxAckPending == 0 {
		cfg.MaxAckPending = 4096
	}
	b, err := OpenBucket(ctx, js, WebhooksKV)
	if err != nil {
		return nil, err
	}
	return &Webhooks{js: js, bucket: b, cfg: cfg}, nil
}

// Bucket is the webhooks bucket.
func (w *Webhooks) Bucket() *Bucket { return w.bucket }

// Put makes the endpoint's consumers follow spec (Ensure), then puts value under its id
// in the bucket, which every engine watches.
func (w *Webhooks) Put(ctx context.Context, spec WebhookSpec, value []byte) error {
	if _, err := w.Ensure(ctx, spec, nil); err != nil {
		return err
	}
	return w.bucket.Put(ctx, spec.ID, value)
}

// Ends returns the last sequence of each stream an endpoint's consumers live on. Read
// before an endpoint change is saved, they are where the consumers the change adds start
// (WebhookSpec.After).
func (w *Webhooks) Ends(ctx context.Context) (map[string]uint64, error) {
	out := make(map[string]uint64, len(WebhookStreams))
	for _, name := range WebhookStreams {
		s, err := w.js.Stream(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		out[name] = s.CachedInfo().State.LastSeq
	}
	return out, nil
}

// Delete removes endpoint id from the bucket and deletes its consumers.
func (w *Webhooks) Delete(ctx context.Context, id string) error {
	if err := w.bucket.Delete(ctx, id); err != nil {
		return err
	}
	for _, stream := range WebhookStreams {
		if err := w.js.DeleteConsumer(ctx, stream, WebhookConsumerName(id)); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("delete consumer %s on %s: %w", WebhookConsumerName(id), stream, err)
		}
	}
	return nil
}

// WebhookSource is one consumer of an endpoint.
type WebhookSource struct {
	Stream   string
	Consumer jetstream.Consumer
}

// Ensure makes the endpoint's consumers match spec and returns them: a consumer a stream
// needs is created (starting right after floors[stream] when that is set: the last ack
// floor seen of a consumer that disappeared; else right after spec.After[stream]; else at
// spec.Since) or has its filter
// changed; one it no longer needs is deleted. Every replica may call it at once.
func (w *Webhooks) Ensure(ctx context.Context, spec WebhookSpec, floors map[string]uint64) ([]WebhookSource, error) {
	name := WebhookConsumerName(spec.ID)
	var out []WebhookSource
	for _, stream := range WebhookStreams {
		subjects := spec.subjects(stream)
		if len(subjects) == 0 {
			if err := w.js.DeleteConsumer(ctx, stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return nil, fmt.Errorf("delete consumer %s on %s: %w", name, stream, err)
			}
			continue
		}
		start := jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: new(spec.Since.UTC())}
		if after, ok := spec.After[stream]; ok {
			start = jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: after + 1}
		}
		if floor := floors[stream]; floor > 0 {
			start = jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: floor + 1}
		}
		c, err := w.ensureOne(ctx, stream, name, subjects, start)
		if err != nil {
			return nil, err
		}
		out = append(out, WebhookSource{Stream: stream, Consumer: c})
	}
	return out, nil
}

// ensureOne makes the consumer name on stream follow subjects, creating it at start
// (its DeliverPolicy, OptStartSeq and OptStartTime) when there is none.
func (w *Webhooks) ensureOne(ctx context.Context, stream, name string, subjects []string, start jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	for range 3 {
		c, err := w.js.Consumer(ctx, stream, name)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			cc := w.config(name, subjects)
			cc.DeliverPolicy, cc.OptStartSeq, cc.OptStartTime = start.DeliverPolicy, start.OptStartSeq, start.OptStartTime
			c, err = w.js.CreateConsumer(ctx, stream, cc)
			if errors.Is(err, jetstream.ErrConsumerExists) {
				continue // another replica made it meanwhile
			}
			if err != nil {
				return nil, fmt.Errorf("create consumer %s on %s: %w", name, stream, err)
			}
			return c, nil
		case err != nil:
			return nil, fmt.Errorf("look up consumer %s on %s: %w", name, stream, err)
		}
		cur := c.CachedInfo().Config
		want := w.config(name, subjects)
		if slices.Equal(filtersOf(cur), subjects) && cur.AckWait == want.AckWait && cur.MaxAckPending == want.MaxAckPending {
			return c, nil
		}
		cur.FilterSubject, cur.FilterSubjects = want.FilterSubject, want.FilterSubjects
		cur.AckWait, cur.MaxAckPending = want.AckWait, want.MaxAckPending
		c, err = w.js.UpdateConsumer(ctx, stream, cur)
		if err != nil {
			return nil, fmt.Errorf("update consumer %s on %s: %w", name, stream, err)
		}
		return c, nil
	}
	return nil, fmt.Errorf("create consumer %s on %s: created and deleted again meanwhile", name, stream)
}

func filtersOf(cc jetstream.ConsumerConfig) []string {
	if cc.FilterSubject != "" {
		return []string{cc.FilterSubject}
	}
	return cc.FilterSubjects
}

func (w *Webhooks) config(name string, subjects []string) jetstream.ConsumerConfig {
	cc := jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "webhook deliveries of endpoint " + strings.TrimPrefix(name, "webhook-"),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       w.cfg.AckWait,
		MaxAckPending: w.cfg.MaxAckPending,
		MaxDeliver:    -1, // the delivery stage gives up itself, after its last attempt
	}
	if len(subjects) == 1 {
		cc.FilterSubject = subjects[0]
	} else {
		cc.FilterSubjects = subjects
	}
	return cc
}

// ErrNoticeGone is returned by Redeliver when the notice is no longer in its stream.
var ErrNoticeGone = errors.New("the notice is no longer in its stream")

// Redeliver queues the notice at seq of stream for endpoint id again, on WEBHOOKS, after
// attempts earlier attempts; it reaches the endpoint's WEBHOOKS consumer with a full
// retry schedule of its own. It returns ErrNoticeGone when the stream no longer holds it.
func (w *Webhooks) Redeliver(ctx context.Context, id, stream string, seq uint64, attempts int) error {
	s, err := w.js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("look up stream %s: %w", stream, err)
	}
	raw, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return ErrNoticeGone
	}
	if err != nil {
		return fmt.Errorf("get message %d of %s: %w", seq, stream, err)
	}
	noticeID := raw.Header.Get(jetstream.MsgIDHeader)
	msg := &nats.Msg{Subject: WebhookRetrySubject(id), Data: raw.Data, Header: nats.Header{}}
	msg.Header.Set(HeaderWebhookSubject, raw.Subject)
	msg.Header.Set(HeaderWebhookStream, stream)
	msg.Header.Set(HeaderWebhookStreamSeq, strconv.FormatUint(seq, 10))
	msg.Header.Set(HeaderWebhookNoticeID, noticeID)
	msg.Header.Set(HeaderWebhookAttempts, strconv.Itoa(attempts))
	msg.Header.Set(HeaderWebhookTime, raw.Time.UTC().Format(time.RFC3339Nano))
	if _, err := w.js.PublishMsg(ctx, msg, jetstream.WithMsgID("retry-"+id+"-"+noticeID+"-"+strconv.Itoa(attempts))); err != nil {
		return fmt.Errorf("publish retry of %s: %w", noticeID, err)
	}
	return nil
}

// WebhookNotice is a notice as an endpoint's consumer hands it over.
type WebhookNotice struct {
	// Subject is the notice's REWARDS or LOYALTY subject.
	Subject string
	// ID is its Nats-Msg-Id: the reward id or the loyalty notice id.
	ID   string
	Body []byte
	// Time is when the stream stored it.
	Time time.Time
	// Stream and StreamSeq locate it in REWARDS or LOYALTY.
	Stream    string
	StreamSeq uint64
	// Delivered counts this consumer's deliveries of it (1 the first time).
	Delivered uint64
	// Earlier are the attempts before a manual retry (0 otherwise).
	Earlier int
}

// ParseWebhookNotice reads msg, handed over by one of an endpoint's consumers.
func ParseWebhookNotice(msg jetstream.Msg) (WebhookNotice, error) {
	meta, err := msg.Metadata()
	if err != nil {
		return WebhookNotice{}, fmt.Errorf("webhook notice metadata: %w", err)
	}
	n := WebhookNotice{Subject: msg.Subject(), ID: msg.Headers().Get(jetstream.MsgIDHeader), Body: msg.Data(),
		Time: meta.Timestamp, Stream: meta.Stream, StreamSeq: meta.Sequence.Stream, Delivered: meta.NumDelivered}
	if meta.Stream != WebhooksStream {
		return n, nil
	}
	h := msg.Headers()
	n.Subject, n.ID, n.Stream = h.Get(HeaderWebhookSubject), h.Get(HeaderWebhookNoticeID), h.Get(HeaderWebhookStream)
	n.StreamSeq, _ = strconv.ParseUint(h.Get(HeaderWebhookStreamSeq), 10, 64)
	n.Earlier, _ = strconv.Atoi(h.Get(HeaderWebhookAttempts))
	if t, err := time.Parse(time.RFC3339Nano, h.Get(HeaderWebhookTime)); err == nil {
		n.Time = t
	}
	if n.Subject == "" || n.ID == "" {
		return n, fmt.Errorf("webhook retry %d lacks %s or %s", meta.Sequence.Stream, HeaderWebhookSubject, HeaderWebhookNoticeID)
	}
	return n, nil
}

// Pending is the backlog of an endpoint's consumers: notices not yet handed over plus
// those handed over and not yet acknowledged.
func Pending(ctx context.Context, sources []WebhookSource) (uint64, error) {
	var n uint64
	for _, s := range sources {
		info, err := s.Consumer.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("info of consumer on %s: %w", s.Stream, err)
		}
		n += info.NumPending + uint64(max(info.NumAckPending, 0))
	}
	return n, nil
}
