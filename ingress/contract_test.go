package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// The page, its stylesheet and the metrics are text: validated as strings.
func init() {
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/css", openapi3filter.PlainBodyDecoder)
}

// contract is the server's own /openapi.json, loaded with kin-openapi, that every answer
// the tests get is validated against (testEnv.do), so code and contract cannot drift.
// It is stricter than the served document in one way: an object schema that lists its
// properties admits no others, so a field the server sends must be described.
type contract struct {
	doc    *openapi3.T
	routes []contractRoute
}

// contractRoute matches a request path (escaped, as sent) to the document's path.
type contractRoute struct {
	method string
	re     *regexp.Regexp
	path   string // OpenAPI form
}

var segmentParam = regexp.MustCompile(`:[A-Za-z_]+`)

// loadContract fetches /openapi.json from srv, makes it strict and loads it, failing the
// test when the document is not a valid OpenAPI 3.1 description (examples included).
func loadContract(t *testing.T, srv *Server) *contract {
	t.Helper()
	resp, err := srv.App().Test(httptest.NewRequest("GET", "/openapi.json", nil), 10_000)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var raw any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatalf("/openapi.json is not JSON: %v", err)
	}
	closeObjects(raw)
	strict, _ := json.Marshal(raw)
	doc, err := openapi3.NewLoader().LoadFromData(strict)
	if err != nil {
		t.Fatalf("load /openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("/openapi.json is not valid OpenAPI: %v", err)
	}
	c := &contract{doc: doc}
	for _, r := range srv.routes.Routes {
		re := regexp.MustCompile("^" + segmentParam.ReplaceAllString(regexp.QuoteMeta(r.Path), `[^/]+`) + "$")
		c.routes = append(c.routes, contractRoute{method: r.Method, re: re, path: openapiPath(r.Path)})
	}
	return c
}

// closeObjects sets additionalProperties: false on every object schema that lists its
// properties and says nothing about others.
func closeObjects(v any) {
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["properties"].(map[string]any); ok && v["type"] == "object" {
			if _, set := v["additionalProperties"]; !set {
				v["additionalProperties"] = false
			}
		}
		for _, x := range v {
			closeObjects(x)
		}
	case []any:
		for _, x := range v {
			closeObjects(x)
		}
	}
}

// check validates one answer against the operation its request reached: the status must
// be documented, the body must match the schema of that status' media type, and the
// required headers must be there. Requests to paths outside the table are not checked.
func (c *contract) check(t *testing.T, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	path := req.URL.EscapedPath()
	for _, r := range c.routes {
		if r.method != req.Method || !r.re.MatchString(path) {
			continue
		}
		item := c.doc.Paths.Find(r.path)
		op := item.GetOperation(req.Method)
		opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, Options: opts,
				Route: &routers.Route{Spec: c.doc, Path: r.path, PathItem: item, Method: req.Method, Operation: op}},
			Status: status, Header: header, Options: opts,
		}
		in.SetBodyBytes(body)
		if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
			t.Errorf("%s %s answered %d, which /openapi.json does not describe (operation %s): %v\nbody: %s",
				req.Method, path, status, op.OperationID, err, shorten(body))
			return
		}
		if resp := op.Responses.Status(status); resp != nil && len(resp.Value.Content) == 0 && len(bytes.TrimSpace(body)) > 0 {
			t.Errorf("%s %s answered %d with a body, but /openapi.json describes none: %s", req.Method, path, status, shorten(body))
		}
		return
	}
}

func shorten(b []byte) string {
	s := string(b)
	if len(s) > 2000 {
		s = s[:2000] + "…"
	}
	return strings.TrimSpace(s)
}

// contractOf is the env's contract, loaded on first use.
func (e *testEnv) contractOf(t *testing.T) *contract {
	t.Helper()
	e.contractOnce.Do(func() { e.contract = loadContract(t, e.srv) })
	if e.contract == nil {
		t.Fatal("the contract did not load")
	}
	return e.contract
}

// contractState is embedded in testEnv.
type contractState struct {
	contractOnce sync.Once
	contract     *contract
}
