package admin

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/api"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// WebhookSink broadcasts endpoint changes to every engine and queues manual retries;
// webhook.Endpoints implements it over the webhooks bucket, the endpoints' consumers and
// the WEBHOOKS stream. Its methods block on JetStream and are safe for concurrent use.
type WebhookSink interface {
	// StreamEnds returns the last sequence of each stream the endpoints' consumers live
	// on, read before a change is saved (its StartSeqs): where the consumers it adds start.
	StreamEnds(ctx context.Context) (map[string]uint64, error)
	// PutWebhook makes w's consumers follow its filter (those it creates start right after
	// w.StartSeqs; none: at w.UpdatedAt) and puts it in the bucket.
	PutWebhook(ctx context.Context, w *persistence.Webhook) error
	// DeleteWebhook removes endpoint id from the bucket and deletes its consumers.
	DeleteWebhook(ctx context.Context, id string) error
	// Redeliver queues the notice at seq of stream for endpoint id again, after attempts
	// earlier attempts. It returns bus.ErrNoticeGone when the stream no longer holds it.
	Redeliver(ctx context.Context, id, stream string, seq uint64, attempts int) error
}

// WebhookSender checks endpoint URLs and sends test pings; webhook.Sender implements it.
// Its methods are safe for concurrent use.
type WebhookSender interface {
	// CheckURL returns an error saying why raw cannot be an endpoint URL (not absolute
	// http(s), or a private address while those are not allowed), nil when it can.
	CheckURL(ctx context.Context, raw string) error
	// Ping sends w a webhook.test delivery now and returns its record.
	Ping(ctx context.Context, w *persistence.Webhook) persistence.Delivery
}

// Limits of an endpoint's fields.
const (
	maxWebhookDescription = 1000
	maxWebhookCampaigns   = 100
	// defaultRotationOverlap is how long the old secret keeps signing after a rotation
	// that names no overlap; maxRotationOverlap the longest overlap taken.
	defaultRotationOverlap = 24 * time.Hour
	maxRotationOverlap     = 7 * 24 * time.Hour
)

var rewardTypes = []string{campaign.RewardPoints, campaign.RewardCoupon, campaign.RewardFreeShipping, campaign.RewardNotification}

var campaignIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// webhookCreate is the body of POST /v1/webhooks; Enabled defaults to true.
type webhookCreate struct {
	URL         string                    `json:"url"`
	Description string                    `json:"description"`
	Filter      persistence.WebhookFilter `json:"filter"`
	Enabled     *bool                     `json:"enabled"`
}

// webhookPatch is the body of PATCH /v1/webhooks/{id}: the fields given change.
type webhookPatch struct {
	URL         *string                    `json:"url"`
	Description *string                    `json:"description"`
	Filter      *persistence.WebhookFilter `json:"filter"`
	Enabled     *bool                      `json:"enabled"`
}

// webhookView is an endpoint as the admin API shows it: never a secret.
type webhookView struct {
	ID                  string                    `json:"id"`
	URL                 string                    `json:"url"`
	Description         string                    `json:"description"`
	Filter              persistence.WebhookFilter `json:"filter"`
	Enabled             bool                      `json:"enabled"`
	DisabledReason      string                    `json:"disabled_reason,omitempty"`
	PreviousSecretUntil *time.Time                `json:"previous_secret_until,omitempty"`
	Version             int64                     `json:"version"`
	CreatedBy           string                    `json:"created_by"`
	CreatedAt           time.Time                 `json:"created_at"`
	UpdatedAt           time.Time                 `json:"updated_at"`
}

