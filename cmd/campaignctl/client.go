package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// requestTimeout bounds one HTTP request when the caller's context has no deadline.
const requestTimeout = 30 * time.Second

// maxBody bounds how much of an answer the client reads.
const maxBody = 32 << 20

// client calls campaignd's admin API. It is not safe for concurrent use by design: one
// command runs one request at a time.
type client struct {
	base  string // server URL without a trailing slash
	token string // bearer token; empty for public routes
	http  *http.Client
	agent string
}

// newClient returns a client for base with no token.
func newClient(base string) *client {
	return &client{base: base, http: &http.Client{Timeout: requestTimeout}, agent: "campaignctl"}
}

// escape URL-escapes one path segment, so ids with '/', '%', spaces or any UTF-8 work.
func escape(seg string) string { return url.PathEscape(seg) }

// do sends a JSON request (body nil for none) with extra headers and decodes a 2xx answer
// into out (nil to discard). A non-2xx answer is an *apiError; a transport failure says
// which server could not be reached. It returns the answer's headers.
func (c *client) do(ctx context.Context, method, path string, body any, hdr http.Header, out any) (http.Header, error) {
	if body == nil {
		return c.send(ctx, method, path, "", nil, hdr, out)
	}
	data, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return c.send(ctx, method, path, "application/json", data, hdr, out)
}

// send is do with a body already encoded as contentType ("" and nil for none).
func (c *client) send(ctx context.Context, method, path, contentType string, body []byte, hdr http.Header, out any) (http.Header, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", method, path, err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("User-Agent", c.agent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ae := &apiError{method: method, path: path, status: resp.StatusCode}
		if json.Unmarshal(data, &ae.problem) != nil || (ae.problem.Title == "" && ae.problem.Detail == "") {
			ae.problem = problem{}
			ae.body = firstLine(string(data), 300)
		}
		return resp.Header, ae
	}
	if out != nil && len(data) > 0 {
		if raw, ok := out.(*json.RawMessage); ok {
			*raw = append((*raw)[:0], data...)
			return resp.Header, nil
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(out); err != nil {
			return resp.Header, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return resp.Header, nil
}

// firstLine shortens s to its first line of at most n bytes.
func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// normalizeServer checks a server URL and writes it one way: scheme and host in lower
// case, no default port (80 for http, 443 for https), no trailing slash.
func normalizeServer(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usageErrorf("--server must be an http:// or https:// URL, got %q", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", usageErrorf("--server must not hold credentials, a query or a fragment, got %q", raw)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	u.Host = joinHost(host, port)
	return strings.TrimRight(u.String(), "/"), nil
}

// joinHost writes host (an IPv6 address in brackets) with port when there is one.
func joinHost(host, port string) string {
	if port != "" {
		return net.JoinHostPort(host, port)
	}
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

// loopbackNames are the names of this machine's loopback host, taken as one server.
var loopbackNames = map[string]bool{"localhost": true, "localhost.": true, "127.0.0.1": true, "::1": true}

// cacheKey is the token cache's key of a server: its normalised URL with localhost,
// 127.0.0.1 and ::1 written 127.0.0.1, so a login to http://localhost:8080 serves
// http://127.0.0.1:8080 too. A URL that does not parse is its own key.
func cacheKey(server string) string {
	s, err := normalizeServer(server)
	if err != nil {
		return server
	}
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	if loopbackNames[u.Hostname()] {
		u.Host = joinHost("127.0.0.1", u.Port())
	}
	return u.String()
}
