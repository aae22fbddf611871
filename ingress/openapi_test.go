package ingress

import (
	"context"
	"encoding/json"
	"go/build"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/oapi-codegen/oapi-codegen/v2/pkg/codegen"
	// The generated client's runtime, pinned in go.mod so the compile check below builds
	// it at a known version from the module cache.
	_ "github.com/oapi-codegen/runtime"

	"github.com/campaignmanager/campaignmanager/cel"
	"github.com/campaignmanager/campaignmanager/ingress/api"
)

// served fetches path from the server without validating the answer.
func served(t *testing.T, env *testEnv, path string) (int, map[string][]string, []byte) {
	t.Helper()
	resp, err := env.srv.App().Test(httptest.NewRequest("GET", path, nil), 10_000)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

var operationID = regexp.MustCompile(`^[a-z][A-Za-z0-9]+$`)

// TestOpenAPIDescribesEveryRoute proves /openapi.json covers the route table exactly:
// each route with a unique operationId, a declared tag, its access and security (an
// explicit empty one when public), its parameters, bodies and every status, and nothing
// that is not served.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, withWebhooks(t, false, nil))
	resp, doc := env.do(t, "GET", "/openapi.json", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v", doc["openapi"])
	}
	if servers, _ := doc["servers"].([]any); len(servers) == 0 {
		t.Error("no servers")
	}
	tags := map[string]bool{}
	for _, tg := range asSlice(doc["tags"]) {
		m := tg.(map[string]any)
		if m["description"] == "" {
			t.Errorf("tag %v has no description", m["name"])
		}
		tags[m["name"].(string)] = true
	}
	paths := doc["paths"].(map[string]any)
	described := 0
	for _, item := range paths {
		described += len(item.(map[string]any))
	}
	routes := env.srv.routes.Routes
	if described != len(routes) {
		t.Errorf("the document has %d operations, the route table %d routes", described, len(routes))
	}
	opIDs := map[string]string{}
	for _, r := range routes {
		name := r.Method + " " + r.Path
		p := openapiPath(r.Path)
		item, _ := paths[p].(map[string]any)
		op, _ := item[strings.ToLower(r.Method)].(map[string]any)
		if op == nil {
			t.Errorf("%s is not described (no paths[%q].%s)", name, p, strings.ToLower(r.Method))
			continue
		}
		if s, _ := op["summary"].(string); s == "" {
			t.Errorf("%s has no summary", name)
		}
		if op["x-access"] != r.Access.String() {
			t.Errorf("%s: x-access = %v, want %s", name, op["x-access"], r.Access)
		}
		id, _ := op["operationId"].(string)
		if prev, dup := opIDs[id]; dup || !operationID.MatchString(id) {
			t.Errorf("%s: operationId %q is not lowerCamelCase or is also used by %s", name, id, prev)
		}
		opIDs[id] = name
		if opTags := asSlice(op["tags"]); len(opTags) != 1 || !tags[opTags[0].(string)] {
			t.Errorf("%s: tags %v, want one declared tag", name, opTags)
		}
		security, secured := op["security"].([]any)
		switch {
		case !secured:
			t.Errorf("%s: no security (public operations need security: [])", name)
		case (len(security) == 0) != (r.Access == api.Public):
			t.Errorf("%s: security = %v for access %s", name, security, r.Access)
		}
		if (op["requestBody"] != nil) != (r.Request != "") {
			t.Errorf("%s: requestBody = %v, want schema %q", name, op["requestBody"], r.Request)
		}
		inPath, params := 0, map[string]bool{}
		for _, p := range asSlice(op["parameters"]) {
			pm := p.(map[string]any)
			if pm["in"] == "path" {
				inPath++
			}
			if n, ok := pm["name"].(string); ok {
				params[n] = true
			}
		}
		if strings.Count(r.Path, ":")+strings.Count(r.Path, "*") != inPath {
			t.Errorf("%s: %d path parameters described", name, inPath)
		}
		for _, q := range r.Params {
			if !params[q.Name] {
				t.Errorf("%s: parameter %s is not described", name, q.Name)
			}
		}
		responses := op["responses"].(map[string]any)
		success := false
		for code, resp := range responses {
			if code == "default" || len(code) != 3 {
				t.Errorf("%s: response %q: every status is listed, no ranges or default", name, code)
			}
			rm := resp.(map[string]any)
			if rm["description"] == "" {
				t.Errorf("%s %s: no description", name, code)
			}
			content, _ := rm["content"].(map[string]any)
			switch {
			case code[0] == '2':
				success = true
				if code != "204" && (r.Response != "" || r.ResponseType != "") && len(content) == 0 {
					t.Errorf("%s %s: no body described", name, code)
				}
			case content[problemType] == nil:
				t.Errorf("%s %s: the error is not described as a problem", name, code)
			}
		}
		if !success {
			t.Errorf("%s: no success status", name)
		}
		for _, st := range statuses(r) {
			if responses[strconv.Itoa(st)] == nil {
				t.Errorf("%s: status %d is not described", name, st)
			}
		}
	}
	// Every $ref points at something that exists.
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok && resolve(doc, ref) == nil {
				t.Errorf("dangling $ref %s", ref)
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
}

// resolve follows a local JSON pointer (#/components/schemas/Campaign) in doc.
func resolve(doc map[string]any, ref string) any {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	var cur any = doc
	for _, seg := range strings.Split(p, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")]
	}
	return cur
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// TestOpenAPIIsValidWithoutTypeArrays proves the document loads and validates as OpenAPI
// 3.1 with kin-openapi (examples checked against their schemas), and holds no type
// array, the 3.1 form client generators fail on.
func TestOpenAPIIsValidWithoutTypeArrays(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, withWebhooks(t, false, nil))
	env.contractOf(t) // loads and validates
	_, _, body := served(t, env, "/openapi.json")
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if _, isArray := v["type"].([]any); isArray {
				t.Errorf("%s: type is an array %v; use a single type or oneOf", path, v["type"])
			}
			if _, ok := v["nullable"]; ok {
				t.Errorf("%s: nullable is not OpenAPI 3.1; use oneOf with {type: null}", path)
			}
			for k, x := range v {
				walk(path+"/"+k, x)
			}
		case []any:
			for i, x := range v {
				walk(path+"/"+strconv.Itoa(i), x)
			}
		}
	}
	walk("#", doc)
}

