package console

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/ingress/api"
)

// newApp mounts the console's routes with an error handler that sends problems with
// their status, as package ingress's does.
func newApp(t *testing.T) *fiber.App {
	t.Helper()
	app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		var p *api.Problem
		if errors.As(err, &p) {
			return c.Status(p.Status).JSON(p)
		}
		return c.SendStatus(fiber.StatusInternalServerError)
	}})
	for _, r := range Routes().Routes {
		app.Add(r.Method, r.Path, r.Handler)
	}
	return app
}

func get(t *testing.T, app *fiber.App, target string, header ...string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := app.Test(req, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestEveryAnswerCarriesTheStrictCSPAndNosniff(t *testing.T) {
	t.Parallel()
	app := newApp(t)
	tests := []struct {
		name, target string
		status       int
		ctype        string
	}{
		{"the page", "/console", 200, "text/html; charset=utf-8"},
		{"the page with a slash", "/console/", 200, "text/html; charset=utf-8"},
		{"a module", "/console/js/app.js", 200, "text/javascript; charset=utf-8"},
		{"a page module", "/console/js/pages/editor.js", 200, "text/javascript; charset=utf-8"},
		{"the stylesheet", "/console/console.css", 200, "text/css; charset=utf-8"},
		{"the icon", "/console/favicon.svg", 200, "image/svg+xml"},
		{"a missing file", "/console/js/nope.js", 404, ""},
		{"a path out of the assets", "/console/../go.mod", 404, ""},
		{"an escaped path out of the assets", "/console/%2e%2e/console.go", 404, ""},
		{"the embed directory's name", "/console/assets/index.html", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := get(t, app, tt.target)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("Content-Security-Policy"); got != CSP {
				t.Errorf("CSP = %q, want %q", got, CSP)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q", got)
			}
			if tt.ctype != "" && resp.Header.Get("Content-Type") != tt.ctype {
				t.Errorf("Content-Type = %q, want %q", resp.Header.Get("Content-Type"), tt.ctype)
			}
		})
	}
}

func TestCSPForbidsInlineScriptStyleAndOtherOrigins(t *testing.T) {
	t.Parallel()
	directives := map[string]string{}
	for _, d := range strings.Split(CSP, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	want := map[string]string{
		"default-src": "'self'", "script-src": "'self'", "style-src": "'self'", "img-src": "'self' data:",
		"connect-src": "'self'", "frame-ancestors": "'none'", "base-uri": "'none'", "form-action": "'self'",
	}
	for k, v := range want {
		if directives[k] != v {
			t.Errorf("%s = %q, want %q", k, directives[k], v)
		}
	}
	if strings.Contains(CSP, "unsafe") || strings.Contains(CSP, "http") {
		t.Errorf("CSP %q allows unsafe sources or another origin", CSP)
	}
}

func TestAssetsRevalidateWithTheirETag(t *testing.T) {
	t.Parallel()
	app := newApp(t)
	resp, body := get(t, app, "/console/js/api.js")
	etag := resp.Header.Get("ETag")
	if etag == "" || resp.Header.Get("Cache-Control") != "no-cache" || body == "" {
		t.Fatalf("ETag %q, Cache-Control %q, %d bytes", etag, resp.Header.Get("Cache-Control"), len(body))
	}
	resp, body = get(t, app, "/console/js/api.js", "If-None-Match", etag)
	if resp.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("revalidation: status %d with %d bytes, want 304 and none", resp.StatusCode, len(body))
	}
	if resp, _ := get(t, app, "/console/js/api.js", "If-None-Match", `"stale"`); resp.StatusCode != http.StatusOK {
		t.Errorf("a stale ETag: status %d, want 200", resp.StatusCode)
	}
}

var (
	comments = regexp.MustCompile(`(?s)/\*.*?\*/|(?m)^\s*//[^\n]*|<!--.*?-->`)
	importRe = regexp.MustCompile(`(?m)^\s*(?:import|export)\s[^'"]*from\s+'([^']+)'`)
	assetRe  = regexp.MustCompile(`(?:src|href)="(/console/[^"]+)"`)
)

// TestEveryReferenceResolvesToAnEmbeddedFile proves the page loads whole from the binary:
// every file index.html names and every module a module imports is embedded.
func TestEveryReferenceResolvesToAnEmbeddedFile(t *testing.T) {
	t.Parallel()
	refs := 0
	for _, m := range assetRe.FindAllStringSubmatch(string(site["index.html"].body), -1) {
		refs++
		if _, ok := site[strings.TrimPrefix(m[1], Prefix+"/")]; !ok {
			t.Errorf("index.html refers to %s, which is not embedded", m[1])
		}
	}
	for name, f := range site {
		if path.Ext(name) != ".js" {
			continue
		}
		for _, m := range importRe.FindAllStringSubmatch(string(f.body), -1) {
			refs++
			if !strings.HasPrefix(m[1], ".") {
				t.Errorf("%s imports %q: only relative imports of embedded modules are allowed", name, m[1])
				continue
			}
			if _, ok := site[path.Join(path.Dir(name), m[1])]; !ok {
				t.Errorf("%s imports %s, which is not embedded", name, m[1])
			}
		}
	}
	if refs < 10 {
		t.Fatalf("only %d references found: the patterns no longer match the sources", refs)
	}
}

// TestSourcesKeepTheSecurityRules checks what the CSP cannot: no inline handlers or
// styles in the page, no HTML built from strings, no token in storage, nothing loaded
// from elsewhere.
func TestSourcesKeepTheSecurityRules(t *testing.T) {
	t.Parallel()
	forbidden := []struct{ what, pattern string }{
		{"HTML from strings", `innerHTML|outerHTML|insertAdjacentHTML|document\.write`},
		{"eval", `\beval\(|new Function`},
		{"browser storage (the token stays in memory)", `localStorage|sessionStorage|document\.cookie|indexedDB`},
		{"an inline style", `\bstyle="|setAttribute\('style'`},
	}
	for name, f := range site {
		ext := path.Ext(name)
		if ext != ".js" && ext != ".html" {
			continue
		}
		src := comments.ReplaceAllString(string(f.body), "") // the rules may be named in prose
		for _, fb := range forbidden {
			if loc := regexp.MustCompile(fb.pattern).FindStringIndex(src); loc != nil {
				t.Errorf("%s: %s: %q", name, fb.what, src[loc[0]:min(loc[1]+30, len(src))])
			}
		}
	}
	for name, f := range site {
		for _, u := range regexp.MustCompile(`https?://[^\s'"<>]+`).FindAllString(string(f.body), -1) {
			if u != "http://www.w3.org/2000/svg" { // the SVG namespace, not a fetch
				t.Errorf("%s names another origin: %s", name, u)
			}
		}
	}
	html := string(site["index.html"].body)
	if regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`).MatchString(html) || regexp.MustCompile(`\son[a-z]+="`).MatchString(html) {
		t.Error("index.html has an inline script or event handler")
	}
	if regexp.MustCompile(`<style`).MatchString(html) {
		t.Error("index.html has an inline style element")
	}
}

func TestLoadRefusesAssetsOfUnknownType(t *testing.T) {
	t.Parallel()
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	if _, err := load(fstest.MapFS{"assets/index.html": file("x"), "assets/data.bin": file("y")}); err == nil {
		t.Error("an asset of an unknown type was accepted")
	}
	if _, err := load(fstest.MapFS{"assets/app.js": file("x")}); err == nil {
		t.Error("assets without index.html were accepted")
	}
	if _, err := load(fstest.MapFS{"assets/index.html": file("x")}); err != nil {
		t.Errorf("a minimal site: %v", err)
	}
}
