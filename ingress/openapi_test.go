package ingress

import (
	"strings"
	"testing"

	"github.com/campaignmanager/campaignmanager/cel"
	"github.com/campaignmanager/campaignmanager/ingress/api"
)

// TestOpenAPIDescribesEveryRoute proves /openapi.json covers the route table exactly:
// each route with its access, security and bodies, and nothing that is not served.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	resp, doc := env.do(t, "GET", "/openapi.json", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	paths := doc["paths"].(map[string]any)
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
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
		p := pathParam.ReplaceAllString(r.Path, "{$1}")
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
		if prev, dup := opIDs[id]; dup || id == "" {
			t.Errorf("%s: operationId %q is empty or also used by %s", name, id, prev)
		}
		opIDs[id] = name
		if _, secured := op["security"]; secured != (r.Access != api.Public) {
			t.Errorf("%s: security present = %v, want %v", name, secured, r.Access != api.Public)
		}
		if (op["requestBody"] != nil) != (r.Request != "") {
			t.Errorf("%s: requestBody = %v, want schema %q", name, op["requestBody"], r.Request)
		}
		for _, s := range []string{r.Request, r.Response} {
			if s != "" && schemas[s] == nil {
				// schemaRef describes it as a bare object; worth a schema, not a failure.
				t.Logf("%s: schema %s is not in components", name, s)
			}
		}
		inPath := 0
		for _, p := range asSlice(op["parameters"]) {
			if p.(map[string]any)["in"] == "path" {
				inPath++
			}
		}
		if strings.Count(r.Path, ":") != inPath {
			t.Errorf("%s: %d path parameters described", name, inPath)
		}
	}
	// Every $ref points at a schema that exists.
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if name, ok := strings.CutPrefix(ref, "#/components/schemas/"); !ok || schemas[name] == nil {
					t.Errorf("dangling $ref %s", ref)
				}
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

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
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
