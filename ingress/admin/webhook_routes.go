package admin

import (
	"context"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/ingress/api"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// pingTimeout bounds a test ping's request: the attempt (at most the sender's 10 s) and
// its record.
const pingTimeout = 20 * time.Second

// retryDelivery queues a failed delivery again (on WEBHOOKS), with a full retry schedule
// of its own; it is pending until an engine attempts it.
func (a *API) retryDelivery(c *fiber.Ctx) error {
	id, did, err := deliveryPath(c)
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	what := "delivery " + did + " of webhook " + id
	before, err := a.deps.Store.GetDelivery(ctx, id, did)
	if err != nil {
		return api.About(err, what)
	}
	if before.Stream == "" {
		return api.Problemf(fiber.StatusConflict, what+" is a test ping, which is not retried; send another")
	}
	d, err := a.deps.Store.RetryDelivery(ctx, id, did, adminOf(c).Username)
	if errors.Is(err, persistence.ErrNotRetryable) {
		return api.Problemf(fiber.StatusConflict, what+" is "+before.Status+"; only a failed delivery is retried")
	}
	if err != nil {
		return api.About(err, what)
	}
	if err := a.deps.Webhooks.Redeliver(ctx, id, before.Stream, before.StreamSeq, before.Attempts); err != nil {
		// Back to failed, as it was: nothing is coming.
		if rerr := a.deps.Store.RecordDeliveries(context.WithoutCancel(ctx), []persistence.Delivery{before}); rerr != nil {
			a.log.Error("set a delivery whose retry was not queued back to failed", "webhook", id, "delivery", did, "err", rerr)
		}
		if errors.Is(err, bus.ErrNoticeGone) {
			return api.Problemf(fiber.StatusConflict, what+": the notice is no longer in stream "+before.Stream+
				" (older than its retention), so it cannot be sent again")
		}
		a.log.Error("queue a webhook retry", "webhook", id, "delivery", did, "correlation_id", api.CorrelationID(c), "err", err)
		return api.Unavailable("the retry could not be queued; retry")
	}
	return c.Status(fiber.StatusAccepted).JSON(viewDelivery(d))
}

// testWebhook sends the endpoint a webhook.test delivery now (enabled or not), records it
// and answers its record: succeeded, or failed with the reason (a ping is not retried).
func (a *API) testWebhook(c *fiber.Ctx) error {
	id, err := api.PathParam(c, "id")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), pingTimeout)
	defer cancel()
	w, err := a.deps.Store.GetWebhook(ctx, id)
	if err != nil {
		return api.About(err, "webhook "+id)
	}
	d := a.deps.WebhookSender.Ping(ctx, &w)
	if err := a.deps.Store.RecordDeliveries(ctx, []persistence.Delivery{d}); err != nil {
		return err
	}
	stored, err := a.deps.Store.GetDelivery(ctx, id, d.ID)
	if err != nil {
		return err
	}
	v := viewDelivery(stored)
	a.audit(c, "webhook.test", "webhook", id, nil, v)
	return c.JSON(v)
}

