package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/ingress/api"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/event"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// The storefront's coupon API (an ingest API key, like events): is a code valid for a
// user now, and redeem it for an order, exactly once.

// NoticeSink publishes a notice for downstream systems and waits for its
// acknowledgement (bus.NoticePublisher implements it).
type NoticeSink interface {
	PublishNotice(ctx context.Context, n bus.Notice) error
}

type couponCheck struct {
	UserID string `json:"user_id"`
}

type couponRedeem struct {
	UserID  string `json:"user_id"`
	OrderID string `json:"order_id"`
}

// couponValid is the answer of a code that is valid for the user now.
type couponValid struct {
	persistence.Coupon
	Valid bool `json:"valid"`
}

// couponRedeemed is the answer of a redeemed code; Repeated is true when the same order
// had redeemed it before (nothing changed).
type couponRedeemed struct {
	persistence.Coupon
	Status   string `json:"status"`
	Repeated bool   `json:"repeated"`
}

// couponCode reads the path's code in its stored form; a code that cannot exist is
// unknown (404), like one never issued.
func couponCode(c *fiber.Ctx) (string, error) {
	raw, err := api.PathParam(c, "code")
	if err != nil {
		return "", err
	}
	code, ok := NormalizeCode(raw)
	if !ok {
		return "", api.About(persistence.ErrCouponUnknown, "coupon "+strings.ToUpper(strings.TrimSpace(raw)))
	}
	return code, nil
}

// checkUserID is user_id's rule of events: 1 to 256 bytes, no NUL.
func checkUserID(id string) error {
	if id == "" || len(id) > 256 || strings.IndexByte(id, 0) >= 0 {
		return fieldError("user_id", "is required: 1 to 256 bytes of UTF-8 without NUL, the user the code was issued to")
	}
	return nil
}

// usable says why coupon cp cannot be used by userID now (a persistence sentinel
// wrapped with what it is about), or nil.
func usable(cp *persistence.Coupon, userID string, now time.Time) error {
	what := "coupon " + cp.Code
	switch {
	case cp.UserID != userID:
		return api.About(persistence.ErrCouponOtherUser, what)
	case cp.RedeemedAt != nil:
		return api.About(persistence.ErrCouponRedeemed, what)
	case cp.Expired(now):
		return api.About(persistence.ErrCouponExpired, what)
	}
	return nil
}

// validateCoupon answers whether the code is valid for user_id now: 200 with what it
// grants, else a problem with the reason (unknown, other_user, redeemed, expired).
func (a *API) validateCoupon(c *fiber.Ctx) error {
	code, err := couponCode(c)
	if err != nil {
		return err
	}
	var req couponCheck
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	if err := checkUserID(req.UserID); err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	cp, err := a.deps.Store.GetCoupon(ctx, code)
	if err != nil {
		return api.About(err, "coupon "+code)
	}
	if err := usable(&cp, req.UserID, time.Now()); err != nil {
		return err
	}
	return c.JSON(couponValid{Coupon: cp, Valid: true})
}