// TestOpenAPIGeneratesACompilingGoClient generates a Go client from the served document
// with oapi-codegen (as a library) and compiles it, so the document stays usable by
// client generators; it checks that paged lists take limit and cursor and versioned
// changes take If-Match.
//
// The client is built in a throwaway module outside the repository that requires
// exactly the module versions this test binary was built with (runtime/debug) and
// starts from the repository's go.sum: nothing is written into the source tree, nothing
// is replaced, and with a warm module cache nothing is downloaded (GOFLAGS=-mod=mod and
// the environment's GOPROXY let the go command fetch what is missing otherwise).
func TestOpenAPIGeneratesACompilingGoClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a generated client with the go command")
	}
	t.Parallel()
	env := newTestEnv(t, withWebhooks(t, false, nil))
	_, _, body := served(t, env, "/openapi.json")
	spec, err := openapi3.NewLoader().LoadFromData(body)
	if err != nil {
		t.Fatal(err)
	}
	cfg := codegen.Configuration{PackageName: "campaignclient",
		Generate: codegen.GenerateOptions{Client: true, Models: true}}.UpdateDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	code, err := codegen.Generate(spec, cfg)
	if err != nil {
		t.Fatalf("oapi-codegen: %v", err)
	}
	for _, r := range env.srv.routes.Routes {
		method := strings.ToUpper(r.OperationID[:1]) + r.OperationID[1:]
		if !strings.Contains(code, "func (c *Client) "+method+"(") {
			t.Errorf("the client has no method %s for %s %s", method, r.Method, r.Path)
		}
		for _, p := range r.Params {
			params := code[strings.Index(code, "type "+method+"Params struct {")+1:]
			params = params[:strings.Index(params, "\n}\n")+1]
			if !strings.Contains(params, "\n\t"+goName(p.Name)+" ") {
				t.Errorf("%s: the client cannot pass %s:\n%s", method, p.Name, params)
			}
		}
	}

	dir := t.TempDir()
	info, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("no build info in the test binary")
	}
	var mod strings.Builder
	mod.WriteString("module campaignclient\n\ngo 1.26\n\nrequire (\n")
	for _, d := range info.Deps {
		if d.Replace != nil {
			t.Fatalf("%s is replaced; the compile check wants plain module versions", d.Path)
		}
		mod.WriteString("\t" + d.Path + " " + d.Version + "\n")
	}
	mod.WriteString(")\n")
	sum, err := os.ReadFile(filepath.Join("..", "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"go.mod": []byte(mod.String()), "go.sum": sum, "client.gen.go": []byte(code)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCommand(), "build", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		lines := strings.Split(code, "\n")
		t.Fatalf("the generated client does not compile: %v\n%s\n(%d lines generated)", err, out, len(lines))
	}
}