func viewWebhook(w *persistence.Webhook) webhookView {
	v := webhookView{ID: w.ID, URL: w.URL, Description: w.Description, Filter: w.Filter, Enabled: w.Enabled,
		DisabledReason: w.DisabledReason, Version: w.Version, CreatedBy: w.CreatedBy, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
	if w.PreviousSecretUntil != nil && time.Now().Before(*w.PreviousSecretUntil) {
		v.PreviousSecretUntil = w.PreviousSecretUntil
	}
	return v
}

// webhookWithSecret is the answer to a create or a rotation, the only ones holding the
// signing secret.
type webhookWithSecret struct {
	webhookView
	Secret string `json:"secret"`
}

// deliveryView is a delivery record as the admin API shows it.
type deliveryView struct {
	ID            string     `json:"id"`
	WebhookID     string     `json:"webhook_id"`
	Type          string     `json:"type"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	LastStatus    *int       `json:"last_status,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	LastLatencyMS *float64   `json:"last_latency_ms,omitempty"`
	LastAttemptAt *time.Time `json:"last_attempt_at,omitempty"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	Subject       string     `json:"subject,omitempty"`
	Stream        string     `json:"stream,omitempty"`
	StreamSeq     uint64     `json:"stream_seq,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

func viewDelivery(d persistence.Delivery) deliveryView {
	v := deliveryView{ID: d.ID, WebhookID: d.WebhookID, Type: d.Type, Status: d.Status, Attempts: d.Attempts, LastError: d.LastError,
		LastAttemptAt: d.LastAttemptAt, Subject: d.Subject, Stream: d.Stream, StreamSeq: d.StreamSeq,
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
	if d.Status == persistence.DeliveryPending {
		v.NextAttemptAt = d.NextAttemptAt
	}
	if d.LastStatus > 0 {
		code := d.LastStatus
		v.LastStatus = &code
	}
	if d.LastAttemptAt != nil {
		ms := float64(d.LastLatency.Microseconds()) / 1000
		v.LastLatencyMS = &ms
	}
	return v
}

// checkWebhook checks an endpoint's URL (checkURL: with the sender, which may resolve
// its host: scheme, host, private addresses), description and filter, returning every
// problem as a field error.
func (a *API) checkWebhook(ctx context.Context, w *persistence.Webhook, checkURL bool) error {
	var errs []error
	if checkURL {
		if err := a.deps.WebhookSender.CheckURL(ctx, w.URL); err != nil {
			errs = append(errs, fieldError("url", err.Error()))
		}
	}
	if len(w.Description) > maxWebhookDescription || !utf8.ValidString(w.Description) {
		errs = append(errs, fieldError("description", fmt.Sprintf("must be UTF-8 of at most %d bytes", maxWebhookDescription)))
	}
	errs = append(errs, checkFilter(w.Filter)...)
	return errors.Join(errs...)
}

// checkFilter checks that a filter names known notice kinds and reward types, and
// campaign ids, each once.
func checkFilter(f persistence.WebhookFilter) []error {
	var errs []error
	check := func(field string, vals []string, most int, ok func(string) bool, want string) {
		if len(vals) > most {
			errs = append(errs, fieldError(field, fmt.Sprintf("must hold at most %d entries", most)))
			return
		}
		for i, v := range vals {
			if !ok(v) || slices.Contains(vals[:i], v) {
				errs = append(errs, fieldError(field, fmt.Sprintf("entry %q: must be %s, each once", v, want)))
				return
			}
		}
	}
	kinds := strings.Join(persistence.NoticeKinds, ", ")
	check("filter.notices", f.Notices, len(persistence.NoticeKinds), func(v string) bool { return slices.Contains(persistence.NoticeKinds, v) }, "one of "+kinds)
	check("filter.reward_types", f.RewardTypes, len(rewardTypes), func(v string) bool { return slices.Contains(rewardTypes, v) }, "one of "+strings.Join(rewardTypes, ", "))
	check("filter.campaigns", f.Campaigns, maxWebhookCampaigns, campaignIDPattern.MatchString, "a campaign id")
	if (len(f.RewardTypes) > 0 || len(f.Campaigns) > 0) && !f.Wants(persistence.NoticeReward) {
		errs = append(errs, fieldError("filter.notices", "reward_types and campaigns narrow the rewards, so notices must include reward"))
	}
	return errs
}

// streamEnds reads where the consumers a change adds start, before it is saved; a
// failure is 503 (nothing is saved).
func (a *API) streamEnds(c *fiber.Ctx, ctx context.Context) (map[string]uint64, error) { //nolint:revive // fiber first, like every handler helper
	ends, err := a.deps.Webhooks.StreamEnds(ctx)
	if err != nil {
		a.log.Error("read the webhook streams' ends", "correlation_id", api.CorrelationID(c), "err", err)
		return nil, api.Unavailable("NATS did not answer; nothing is saved; retry")
	}
	return ends, nil
}

// broadcastWebhook makes the engines follow w (its consumers and the bucket); a failure
// is 503: the change is saved in Postgres (with where new consumers start) and reaches
// the bucket at the next start at the latest.
func (a *API) broadcastWebhook(c *fiber.Ctx, w *persistence.Webhook) error {
	ctx, cancel := api.Ctx(c)
	defer cancel()
	if err := a.deps.Webhooks.PutWebhook(ctx, w); err != nil {
		a.log.Error("publish webhook", "webhook", w.ID, "correlation_id", api.CorrelationID(c), "err", err)
		return api.Unavailable("the endpoint change is saved but could not be published to the engines; retry")
	}
	return nil
}

func (a *API) createWebhook(c *fiber.Ctx) error {
	var req webhookCreate
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	w := persistence.Webhook{URL: req.URL, Description: req.Description, Filter: req.Filter, Enabled: req.Enabled == nil || *req.Enabled}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	if err := a.checkWebhook(ctx, &w, true); err != nil {
		return err
	}
	ends, err := a.streamEnds(c, ctx)
	if err != nil {
		return err
	}
	w.StartSeqs = ends
	w, err = a.deps.Store.CreateWebhook(ctx, w, adminOf(c).Username)
	if err != nil {
		return err
	}
	if err := a.broadcastWebhook(c, &w); err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderLocation, "/v1/webhooks/"+w.ID)
	c.Set(fiber.HeaderETag, api.ETag(w.Version))
	return c.Status(fiber.StatusCreated).JSON(webhookWithSecret{webhookView: viewWebhook(&w), Secret: w.Secret})
}

func (a *API) listWebhooks(c *fiber.Ctx) error {
	limit, after, err := api.Page(c)
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	ws, err := a.deps.Store.ListWebhooks(ctx, after, limit)
	if err != nil {
		return err
	}
	out := make([]webhookView, 0, len(ws))
	for i := range ws {
		out = append(out, viewWebhook(&ws[i]))
	}
	next := ""
	if len(ws) == limit {
		next = strconv.FormatInt(ws[len(ws)-1].Seq, 10)
	}
	return c.JSON(fiber.Map{"webhooks": out, "next_cursor": next})
}

func (a *API) getWebhook(c *fiber.Ctx) error {
	id, err := api.PathParam(c, "id")
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	w, err := a.deps.Store.GetWebhook(ctx, id)
	if err != nil {
		return api.About(err, "webhook "+id)
	}
	c.Set(fiber.HeaderETag, api.ETag(w.Version))
	return c.JSON(viewWebhook(&w))
}

// patchWebhook changes the fields given; enabling an endpoint clears why it was
// disabled (a 410 Gone).
func (a *API) patchWebhook(c *fiber.Ctx) error {
	id, err := api.PathParam(c, "id")
	if err != nil {
		return err
	}
	ifMatch, err := api.IfMatchVersion(c)
	if err != nil {
		return err
	}
	var req webhookPatch
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	if req.URL != nil { // before the row is locked: the check may resolve the host
		if err := a.deps.WebhookSender.CheckURL(ctx, *req.URL); err != nil {
			return fieldError("url", err.Error())
		}
	}
	ends, err := a.streamEnds(c, ctx)
	if err != nil {
		return err
	}
	_, w, err := a.deps.Store.ModifyWebhook(ctx, id, adminOf(c).Username, "webhook.update", func(w *persistence.Webhook) error {
		if ifMatch > 0 && w.Version != ifMatch {
			return persistence.ErrVersionMismatch
		}
		applyWebhookPatch(w, req)
		w.StartSeqs = ends
		return a.checkWebhook(ctx, w, false)
	})
	if err != nil {
		return api.About(err, "webhook "+id)
	}
	if err := a.broadcastWebhook(c, &w); err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, api.ETag(w.Version))
	return c.JSON(viewWebhook(&w))
}

func applyWebhookPatch(w *persistence.Webhook, p webhookPatch) {
	if p.URL != nil {
		w.URL = *p.URL
	}
	if p.Description != nil {
		w.Description = *p.Description
	}
	if p.Filter != nil {
		w.Filter = *p.Filter
	}
	if p.Enabled != nil {
		w.Enabled = *p.Enabled
		if w.Enabled {
			w.DisabledReason = ""
		}
	}
}

func (a *API) deleteWebhook(c *fiber.Ctx) error {
	id, err := api.PathParam(c, "id")
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	w, err := a.deps.Store.DeleteWebhook(ctx, id, adminOf(c).Username)
	if err != nil {
		return api.About(err, "webhook "+id)
	}
	if err := a.deps.Webhooks.DeleteWebhook(ctx, id); err != nil {
		a.log.Error("remove deleted webhook from the bus", "webhook", id, "correlation_id", api.CorrelationID(c), "err", err)
		return api.Unavailable("the endpoint is deleted but the engines could not be told; they stop delivering to it at the next start at the latest")
	}
	return c.JSON(viewWebhook(&w))
}

// rotateSecret gives the endpoint a new secret; the old one keeps signing for the
// overlap (query parameter, default 24h, 0s for none).
func (a *API) rotateSecret(c *fiber.Ctx) error {
	id, err := api.PathParam(c, "id")
	if err != nil {
		return err
	}
	overlap := defaultRotationOverlap
	if v := c.Query("overlap"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > maxRotationOverlap {
			return fieldError("overlap", "must be a duration from 0s to 168h, e.g. 24h")
		}
		overlap = d
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	w, err := a.deps.Store.RotateWebhookSecret(ctx, id, overlap, adminOf(c).Username)
	if err != nil {
		return api.About(err, "webhook "+id)
	}
	if err := a.broadcastWebhook(c, &w); err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderETag, api.ETag(w.Version))
	return c.JSON(webhookWithSecret{webhookView: viewWebhook(&w), Secret: w.Secret})
}

// deliveryStatuses are the values of the deliveries list's status filter.
var deliveryStatuses = []string{persistence.DeliveryPending, persistence.DeliverySucceeded, persistence.DeliveryFailed}

func (a *API) listDeliveries(c *fiber.Ctx) error {
	id, err := api.PathParam(c, "id")
	if err != nil {
		return err
	}
	limit, after, err := api.Page(c)
	if err != nil {
		return err
	}
	status := c.Query("status")
	if status != "" && !slices.Contains(deliveryStatuses, status) {
		return fieldError("status", "must be pending, succeeded or failed")
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	if _, err := a.deps.Store.GetWebhook(ctx, id); err != nil {
		return api.About(err, "webhook "+id)
	}
	ds, err := a.deps.Store.ListDeliveries(ctx, id, status, after, limit)
	if err != nil {
		return err
	}
	out := make([]deliveryView, 0, len(ds))
	for _, d := range ds {
		out = append(out, viewDelivery(d))
	}
	next := ""
	if len(ds) == limit {
		next = strconv.FormatInt(ds[len(ds)-1].Seq, 10)
	}
	return c.JSON(fiber.Map{"deliveries": out, "next_cursor": next})
}

func (a *API) getDelivery(c *fiber.Ctx) error {
	id, did, err := deliveryPath(c)
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	d, err := a.deps.Store.GetDelivery(ctx, id, did)
	if err != nil {
		return api.About(err, "delivery "+did+" of webhook "+id)
	}
	return c.JSON(viewDelivery(d))
}

func deliveryPath(c *fiber.Ctx) (webhookID, deliveryID string, err error) {
	if webhookID, err = api.PathParam(c, "id"); err != nil {
		return "", "", err
	}
	deliveryID, err = api.PathParam(c, "delivery")
	return webhookID, deliveryID, err
}
