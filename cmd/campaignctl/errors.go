package main

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Exit codes of campaignctl.
const (
	exitOK           = 0 // success
	exitError        = 1 // the server refused or failed, or another error
	exitUsage        = 2 // bad flags, arguments or input the CLI checks itself
	exitUnauthorized = 3 // not logged in, session expired, or the server answered 401
	exitNotFound     = 4 // the server answered 404
)

// cliError carries an exit code with a message for the user.
type cliError struct {
	code int
	err  error
}

func (e *cliError) Error() string { return e.err.Error() }
func (e *cliError) Unwrap() error { return e.err }

// usageErrorf is a usage error (exit 2).
func usageErrorf(format string, args ...any) error {
	return &cliError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// exitStatus ends a command with code and nothing more on stderr: the command has said
// what it had to (campaigns diff exits 1 when it printed differences).
type exitStatus struct{ code int }

func (e *exitStatus) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// notLoggedInError says there is no usable token for a server (exit 3).
type notLoggedInError struct {
	server string
	reason string // e.g. "not logged in to http://…"
}

func (e *notLoggedInError) Error() string {
	return fmt.Sprintf("%s; run: campaignctl login --server %s --username <name>", e.reason, e.server)
}

// problem is an RFC 9457 problem details body as campaignd sends it.
type problem struct {
	Type   string         `json:"type"`
	Title  string         `json:"title"`
	Status int            `json:"status"`
	Detail string         `json:"detail"`
	Field  string         `json:"field"`
	Errors []problemIssue `json:"errors"`
}

// problemIssue is one entry of a problem's errors array; Line and Column are 1-based,
// and Snippet is the source line with a caret under the column.
type problemIssue struct {
	Field   string `json:"field"`
	Message string `json:"message"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Snippet string `json:"snippet"`
}

// apiError is a non-2xx answer from the server.
type apiError struct {
	method, path string
	status       int
	problem      problem // zero when the body was not problem details
	body         string  // the raw body when it was not problem details
}

// Error renders the problem: title, detail, field, then one line per issue with
// field:line:column when the server gave them, each followed by its snippet (the source
// line and a caret under the column), indented.
func (e *apiError) Error() string {
	var b strings.Builder
	title := e.problem.Title
	if title == "" {
		title = http.StatusText(e.status)
	}
	fmt.Fprintf(&b, "%s (%d)", title, e.status)
	switch {
	case e.problem.Detail != "" && !e.detailRepeatsIssues():
		fmt.Fprintf(&b, ": %s", e.problem.Detail)
	case e.body != "":
		fmt.Fprintf(&b, ": %s", strings.TrimSpace(e.body))
	}
	if e.problem.Field != "" && len(e.problem.Errors) == 0 {
		fmt.Fprintf(&b, "\n  field: %s", e.problem.Field)
	}
	for _, is := range e.problem.Errors {
		b.WriteString("\n  ")
		loc := is.Field
		if is.Line > 0 {
			if loc != "" {
				loc += ":"
			}
			loc += fmt.Sprintf("%d:%d", is.Line, is.Column)
		}
		if loc != "" {
			b.WriteString(loc + ": ")
		}
		b.WriteString(is.Message)
		if snippet := strings.TrimRight(is.Snippet, "\n"); snippet != "" {
			for _, line := range strings.Split(snippet, "\n") {
				b.WriteString("\n    " + line)
			}
		}
	}
	switch e.status {
	case http.StatusUnauthorized:
		b.WriteString("\n  log in again: campaignctl login --username <name>")
	case http.StatusForbidden:
		b.WriteString("\n  your role does not allow this")
	}
	return b.String()
}

// detailRepeatsIssues reports whether the detail only restates the errors entries, which
// are printed one per line anyway.
func (e *apiError) detailRepeatsIssues() bool {
	for _, is := range e.problem.Errors {
		if is.Message != "" && strings.Contains(e.problem.Detail, is.Message) {
			return true
		}
	}
	return false
}

// exitCode maps an error from a command to the process exit code.
func exitCode(err error) int {
	var ce *cliError
	var nl *notLoggedInError
	var ae *apiError
	var es *exitStatus
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &es):
		return es.code
	case errors.As(err, &nl):
		return exitUnauthorized
	case errors.As(err, &ae):
		switch ae.status {
		case http.StatusUnauthorized:
			return exitUnauthorized
		case http.StatusNotFound:
			return exitNotFound
		}
		return exitError
	case errors.As(err, &ce):
		return ce.code
	}
	return exitError
}
