package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// RequireJSON refuses a request whose Content-Type is not JSON (application/json or a
// +json type) with a 415 problem.
func RequireJSON(c *fiber.Ctx) error {
	mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || (mt != fiber.MIMEApplicationJSON && !strings.HasSuffix(mt, "+json")) {
		return Problemf(fiber.StatusUnsupportedMediaType, "the body must be JSON (Content-Type: application/json)")
	}
	return nil
}

// DecodeJSON decodes the request body into v strictly, the one decoder of every admin
// body: a JSON content type (else a 415 *Problem); then one JSON document whose strings
// are valid UTF-8 without NUL characters or lone surrogates, whose objects repeat no key,
// and whose keys are exactly the fields of the struct they decode into, nested at most
// MaxJSONDepth levels (see checkJSON); then encoding/json with unknown fields refused.
// Every refusal is a *event.FieldError naming the field (a path such as
// "reward.data.code") when there is one.
func DecodeJSON(c *fiber.Ctx, v any) error {
	if err := RequireJSON(c); err != nil {
		return err
	}
	body := c.Body()
	if err := checkJSON(body, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	return nil
}

// jsonError explains a decoding error, naming the field when there is one.
func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return &event.FieldError{Reason: "the body is empty; it must be a JSON object"}
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return &event.FieldError{Reason: "malformed JSON: " + err.Error()}
	case errors.As(err, &te):
		what := te.Field
		if what == "" {
			what = "the body"
		}
		return &event.FieldError{Field: te.Field, Reason: fmt.Sprintf("%s must be %s, not JSON %s", what, te.Type, te.Value)}
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name, _ := strconv.Unquote(rest)
		return &event.FieldError{Field: name, Reason: "unknown field"}
	}
	// A field's own UnmarshalJSON failed (e.g. reward.points): encoding/json does not say
	// which field; the message does.
	return &event.FieldError{Reason: "invalid JSON: " + msg}
}

// PathParam returns the path parameter name, URL-unescaped (Fiber hands over the raw
// segment, so ids holding '/', '%', spaces or any UTF-8 work). An empty, badly escaped,
// non-UTF-8 or NUL-holding value is a *event.FieldError naming the parameter.
func PathParam(c *fiber.Ctx, name string) (string, error) {
	v, err := url.PathUnescape(c.Params(name))
	if err != nil || v == "" || !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
		return "", &event.FieldError{Field: name, Reason: "path parameter " + name + " must be a non-empty URL-escaped UTF-8 string without NUL"}
	}
	return strings.Clone(v), nil
}

// Query returns the query parameter name ("" when absent), URL-unescaped by Fiber. A
// value that is not valid UTF-8 or holds NUL is a *event.FieldError naming the parameter:
// such a value can match nothing stored, and Postgres refuses it as text.
func Query(c *fiber.Ctx, name string) (string, error) {
	v := c.Query(name)
	if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
		return "", &event.FieldError{Field: name, Reason: "query parameter " + name + " must be valid UTF-8 without NUL"}
	}
	return strings.Clone(v), nil
}

// Page reads limit (default 100, 1..1000) and an integer cursor (a previous page's
// next_cursor) from the query; a bad value is a *event.FieldError.
func Page(c *fiber.Ctx) (limit int, after int64, err error) {
	limit = 100
	if v := c.Query("limit"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 || n > 1000 {
			return 0, 0, &event.FieldError{Field: "limit", Reason: "must be an integer from 1 to 1000"}
		}
		limit = n
	}
	if v := c.Query("cursor"); v != "" {
		n, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil || n < 0 {
			return 0, 0, &event.FieldError{Field: "cursor", Reason: "must be a next_cursor value from a previous page"}
		}
		after = n
	}
	return limit, after, nil
}

// IfMatchVersion reads If-Match: a version, quoted or bare, or "*". 0 means absent or
// any; a bad value (or 0) is a *event.FieldError naming If-Match.
func IfMatchVersion(c *fiber.Ctx) (int64, error) {
	v, given, err := IfMatchGiven(c)
	if err == nil && given && v < 1 {
		err = badIfMatch()
	}
	if err != nil {
		return 0, err
	}
	return v, nil
}

// IfMatchGiven reads If-Match like IfMatchVersion, but also accepts version 0: the ETag
// of a resource that has only its default value and was never stored. given is false
// when the header is absent or "*".
func IfMatchGiven(c *fiber.Ctx) (version int64, given bool, err error) {
	h := strings.TrimSpace(c.Get(fiber.HeaderIfMatch))
	if h == "" || h == "*" {
		return 0, false, nil
	}
	v, err := strconv.ParseInt(strings.Trim(h, `"`), 10, 64)
	if err != nil || v < 0 {
		return 0, false, badIfMatch()
	}
	return v, true, nil
}

// badIfMatch is the problem of an If-Match that is not a version.
func badIfMatch() error {
	return &event.FieldError{Field: "If-Match", Reason: `must be a version, e.g. If-Match: "3" or If-Match: 3`}
}

// ETag is the ETag of a version: the number, quoted.
func ETag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

const correlationKey = "correlation_id"

// SetCorrelationID records the request's correlation id (done once per request by the
// edge's middleware).
func SetCorrelationID(c *fiber.Ctx, id string) { c.Locals(correlationKey, id) }

// CorrelationID is the request's correlation id (from X-Request-ID or generated).
func CorrelationID(c *fiber.Ctx) string {
	v, _ := c.Locals(correlationKey).(string)
	return v
}

// Timeout is the default bound on one request's work with the database or NATS.
const Timeout = 10 * time.Second

// Ctx is the request's context bounded by Timeout.
func Ctx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), Timeout)
}