// webhookRoutes are the outbound webhook endpoints, their deliveries and test pings.
func (a *API) webhookRoutes() api.Group {
	const tag = "Webhooks"
	unpublished := "Saved, but not yet published to the engines; retry"
	id := []api.Param{api.IfMatch}
	return api.Group{
		Tags: []api.Tag{{Name: tag, Description: "Outbound webhooks: endpoints that receive rewards and loyalty notices, " +
			"signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`), " +
			"at least once, retried with exponential back-off and jitter, then listed as failed. Admin role; every change is audited; " +
			"the signing secret is shown on create and rotation only."}},
		Schemas:  webhookSchemas(),
		Examples: webhookExamples(),
		Routes: []api.Route{
			{Method: "POST", Path: "/v1/webhooks", Access: api.Admin, Tag: tag, OperationID: "createWebhook",
				Summary: "Create an endpoint (its signing secret is shown only in this answer)", Handler: a.createWebhook,
				Request: "WebhookCreate", Response: "WebhookWithSecret", Headers: []string{"ETag", "Location"},
				Statuses: []int{201, 400, 415, 503}, StatusNotes: map[int]string{
					400: "A field is invalid; the problem names it (url: not absolute http(s), or a loopback, link-local or private address while CAMPAIGN_WEBHOOK_ALLOW_PRIVATE is off)",
					503: unpublished}},
			{Method: "GET", Path: "/v1/webhooks", Access: api.Admin, Tag: tag, OperationID: "listWebhooks",
				Summary: "List endpoints, oldest first (limit, cursor; no secrets)", Handler: a.listWebhooks, Response: "WebhookList",
				Params: api.Pagination, Statuses: []int{200, 400}, StatusNotes: map[int]string{400: "A bad limit or cursor"}},
			{Method: "GET", Path: "/v1/webhooks/:id", Access: api.Admin, Tag: tag, OperationID: "getWebhook",
				Summary: "An endpoint (no secret)", Handler: a.getWebhook, Response: "Webhook", Headers: []string{"ETag"},
				Statuses: []int{200, 400, 404}},
			{Method: "PATCH", Path: "/v1/webhooks/:id", Access: api.Admin, Tag: tag, OperationID: "updateWebhook",
				Summary: "Change an endpoint's url, description, filter or enabled flag (enabling clears disabled_reason)", Handler: a.patchWebhook,
				Request: "WebhookPatch", Response: "Webhook", Params: id, Headers: []string{"ETag"},
				Statuses: []int{200, 400, 404, 412, 415, 503}, StatusNotes: map[int]string{503: unpublished}},
			{Method: "DELETE", Path: "/v1/webhooks/:id", Access: api.Admin, Tag: tag, OperationID: "deleteWebhook",
				Summary: "Delete an endpoint with its delivery records; deliveries to it stop", Handler: a.deleteWebhook, Response: "Webhook",
				Statuses: []int{200, 400, 404, 503}, StatusNotes: map[int]string{503: "Deleted, but the engines could not be told yet"}},
			{Method: "POST", Path: "/v1/webhooks/:id/rotate-secret", Access: api.Admin, Tag: tag, OperationID: "rotateWebhookSecret",
				Summary: "Give an endpoint a new signing secret; the old one keeps signing too for the overlap", Handler: a.rotateSecret,
				Response: "WebhookWithSecret", Headers: []string{"ETag"}, Params: []api.Param{{Name: "overlap", In: "query",
					Description: "How long the old secret keeps signing (both signatures are sent), 0s to 168h", Schema: map[string]any{"type": "string", "default": "24h"}, Example: "24h"}},
				Statuses: []int{200, 400, 404, 503}, StatusNotes: map[int]string{503: unpublished}},
			{Method: "POST", Path: "/v1/webhooks/:id/test", Access: api.Admin, Tag: tag, OperationID: "testWebhook",
				Summary: "Send the endpoint a webhook.test delivery now and answer its record (succeeded, or failed with the reason)", Handler: a.testWebhook,
				Response: "Delivery", Statuses: []int{200, 400, 404}},
			{Method: "GET", Path: "/v1/webhooks/:id/deliveries", Access: api.Admin, Tag: tag, OperationID: "listWebhookDeliveries",
				Summary: "An endpoint's deliveries, oldest first: status, attempts, last response code and latency, next attempt", Handler: a.listDeliveries,
				Response: "DeliveryList", Params: append([]api.Param{{Name: "status", In: "query", Description: "Only deliveries in this status",
					Schema: map[string]any{"type": "string", "enum": deliveryStatuses}}}, api.Pagination...),
				Statuses: []int{200, 400, 404}, StatusNotes: map[int]string{400: "A bad status, limit or cursor"}},
			{Method: "GET", Path: "/v1/webhooks/:id/deliveries/:delivery", Access: api.Admin, Tag: tag, OperationID: "getWebhookDelivery",
				Summary: "One delivery (its id is the notice id, sent as webhook-id)", Handler: a.getDelivery, Response: "Delivery",
				Statuses: []int{200, 400, 404}},
			{Method: "POST", Path: "/v1/webhooks/:id/deliveries/:delivery/retry", Access: api.Admin, Tag: tag, OperationID: "retryWebhookDelivery",
				Summary: "Send a failed delivery again, with a new retry schedule (same webhook-id and body)", Handler: a.retryDelivery,
				Response: "Delivery", Statuses: []int{202, 400, 404, 409, 503}, StatusNotes: map[int]string{
					202: "Queued: the delivery is pending until an engine attempts it",
					409: "The delivery has not failed, is a test ping, or its notice is no longer in its stream",
					503: "The retry could not be queued; the delivery stays failed"}},
		},
	}
}

