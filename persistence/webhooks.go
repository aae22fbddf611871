package persistence

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Notice kinds a webhook endpoint may receive (WebhookFilter.Notices).
const (
	NoticeReward         = "reward"
	NoticeTierChanged    = "tier_changed"
	NoticePointsExpired  = "points_expired"
	NoticeCouponRedeemed = "coupon_redeemed"
)

// NoticeKinds are every notice kind, in the order documented.
var NoticeKinds = []string{NoticeReward, NoticeTierChanged, NoticePointsExpired, NoticeCouponRedeemed}

// WebhookFilter says which notices an endpoint receives. Notices lists kinds (empty:
// every kind); RewardTypes and Campaigns, when set, narrow the rewards to those types
// and to those campaigns.
type WebhookFilter struct {
	Notices     []string `json:"notices,omitempty"`
	RewardTypes []string `json:"reward_types,omitempty"`
	Campaigns   []string `json:"campaigns,omitempty"`
}

// Kinds are the notice kinds f selects, in NoticeKinds order.
func (f WebhookFilter) Kinds() []string {
	if len(f.Notices) == 0 {
		return slices.Clone(NoticeKinds)
	}
	var out []string
	for _, k := range NoticeKinds {
		if slices.Contains(f.Notices, k) {
			out = append(out, k)
		}
	}
	return out
}

// Wants reports whether f selects notices of kind.
func (f WebhookFilter) Wants(kind string) bool {
	return len(f.Notices) == 0 || slices.Contains(f.Notices, kind)
}

// WantsReward reports whether f selects a reward of type typ from campaign.
func (f WebhookFilter) WantsReward(typ, campaign string) bool {
	return f.Wants(NoticeReward) &&
		(len(f.RewardTypes) == 0 || slices.Contains(f.RewardTypes, typ)) &&
		(len(f.Campaigns) == 0 || slices.Contains(f.Campaigns, campaign))
}