// goName is the Go name oapi-codegen gives a parameter: If-Match IfMatch, target_id TargetId.
func goName(param string) string {
	var b strings.Builder
	for _, w := range regexp.MustCompile(`[^A-Za-z0-9]+`).Split(param, -1) {
		if w != "" {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String()
}

// goCommand finds the go command: on PATH, else in GOROOT.
func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(build.Default.GOROOT, "bin", "go")
}

// TestDocsRenderTheDocumentOffline proves /docs is a reference rendered on the server from
// /openapi.json: every operation under its tag with its {param} path, every schema and
// example, the stylesheet from the binary, no script, and a CSP that allows nothing but
// that stylesheet.
func TestDocsRenderTheDocumentOffline(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, withWebhooks(t, false, nil))
	resp, _ := env.do(t, "GET", "/docs", "", nil)
	status, header, page := served(t, env, "/docs")
	if status != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /docs = %d %s", status, resp.Header.Get("Content-Type"))
	}
	csp := strings.Join(header["Content-Security-Policy"], ",")
	for _, want := range []string{"default-src 'none'", "style-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q allows unsafe sources", csp)
	}
	html := string(page)
	for _, bad := range []string{"<script", "style=", "<style", "http://", "https://", "javascript:", " on" + "click="} {
		if strings.Contains(strings.ToLower(html), bad) {
			t.Errorf("the page holds %q", bad)
		}
	}
	if !strings.Contains(html, `<link rel="stylesheet" href="/docs/style.css">`) {
		t.Error("the page does not load /docs/style.css")
	}
	_, _, body := served(t, env, "/openapi.json")
	var doc struct {
		Tags  []struct{ Name string }
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Parameters  []struct{ Name string }
			RequestBody *struct {
				Content map[string]struct{ Example any }
			} `json:"requestBody"`
		}
		Components struct{ Schemas map[string]any }
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	for _, tg := range doc.Tags {
		if !strings.Contains(html, ">"+tg.Name+"</h2>") {
			t.Errorf("no section for tag %s", tg.Name)
		}
	}
	for path, item := range doc.Paths {
		if strings.Contains(path, ":") {
			t.Errorf("path %s is not in {param} form", path)
		}
		for method, op := range item {
			anchor := `id="op-` + op.OperationID + `"`
			i := strings.Index(html, anchor)
			if i < 0 {
				t.Errorf("%s %s (%s) is not on the page", method, path, op.OperationID)
				continue
			}
			section := html[i:]
			if end := strings.Index(section, "</article>"); end > 0 {
				section = section[:end]
			}
			if !strings.Contains(section, `<code class="path">`+htmlText(path)+`</code>`) {
				t.Errorf("%s: the path %s is not shown", op.OperationID, path)
			}
			for _, p := range op.Parameters {
				if p.Name != "" && !strings.Contains(section, "<code>"+p.Name+"</code>") {
					t.Errorf("%s: parameter %s is not shown", op.OperationID, p.Name)
				}
			}
			if op.RequestBody != nil {
				if ex := op.RequestBody.Content["application/json"].Example; ex != nil && !strings.Contains(section, `<pre class="example">`) {
					t.Errorf("%s: the request example is not shown", op.OperationID)
				}
			}
		}
	}
	for name := range doc.Components.Schemas {
		if !strings.Contains(html, `id="schema-`+name+`"`) {
			t.Errorf("schema %s is not on the page", name)
		}
	}
	if !strings.Contains(html, "<table><tr><th>name</th><th>type</th><th>meaning</th></tr>") {
		t.Error("the rule environment's Markdown table is not rendered as a table")
	}

	cssResp, _ := env.do(t, "GET", "/docs/style.css", "", nil)
	if cssResp.StatusCode != 200 || !strings.HasPrefix(cssResp.Header.Get("Content-Type"), "text/css") {
		t.Fatalf("GET /docs/style.css = %d %s", cssResp.StatusCode, cssResp.Header.Get("Content-Type"))
	}
}

// htmlText is how html/template escapes a path in text.
func htmlText(path string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(path)
}

// TestMarkdownEscapesAndRendersTheLittleItKnows covers the descriptions' Markdown.
func TestMarkdownEscapesAndRendersTheLittleItKnows(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"a paragraph is escaped", "a <b> & c", "<p>a &lt;b&gt; &amp; c</p>\n"},
		{"code, bold and italics", "`x < 1` is **bold** and *it*", "<p><code>x &lt; 1</code> is <strong>bold</strong> and <em>it</em></p>\n"},
		{"a table with an escaped pipe", "| a | b |\n| --- | --- |\n| `x` | y \\| z |",
			"<table><tr><th>a</th><th>b</th></tr><tr><td><code>x</code></td><td>y | z</td></tr></table>\n"},
		{"paragraphs split at blank lines", "one\ntwo\n\nthree", "<p>one two</p>\n<p>three</p>\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(markdown(tt.in)); got != tt.want {
				t.Errorf("markdown(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestOpenAPIDescribesTheRuleEnvironment proves the rule operations list every name a
// rule can use, from the same table docs/rules.md is checked against.
func TestOpenAPIDescribesTheRuleEnvironment(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, doc := env.do(t, "GET", "/openapi.json", "", nil)
	paths := doc["paths"].(map[string]any)
	for _, p := range []string{"/v1/rules/validate", "/v1/rules/test"} {
		op, _ := paths[p].(map[string]any)["post"].(map[string]any)
		desc, _ := op["description"].(string)
		if !strings.Contains(desc, "RuleEnvironment") {
			t.Fatalf("%s has no RuleEnvironment description: %v", p, op)
		}
		for _, v := range cel.Environment() {
			if !strings.Contains(desc, "`"+v.Name+"`") {
				t.Errorf("%s description does not mention %s", p, v.Name)
			}
		}
	}
}
