package main

import (
	"errors"
	"fmt"
	"testing"
)

func TestAPIErrorShowsTitleDetailAndLineColumn(t *testing.T) {
	cases := []struct {
		name string
		err  *apiError
		want string
	}{
		{
			name: "rule issues with line and column",
			err: &apiError{status: 400, problem: problem{Title: "Bad Request", Status: 400,
				Detail: "rule: 1:5: undeclared reference to 'x'", Field: "rule",
				Errors: []problemIssue{{Field: "rule", Message: "undeclared reference to 'x'", Line: 1, Column: 5}, {Message: "second", Line: 3, Column: 2}}}},
			want: "Bad Request (400)\n  rule:1:5: undeclared reference to 'x'\n  3:2: second",
		},
		{
			name: "field problem",
			err:  &apiError{status: 400, problem: problem{Title: "Bad Request", Detail: "name must hold 1 to 200 bytes", Field: "name"}},
			want: "Bad Request (400): name must hold 1 to 200 bytes\n  field: name",
		},
		{
			name: "not problem details",
			err:  &apiError{status: 502, body: "<html>bad gateway</html>"},
			want: "Bad Gateway (502): <html>bad gateway</html>",
		},
		{
			name: "unauthorized says how to log in",
			err:  &apiError{status: 401, problem: problem{Title: "Unauthorized", Detail: "token expired"}},
			want: "Unauthorized (401): token expired\n  log in again: campaignctl login --username <name>",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestExitCodes(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, exitOK},
		{"401", &apiError{status: 401}, exitUnauthorized},
		{"404 wrapped", fmt.Errorf("campaign x: %w", &apiError{status: 404}), exitNotFound},
		{"404 in cliError", &cliError{code: exitError, err: fmt.Errorf("x: %w", &apiError{status: 404})}, exitNotFound},
		{"409", &apiError{status: 409}, exitError},
		{"500", &apiError{status: 500}, exitError},
		{"not logged in", &notLoggedInError{server: "http://x", reason: "not logged in to http://x"}, exitUnauthorized},
		{"usage", usageErrorf("bad"), exitUsage},
		{"plain", errors.New("boom"), exitError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := exitCode(tc.err); got != tc.want {
				t.Errorf("exitCode = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestNormalizeServerKeysOneServerOnce(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", true},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080", true},
		{"HTTPS://Example.COM/base/", "https://example.com/base", true},
		{"ftp://x", "", false},
		{"127.0.0.1:8080", "", false},
		{"http://x/?a=b", "", false},
	}
	for _, tc := range cases {
		got, err := normalizeServer(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("normalizeServer(%q) = %q, %v; want %q ok=%t", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && exitCode(err) != exitUsage {
			t.Errorf("normalizeServer(%q): exit code %d, want 2", tc.in, exitCode(err))
		}
	}
}