// redeemCoupon redeems the code for order_id of user_id, exactly once: of two redeems
// at the same moment one wins and the other is 409; the same order again is 200 with
// repeated true. A redemption is announced on LOYALTY (coupon_redeemed) before the
// answer; when that fails the answer is 503 and repeating the request (same order)
// announces it again.
func (a *API) redeemCoupon(c *fiber.Ctx) error {
	code, err := couponCode(c)
	if err != nil {
		return err
	}
	var req couponRedeem
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	if err := checkUserID(req.UserID); err != nil {
		return err
	}
	if req.OrderID == "" || len(req.OrderID) > 128 || strings.IndexFunc(req.OrderID, unicode.IsControl) >= 0 {
		return fieldError("order_id", "is required: 1 to 128 characters without control characters, the order the code pays for")
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	cp, fresh, err := a.deps.Store.RedeemCoupon(ctx, code, req.UserID, req.OrderID)
	if err != nil {
		return api.About(err, "coupon "+code)
	}
	if err := a.announceRedeemed(c, ctx, &cp); err != nil {
		return err
	}
	return c.JSON(couponRedeemed{Coupon: cp, Status: "redeemed", Repeated: !fresh})
}

// announceRedeemed publishes the coupon_redeemed notice of cp (deduplicated by code).
func (a *API) announceRedeemed(c *fiber.Ctx, ctx context.Context, cp *persistence.Coupon) error { //nolint:revive // fiber first, like every handler helper
	if a.deps.Notices == nil {
		return nil
	}
	body, err := json.Marshal(loyalty.CouponRedeemed{Type: "coupon_redeemed", UserID: cp.UserID, Code: cp.Code, PoolID: cp.PoolID,
		RewardID: cp.RewardID, CampaignID: cp.CampaignID, OrderID: cp.OrderID, RedeemedAt: *cp.RedeemedAt})
	if err != nil {
		return fmt.Errorf("encode coupon_redeemed: %w", err)
	}
	n := bus.CouponRedeemedNotice(event.Token(cp.UserID), cp.Code, api.CorrelationID(c), body)
	if err := a.deps.Notices.PublishNotice(ctx, n); err != nil {
		a.log.Warn("publish coupon_redeemed", "code", cp.Code, "user_id", cp.UserID, "correlation_id", api.CorrelationID(c), "err", err)
		return api.Unavailable("the code is redeemed, but its coupon_redeemed notice was not published; repeat the request with the same order_id")
	}
	return nil
}

// couponRoutes are the storefront's coupon checks and redemptions.
func (a *API) couponRoutes() api.Group {
	const tag = "Coupons"
	reasons := map[int]string{
		400: "A bad user_id or order_id",
		403: "The code was issued to another user (reason other_user)",
		404: "No such code was issued (reason unknown)",
		409: "The code was redeemed already, for another order (reason redeemed)",
		410: "The code has expired (reason expired)",
	}
	redeemNotes := map[int]string{200: "Redeemed, now or before by the same order (repeated true)",
		503: "Redeemed, but the coupon_redeemed notice was not published: repeat the request with the same order_id"}
	for k, v := range reasons {
		redeemNotes[k] = v
	}
	return api.Group{
		Tags: []api.Tag{{Name: tag, Description: "Storefront coupon codes, with an API key (`Authorization: ApiKey <key>` or `X-API-Key`): " +
			"is a code valid for a user now, and redeem it for an order exactly once. A problem's `reason` says why a code cannot be used: " +
			"`unknown`, `other_user`, `redeemed`, `expired`. Codes are case-insensitive."}},
		Routes: []api.Route{
			{Method: "POST", Path: "/v1/coupons/:code/validate", Access: api.APIKey, Tag: tag, OperationID: "validateCoupon",
				Summary: "Is the code valid for this user now? 200 with what it grants", Handler: a.validateCoupon,
				Request: "CouponCheck", Response: "CouponValid", Statuses: []int{200, 400, 403, 404, 409, 410, 415}, StatusNotes: reasons},
			{Method: "POST", Path: "/v1/coupons/:code/redeem", Access: api.APIKey, Tag: tag, OperationID: "redeemCoupon",
				Summary: "Redeem the code for an order, exactly once (idempotent on the order)",
				Description: "Of concurrent redeems of one code, one wins; the others get 409 (or 200 with `repeated` for the same order). " +
					"A redemption is published on the LOYALTY stream as `loyalty.coupon_redeemed.<user token>` (type `coupon_redeemed`) and shows in `GET /v1/users/{id}/coupons`.",
				Handler: a.redeemCoupon, Request: "CouponRedeem", Response: "CouponRedeemed",
				Statuses: []int{200, 400, 403, 404, 409, 410, 415, 503}, StatusNotes: redeemNotes},
		},
		Schemas: map[string]any{
			"CouponCheck": obj([]string{"user_id"}, fiber.Map{"user_id": fiber.Map{"type": "string", "minLength": 1, "maxLength": 256}}),
			"CouponRedeem": obj([]string{"user_id", "order_id"}, fiber.Map{
				"user_id":  fiber.Map{"type": "string", "minLength": 1, "maxLength": 256},
				"order_id": fiber.Map{"type": "string", "minLength": 1, "maxLength": 128, "description": "The idempotency key of the redemption"}}),
			"CouponValid": couponSchema(fiber.Map{"valid": boolean}),
			"CouponRedeemed": couponSchema(fiber.Map{"status": fiber.Map{"type": "string", "enum": []string{"redeemed"}},
				"repeated": fiber.Map{"type": "boolean", "description": "The same order had redeemed it before; nothing changed"}}),
		},
		Examples: map[string]any{
			"CouponCheck":  fiber.Map{"user_id": "alice"},
			"CouponRedeem": fiber.Map{"user_id": "alice", "order_id": "order-1002"},
		},
	}
}
