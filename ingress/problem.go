package ingress

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/cel"
	"github.com/campaignmanager/campaignmanager/ingress/api"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/event"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// errorHandler is where errors become problem details (problemFor), for every route.
func errorHandler(logger *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		p := problemFor(err)
		if p == nil {
			logger.Error("internal error", "method", c.Method(), "path", c.Path(),
				"correlation_id", api.CorrelationID(c), "err", err)
			p = api.Problemf(fiber.StatusInternalServerError, "internal error; see the server log")
		}
		if p.RetryAfter > 0 {
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(p.RetryAfter))
		}
		c.Status(p.Status)
		c.Set(fiber.HeaderContentType, "application/problem+json")
		body, jerr := c.App().Config().JSONEncoder(p)
		if jerr != nil {
			return jerr
		}
		return c.Send(body)
	}
}

// problemFor is the one mapping of errors to RFC 9457 problems. A *api.Problem is sent as
// it is; field errors (one or joined) are 400 naming the first field and listing every
// one; event.ErrTooLarge is 413; a rule compile error 400 with positions; store and DLQ
// sentinels 404, 409 (exists, the last admin), 412 or 422 (saying what they were about,
// see api.About); a coupon code that cannot be used says why (see couponProblem).
// Anything else is internal: nil, and the caller logs it.
func problemFor(err error) *api.Problem {
	var p *api.Problem
	var fe *fiber.Error
	var ce *cel.CompileError
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &fe):
		return api.Problemf(fe.Code, fe.Message)
	case errors.Is(err, event.ErrTooLarge):
		return api.Problemf(fiber.StatusRequestEntityTooLarge, "an event may be at most 64 KiB")
	case errors.As(err, &ce):
		return compileProblem(ce)
	}
	if fields := event.Fields(err); len(fields) > 0 {
		return fieldsProblem(fields)
	}
	what := "the resource"
	var about *api.AboutError
	if errors.As(err, &about) {
		what = about.What
	}
	if p := couponProblem(err, what); p != nil {
		return p
	}
	var inUse *persistence.PoolInUseError
	var unknownPool *persistence.UnknownPoolError
	switch {
	case errors.As(err, &inUse):
		return api.Problemf(fiber.StatusConflict, what+" "+inUse.Error())
	case errors.As(err, &unknownPool):
		p := api.Problemf(fiber.StatusBadRequest, "reward.pool: "+unknownPool.Error()+"; create it first (POST /v1/pools)")
		p.Field = "reward.pool"
		return p
	case errors.Is(err, persistence.ErrNotFound), errors.Is(err, bus.ErrDLQNotFound):
		return api.Problemf(fiber.StatusNotFound, what+" not found")
	case errors.Is(err, persistence.ErrConflict):
		return api.Problemf(fiber.StatusConflict, what+" already exists")
	case errors.Is(err, persistence.ErrLastAdmin):
		return api.Problemf(fiber.StatusConflict, what+" is the last enabled admin with the admin role; enable or create another admin first, so that someone can still manage admins")
	case errors.Is(err, persistence.ErrVersionMismatch):
		return api.Problemf(fiber.StatusPreconditionFailed, what+" has changed; its version does not match If-Match")
	case errors.Is(err, bus.ErrDLQNotReplayable):
		return api.Problemf(fiber.StatusUnprocessableEntity, what+" does not name its original events subject; it cannot be replayed")
	case errors.Is(err, bus.ErrReplayDuplicate):
		return api.Problemf(fiber.StatusConflict, what+": its event id is still inside JetStream's duplicate window, so the replay was dropped; the entry is kept, replay it once the window has passed")
	}
	return nil
}

// fieldsProblem is the 400 of one or more field errors.
func fieldsProblem(fields []*event.FieldError) *api.Problem {
	msgs := make([]string, len(fields))
	items := make([]api.ProblemItem, len(fields))
	for i, f := range fields {
		msgs[i] = f.Error()
		items[i] = api.ProblemItem{Field: f.Field, Message: f.Reason, Line: f.Line, Column: f.Column}
	}
	p := api.Problemf(http.StatusBadRequest, strings.Join(msgs, "; "))
	p.Field = fields[0].Field
	if len(fields) > 1 || fields[0].Line > 0 {
		p.Errors = items // one plain field problem is said by field and detail alone
	}
	return p
}

// compileProblem is the 400 of a rule or points expression that does not compile.
func compileProblem(ce *cel.CompileError) *api.Problem {
	p := api.Problemf(fiber.StatusBadRequest, ce.Error())
	p.Field = ce.Field
	for _, is := range ce.Issues {
		p.Errors = append(p.Errors, api.ProblemItem{Field: ce.Field, Message: is.Message, Line: is.Line, Column: is.Column, Snippet: is.Snippet})
	}
	return p
}

// couponProblem is the problem of a coupon code a storefront cannot use, with the reason
// in reason: unknown (404), other_user (403), expired (410), redeemed (409, another
// order); nil for other errors.
func couponProblem(err error, what string) *api.Problem {
	var p *api.Problem
	switch {
	case errors.Is(err, persistence.ErrCouponUnknown):
		p = api.Problemf(fiber.StatusNotFound, what+" is unknown: no code of that name was issued")
		p.Reason = "unknown"
	case errors.Is(err, persistence.ErrCouponOtherUser):
		p = api.Problemf(fiber.StatusForbidden, what+" was issued to another user")
		p.Reason = "other_user"
	case errors.Is(err, persistence.ErrCouponExpired):
		p = api.Problemf(fiber.StatusGone, what+" has expired")
		p.Reason = "expired"
	case errors.Is(err, persistence.ErrCouponRedeemed):
		p = api.Problemf(fiber.StatusConflict, what+" was redeemed already, for another order")
		p.Reason = "redeemed"
	}
	return p
}
