package api

import "net/http"

// Problem is an RFC 9457 problem details body. As an error it travels through handlers
// to the one error handler, which sends it as it is.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Field names the request field at fault, for validation errors.
	Field string `json:"field,omitempty"`
	// Reason is a machine-readable reason where a route has several for one status
	// family, e.g. a coupon code that is unknown, other_user, expired or redeemed.
	Reason string `json:"reason,omitempty"`
	// Errors lists individual problems (ProblemItem), e.g. every invalid field of a
	// campaign, or rule compile errors with line and column.
	Errors []ProblemItem `json:"errors,omitempty"`
	// RetryAfter, in seconds, is also sent as the Retry-After header.
	RetryAfter int `json:"-"`
}

// ProblemItem is one entry of a problem's errors array. Line and Column are 1-based and
// set for problems inside an expression; Snippet then shows the source line with a caret
// under the column.
type ProblemItem struct {
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Snippet string `json:"snippet,omitempty"`
}

// Error returns "<title>: <detail>".
func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

// Problemf is a problem with the standard title for status.
func Problemf(status int, detail string) *Problem {
	return &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail}
}

// Unavailable is a 503 problem asking the client to retry after a second.
func Unavailable(detail string) *Problem {
	p := Problemf(http.StatusServiceUnavailable, detail)
	p.RetryAfter = 1
	return p
}

// AboutError names what a store sentinel (not found, conflict, version mismatch) was
// about, so the problem can say "campaign spring not found". Create it with About.
type AboutError struct {
	What string
	Err  error
}

// About wraps err with what it concerns, e.g. About(err, "campaign "+id); nil stays nil.
func About(err error, what string) error {
	if err == nil {
		return nil
	}
	return &AboutError{What: what, Err: err}
}

// Error returns "<what>: <err>".
func (e *AboutError) Error() string { return e.What + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *AboutError) Unwrap() error { return e.Err }