// Webhook is an outbound endpoint as stored. Its JSON form (what the webhooks KV bucket
// and the audit log hold) never carries a secret.
type Webhook struct {
	ID             string        `json:"id"`
	URL            string        `json:"url"`
	Description    string        `json:"description"`
	Filter         WebhookFilter `json:"filter"`
	Enabled        bool          `json:"enabled"`
	DisabledReason string        `json:"disabled_reason,omitempty"`
	// Secret signs every delivery: whsec_ and the base64 of the key's bytes.
	Secret string `json:"-"`
	// PreviousSecret signs too until PreviousSecretUntil (set by a rotation).
	PreviousSecret      string     `json:"-"`
	PreviousSecretUntil *time.Time `json:"previous_secret_until,omitempty"`
	Version             int64      `json:"version"`
	CreatedBy           string     `json:"created_by"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
	// Seq is the creation order (the list cursor).
	Seq int64 `json:"seq"`
	// StartSeqs are the last sequences of the streams the endpoint's consumers live on,
	// read just before it (or its latest change) was saved: a consumer created for it
	// starts right after (none: at UpdatedAt).
	StartSeqs map[string]uint64 `json:"start_seqs,omitempty"`
}

// SigningSecrets are the secrets that sign a delivery at now: the current one, then the
// previous one while its overlap lasts.
func (w *Webhook) SigningSecrets(now time.Time) []string {
	out := []string{w.Secret}
	if w.PreviousSecret != "" && w.PreviousSecretUntil != nil && now.Before(*w.PreviousSecretUntil) {
		out = append(out, w.PreviousSecret)
	}
	return out
}

// WebhookSecretPrefix starts every signing secret (Standard Webhooks' symmetric form).
const WebhookSecretPrefix = "whsec_"

// NewWebhookSecret is a new signing secret: whsec_ and the standard base64 of 32 random
// bytes (the HMAC key).
func NewWebhookSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return WebhookSecretPrefix + base64.StdEncoding.EncodeToString(b)
}

const webhookColumns = `id, url, description, filter, enabled, disabled_reason, secret, previous_secret,
	previous_secret_until, version, created_by, created_at, updated_at, seq, start_seqs`

func scanWebhook(r pgx.Row) (Webhook, error) {
	var w Webhook
	var filter, starts []byte
	err := r.Scan(&w.ID, &w.URL, &w.Description, &filter, &w.Enabled, &w.DisabledReason, &w.Secret, &w.PreviousSecret,
		&w.PreviousSecretUntil, &w.Version, &w.CreatedBy, &w.CreatedAt, &w.UpdatedAt, &w.Seq, &starts)
	if err != nil {
		return Webhook{}, err
	}
	if err := json.Unmarshal(filter, &w.Filter); err != nil {
		return Webhook{}, fmt.Errorf("decode filter of webhook %s: %w", w.ID, err)
	}
	if err := json.Unmarshal(starts, &w.StartSeqs); err != nil {
		return Webhook{}, fmt.Errorf("decode start_seqs of webhook %s: %w", w.ID, err)
	}
	if len(w.StartSeqs) == 0 {
		w.StartSeqs = nil
	}
	return w, nil
}

// CreateWebhook stores w as a new endpoint (version 1) created by actor, with a new id
// and signing secret, and returns it as stored (Secret set: show it once). The audit row
// commits with it.
func (s *Store) CreateWebhook(ctx context.Context, w Webhook, actor string) (Webhook, error) {
	w.ID = "wh_" + keyRandomHex(8)
	w.Secret = NewWebhookSecret()
	w.PreviousSecret, w.PreviousSecretUntil = "", nil
	filter, err := json.Marshal(w.Filter)
	if err != nil {
		return Webhook{}, fmt.Errorf("create webhook: encode filter: %w", err)
	}
	starts, err := startSeqsJSON(w.StartSeqs)
	if err != nil {
		return Webhook{}, fmt.Errorf("create webhook: %w", err)
	}
	var out Webhook
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		out, err = scanWebhook(tx.QueryRow(ctx, `INSERT INTO webhooks (id, url, description, filter, enabled, disabled_reason, secret, created_by, start_seqs)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING `+webhookColumns,
			w.ID, w.URL, w.Description, string(filter), w.Enabled, w.DisabledReason, w.Secret, actor, starts))
		if err != nil {
			return err
		}
		return writeAudit(ctx, tx, AuditEntry{Actor: actor, Action: "webhook.create", TargetType: "webhook",
			TargetID: out.ID, After: auditJSON(&out)})
	})
	if err != nil {
		return Webhook{}, fmt.Errorf("create webhook: %w", translate(err))
	}
	return out, nil
}

// startSeqsJSON is the start_seqs column of seqs ({} for none).
func startSeqsJSON(seqs map[string]uint64) (string, error) {
	if len(seqs) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(seqs)
	if err != nil {
		return "", fmt.Errorf("encode start_seqs: %w", err)
	}
	return string(b), nil
}

// GetWebhook returns the endpoint id, secrets included, or ErrNotFound.
func (s *Store) GetWebhook(ctx context.Context, id string) (Webhook, error) {
	w, err := scanWebhook(s.pool.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1`, id))
	if err != nil {
		return Webhook{}, fmt.Errorf("get webhook %q: %w", id, translate(err))
	}
	return w, nil
}

// ListWebhooks returns up to limit endpoints created after the one of seq after, oldest
// first; limit 0 means all.
func (s *Store) ListWebhooks(ctx context.Context, after int64, limit int) ([]Webhook, error) {
	q := `SELECT ` + webhookColumns + ` FROM webhooks WHERE seq > $1 ORDER BY seq`
	args := []any{after}
	if limit > 0 {
		q += ` LIMIT $2`
		args = append(args, limit)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Webhook, error) { return scanWebhook(r) })
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return out, nil
}

