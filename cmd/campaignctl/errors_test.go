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
			name: "a rule issue shows its snippet under it",
			err: &apiError{status: 400, problem: problem{Title: "Bad Request", Status: 400, Detail: "rule: 2:3: undeclared reference to 'usr'",
				Errors: []problemIssue{{Field: "rule", Message: "undeclared reference to 'usr'", Line: 2, Column: 3, Snippet: "  usr.tier == \"gold\"\n  ^"}}}},
			want: "Bad Request (400)\n  rule:2:3: undeclared reference to 'usr'\n      usr.tier == \"gold\"\n      ^",
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
		{"http://LOCALHOST:80/", "http://localhost", true},
		{"https://example.com:443", "https://example.com", true},
		{"http://example.com:443", "http://example.com:443", true},
		{"http://[::1]:8080/", "http://[::1]:8080", true},
		{"http://user:pw@x", "", false},
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

func TestCacheKeyTakesOneServerOnce(t *testing.T) {
	cases := []struct{ a, b string }{
		{"http://localhost:8080", "http://127.0.0.1:8080"},
		{"http://localhost:8080/", "http://127.0.0.1:8080"},
		{"http://[::1]:8080", "http://127.0.0.1:8080"},
		{"HTTP://LocalHost:8080", "http://127.0.0.1:8080/"},
		{"http://localhost", "http://127.0.0.1:80"},
		{"https://Example.com:443/x/", "https://example.com/x"},
	}
	for _, tc := range cases {
		if ka, kb := cacheKey(tc.a), cacheKey(tc.b); ka != kb {
			t.Errorf("cacheKey(%q) = %q, cacheKey(%q) = %q; want one key", tc.a, ka, tc.b, kb)
		}
	}
	different := [][2]string{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8081"},
		{"http://127.0.0.1:8080", "https://127.0.0.1:8080"},
		{"http://localhost:8080", "http://example.com:8080"},
		{"http://x/a", "http://x/b"},
	}
	for _, d := range different {
		if cacheKey(d[0]) == cacheKey(d[1]) {
			t.Errorf("%q and %q share the key %q", d[0], d[1], cacheKey(d[0]))
		}
	}
}