// webhookSchemas are the bodies of the webhook routes.
func webhookSchemas() map[string]any {
	list := func(desc string, enum []string) fiber.Map {
		items := fiber.Map{"type": "string"}
		if enum != nil {
			items["enum"] = enum
		}
		return fiber.Map{"type": "array", "items": items, "description": desc}
	}
	filter := obj(nil, fiber.Map{
		"notices":      list("Notice kinds to receive; absent or empty: all", persistence.NoticeKinds),
		"reward_types": list("Only rewards of these types (absent: all)", rewardTypes),
		"campaigns":    list("Only rewards of these campaigns (absent: all)", nil),
	})
	filter["description"] = "Which notices the endpoint receives"
	hook := fiber.Map{
		"id": str(), "url": str(), "description": str(), "filter": ref("WebhookFilter"), "enabled": boolean,
		"disabled_reason":       fiber.Map{"type": "string", "description": "Why the engine disabled it (the endpoint answered 410 Gone)"},
		"previous_secret_until": fiber.Map{"type": "string", "format": "date-time", "description": "Until when the previous secret signs too (after a rotation)"},
		"version":               integer, "created_by": str(), "created_at": dateTime, "updated_at": dateTime,
	}
	withSecret := fiber.Map{"secret": fiber.Map{"type": "string", "description": "The signing secret, whsec_ and base64 of the HMAC key; shown only here"}}
	for k, v := range hook {
		withSecret[k] = v
	}
	required := []string{"id", "url", "description", "filter", "enabled", "version", "created_by", "created_at", "updated_at"}
	return map[string]any{
		"WebhookFilter": filter,
		"WebhookCreate": obj([]string{"url"}, fiber.Map{
			"url":         fiber.Map{"type": "string", "format": "uri", "maxLength": 2048, "description": "Absolute http(s) URL; not loopback, link-local or private unless CAMPAIGN_WEBHOOK_ALLOW_PRIVATE=true"},
			"description": fiber.Map{"type": "string", "maxLength": maxWebhookDescription},
			"filter":      ref("WebhookFilter"),
			"enabled":     fiber.Map{"type": "boolean", "default": true},
		}),
		"WebhookPatch": obj(nil, fiber.Map{
			"url": fiber.Map{"type": "string", "format": "uri", "maxLength": 2048}, "description": fiber.Map{"type": "string", "maxLength": maxWebhookDescription},
			"filter": ref("WebhookFilter"), "enabled": boolean,
		}),
		"Webhook":           obj(required, hook),
		"WebhookWithSecret": obj(append(required, "secret"), withSecret),
		"WebhookList":       listOf("webhooks", "Webhook"),
		"Delivery": obj([]string{"id", "webhook_id", "type", "status", "attempts", "created_at", "updated_at"}, fiber.Map{
			"id":              fiber.Map{"type": "string", "description": "The notice id (reward id, loyalty notice id, or ping_…), sent as webhook-id"},
			"webhook_id":      str(),
			"type":            fiber.Map{"type": "string", "description": "The body's type: reward.granted, loyalty.tier_changed, loyalty.points_expired, loyalty.coupon_redeemed, webhook.test"},
			"status":          fiber.Map{"type": "string", "enum": deliveryStatuses},
			"attempts":        integer,
			"last_status":     fiber.Map{"type": "integer", "description": "The last attempt's HTTP status; absent when it got no answer"},
			"last_error":      str(),
			"last_latency_ms": number,
			"last_attempt_at": dateTime,
			"next_attempt_at": fiber.Map{"type": "string", "format": "date-time", "description": "When a pending delivery is attempted next"},
			"subject":         str(), "stream": str(), "stream_seq": integer,
			"created_at": dateTime, "updated_at": dateTime,
		}),
		"DeliveryList": listOf("deliveries", "Delivery"),
	}
}

// webhookExamples are example bodies. The create example has no URL: /docs must hold
// none (its page links nothing outside).
func webhookExamples() map[string]any {
	return map[string]any{
		"WebhookFilter": fiber.Map{"notices": []string{"reward", "tier_changed"}, "reward_types": []string{"coupon", "free_shipping"}},
		"WebhookPatch":  fiber.Map{"enabled": true},
	}
}