// ModifyWebhook changes the endpoint id with fn under a row lock, as the next version,
// and audits it as action by actor. fn may return an error to abort (returned as is,
// e.g. ErrVersionMismatch). It returns the endpoint before and after; ErrNotFound for an
// unknown id.
func (s *Store) ModifyWebhook(ctx context.Context, id, actor, action string, fn func(w *Webhook) error) (before, after Webhook, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		before, err = scanWebhook(tx.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		cur := before
		if err := fn(&cur); err != nil {
			return err
		}
		filter, err := json.Marshal(cur.Filter)
		if err != nil {
			return err
		}
		starts, err := startSeqsJSON(cur.StartSeqs)
		if err != nil {
			return err
		}
		after, err = scanWebhook(tx.QueryRow(ctx, `UPDATE webhooks SET url = $2, description = $3, filter = $4, enabled = $5,
			disabled_reason = $6, secret = $7, previous_secret = $8, previous_secret_until = $9, start_seqs = $10,
			version = version + 1, updated_at = now() WHERE id = $1 RETURNING `+webhookColumns,
			id, cur.URL, cur.Description, string(filter), cur.Enabled, cur.DisabledReason, cur.Secret, cur.PreviousSecret,
			cur.PreviousSecretUntil, starts))
		if err != nil {
			return err
		}
		return writeAudit(ctx, tx, AuditEntry{Actor: actor, Action: action, TargetType: "webhook", TargetID: id,
			Before: auditJSON(&before), After: auditJSON(&after)})
	})
	if err != nil {
		return Webhook{}, Webhook{}, fmt.Errorf("%s %q: %w", action, id, translate(err))
	}
	return before, after, nil
}

// RotateWebhookSecret gives the endpoint id a new signing secret; the current one keeps
// signing for overlap (0: not at all). It returns the endpoint with the new Secret.
func (s *Store) RotateWebhookSecret(ctx context.Context, id string, overlap time.Duration, actor string) (Webhook, error) {
	_, after, err := s.ModifyWebhook(ctx, id, actor, "webhook.rotate_secret", func(w *Webhook) error {
		w.PreviousSecret, w.PreviousSecretUntil = "", nil
		if overlap > 0 {
			until := time.Now().Add(overlap).UTC().Truncate(time.Microsecond)
			w.PreviousSecret, w.PreviousSecretUntil = w.Secret, &until
		}
		w.Secret = NewWebhookSecret()
		return nil
	})
	return after, err
}

// DisableWebhook turns the endpoint id off, saying why (a delivery answered 410 Gone);
// audited as done by actor. It returns the endpoint after; an endpoint disabled already
// is returned unchanged.
func (s *Store) DisableWebhook(ctx context.Context, id, reason, actor string) (Webhook, error) {
	cur, err := s.GetWebhook(ctx, id)
	if err != nil || !cur.Enabled {
		return cur, err
	}
	_, after, err := s.ModifyWebhook(ctx, id, actor, "webhook.disable", func(w *Webhook) error {
		w.Enabled, w.DisabledReason = false, reason
		return nil
	})
	return after, err
}

// DeleteWebhook removes the endpoint id and its delivery records, audited as done by
// actor, and returns it as it was; ErrNotFound for an unknown id.
func (s *Store) DeleteWebhook(ctx context.Context, id, actor string) (Webhook, error) {
	var w Webhook
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		w, err = scanWebhook(tx.QueryRow(ctx, `DELETE FROM webhooks WHERE id = $1 RETURNING `+webhookColumns, id))
		if err != nil {
			return err
		}
		return writeAudit(ctx, tx, AuditEntry{Actor: actor, Action: "webhook.delete", TargetType: "webhook", TargetID: id,
			Before: auditJSON(&w)})
	})
	if err != nil {
		return Webhook{}, fmt.Errorf("delete webhook %q: %w", id, translate(err))
	}
	return w, nil
}

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliverySucceeded = "succeeded"
	DeliveryFailed    = "failed"
)

