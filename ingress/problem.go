package ingress

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"
)

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Field names the request field at fault, for validation errors.
	Field string `json:"field,omitempty"`
	// Errors lists individual problems, e.g. rule compile errors with line and column.
	Errors []any `json:"errors,omitempty"`
	// RetryAfter, in seconds, is also sent as the Retry-After header.
	RetryAfter int `json:"-"`
}

// Error lets a *Problem travel as an error through Fiber handlers.
func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

// problemf builds a problem with the standard title for status.
func problemf(status int, detail string) *Problem {
	return &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail}
}

// errorHandler is the one place errors become problem details. Errors that are not a
// *Problem or a *fiber.Error are internal: the client sees a generic message and the log
// has the full error.
func errorHandler(logger *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		var p *Problem
		var fe *fiber.Error
		switch {
		case errors.As(err, &p):
		case errors.As(err, &fe):
			p = problemf(fe.Code, fe.Message)
		default:
			logger.Error("internal error", "method", c.Method(), "path", c.Path(),
				"correlation_id", correlationID(c), "err", err)
			p = problemf(fiber.StatusInternalServerError, "internal error; see the server log")
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