// Delivery is the record of one notice's delivery to one endpoint, at its latest state.
type Delivery struct {
	WebhookID string `json:"webhook_id"`
	// ID is the notice id, sent as webhook-id.
	ID   string `json:"id"`
	Type string `json:"type"`
	// Subject, Stream and StreamSeq locate the notice (none for a test ping).
	Subject   string `json:"subject,omitempty"`
	Stream    string `json:"stream,omitempty"`
	StreamSeq uint64 `json:"stream_seq,omitempty"`
	Status    string `json:"status"`
	Attempts  int    `json:"attempts"`
	// LastStatus is the last attempt's HTTP status, 0 when it got none.
	LastStatus    int           `json:"last_status,omitempty"`
	LastError     string        `json:"last_error,omitempty"`
	LastLatency   time.Duration `json:"-"`
	LastAttemptAt *time.Time    `json:"last_attempt_at,omitempty"`
	NextAttemptAt *time.Time    `json:"next_attempt_at,omitempty"`
	CreatedAt     time.Time     `json:"created_at"`
	UpdatedAt     time.Time     `json:"updated_at"`
	Seq           int64         `json:"seq"`
}

// RecordDeliveries writes the latest state of each delivery in one statement. A record
// never goes back: one with fewer attempts than the stored one is ignored (stages of
// several replicas write in any order), and with as many it only replaces a pending
// record. Of two records of one delivery in ds, the one with more attempts counts.
func (s *Store) RecordDeliveries(ctx context.Context, ds []Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	latest := make(map[[2]string]int, len(ds))
	var keep []Delivery
	for _, d := range ds {
		k := [2]string{d.WebhookID, d.ID}
		if i, ok := latest[k]; ok {
			if d.Attempts >= keep[i].Attempts {
				keep[i] = d
			}
			continue
		}
		latest[k] = len(keep)
		keep = append(keep, d)
	}
	n := len(keep)
	var (
		hook, id, typ, subject, stream, status, lastErr = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		seq                                             = make([]int64, n)
		attempts                                        = make([]int32, n)
		code                                            = make([]*int32, n)
		latency                                         = make([]*float64, n)
		lastAt, nextAt                                  = make([]*time.Time, n), make([]*time.Time, n)
	)
	for i, d := range keep {
		hook[i], id[i], typ[i], subject[i], stream[i], status[i] = d.WebhookID, d.ID, d.Type, d.Subject, d.Stream, d.Status
		lastErr[i] = strings.ToValidUTF8(strings.ReplaceAll(d.LastError, "\x00", ""), "?")
		seq[i] = int64(min(d.StreamSeq, 1<<62))
		attempts[i] = int32(min(d.Attempts, 1<<30))
		if d.LastStatus > 0 {
			c := int32(min(d.LastStatus, 999))
			code[i] = &c
		}
		if d.LastAttemptAt != nil {
			ms := float64(d.LastLatency) / float64(time.Millisecond)
			latency[i] = &ms
		}
		lastAt[i], nextAt[i] = d.LastAttemptAt, d.NextAttemptAt
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO webhook_deliveries AS d (webhook_id, id, type, subject, stream, stream_seq, status,
			attempts, last_status, last_error, last_latency_ms, last_attempt_at, next_attempt_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[],
			$8::int[], $9::int[], $10::text[], $11::float8[], $12::timestamptz[], $13::timestamptz[])
			AS r(webhook_id, id, type, subject, stream, stream_seq, status, attempts, last_status, last_error, last_latency_ms, last_attempt_at, next_attempt_at)
		WHERE EXISTS (SELECT 1 FROM webhooks w WHERE w.id = r.webhook_id)
		ON CONFLICT (webhook_id, id) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,
			last_status = excluded.last_status, last_error = excluded.last_error, last_latency_ms = excluded.last_latency_ms,
			last_attempt_at = excluded.last_attempt_at, next_attempt_at = excluded.next_attempt_at, updated_at = now(),
			type = excluded.type, subject = CASE WHEN excluded.stream = '' THEN d.subject ELSE excluded.subject END,
			stream = CASE WHEN excluded.stream = '' THEN d.stream ELSE excluded.stream END,
			stream_seq = CASE WHEN excluded.stream = '' THEN d.stream_seq ELSE excluded.stream_seq END
		WHERE excluded.attempts > d.attempts OR (excluded.attempts = d.attempts AND d.status = 'pending')`,
		hook, id, typ, subject, stream, seq, status, attempts, code, lastErr, latency, lastAt, nextAt)
	if err != nil {
		return fmt.Errorf("record %d webhook deliveries: %w", n, err)
	}
	return nil
}

const deliveryColumns = `webhook_id, id, type, subject, stream, stream_seq, status, attempts, last_status, last_error,
	last_latency_ms, last_attempt_at, next_attempt_at, created_at, updated_at, seq`

func scanDelivery(r pgx.Row) (Delivery, error) {
	var d Delivery
	var seq int64
	var code *int32
	var latency *float64
	err := r.Scan(&d.WebhookID, &d.ID, &d.Type, &d.Subject, &d.Stream, &seq, &d.Status, &d.Attempts, &code, &d.LastError,
		&latency, &d.LastAttemptAt, &d.NextAttemptAt, &d.CreatedAt, &d.UpdatedAt, &d.Seq)
	if seq > 0 {
		d.StreamSeq = uint64(seq)
	}
	if code != nil {
		d.LastStatus = int(*code)
	}
	if latency != nil {
		d.LastLatency = time.Duration(*latency * float64(time.Millisecond))
	}
	return d, err
}

// ListDeliveries returns up to limit delivery records of the endpoint webhookID after
// the one of seq after, oldest first, of status when it is not empty.
func (s *Store) ListDeliveries(ctx context.Context, webhookID, status string, after int64, limit int) ([]Delivery, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries
		WHERE webhook_id = $1 AND ($2 = '' OR status = $2) AND seq > $3 ORDER BY seq LIMIT $4`, webhookID, status, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list deliveries of webhook %q: %w", webhookID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Delivery, error) { return scanDelivery(r) })
	if err != nil {
		return nil, fmt.Errorf("list deliveries of webhook %q: %w", webhookID, err)
	}
	return out, nil
}

// GetDelivery returns the record of notice id's delivery to the endpoint webhookID, or
// ErrNotFound.
func (s *Store) GetDelivery(ctx context.Context, webhookID, id string) (Delivery, error) {
	d, err := scanDelivery(s.pool.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries
		WHERE webhook_id = $1 AND id = $2`, webhookID, id))
	if err != nil {
		return Delivery{}, fmt.Errorf("get delivery %q of webhook %q: %w", id, webhookID, translate(err))
	}
	return d, nil
}

// ErrNotRetryable is returned by RetryDelivery for a delivery that has not failed.
var ErrNotRetryable = errors.New("the delivery has not failed")

// RetryDelivery sets a failed delivery pending again, its next attempt now, audited as
// done by actor. It returns the record after, ErrNotFound or ErrNotRetryable.
func (s *Store) RetryDelivery(ctx context.Context, webhookID, id, actor string) (Delivery, error) {
	var d Delivery
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		before, err := scanDelivery(tx.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries
			WHERE webhook_id = $1 AND id = $2 FOR UPDATE`, webhookID, id))
		if err != nil {
			return err
		}
		if before.Status != DeliveryFailed {
			return ErrNotRetryable
		}
		d, err = scanDelivery(tx.QueryRow(ctx, `UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(),
			updated_at = now() WHERE webhook_id = $1 AND id = $2 RETURNING `+deliveryColumns, webhookID, id))
		if err != nil {
			return err
		}
		return writeAudit(ctx, tx, AuditEntry{Actor: actor, Action: "webhook.delivery_retry", TargetType: "webhook",
			TargetID: webhookID, Before: auditJSON(&before), After: auditJSON(&d)})
	})
	if err != nil {
		return Delivery{}, fmt.Errorf("retry delivery %q of webhook %q: %w", id, webhookID, translate(err))
	}
	return d, nil
}

// PruneDeliveries deletes the records of deliveries that succeeded before cutoff, up to
// limit of them, and returns how many it deleted.
func (s *Store) PruneDeliveries(ctx context.Context, cutoff time.Time, limit int) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhook_deliveries WHERE ctid IN (
		SELECT ctid FROM webhook_deliveries WHERE status = 'succeeded' AND updated_at < $1 LIMIT $2)`, cutoff, limit)
	if err != nil {
		return 0, fmt.Errorf("prune webhook deliveries: %w", err)
	}
	return tag.RowsAffected(), nil
}
