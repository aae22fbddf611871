package ingress

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/campaignmanager/campaignmanager/cel"
)

const rulesDoc = "../docs/rules.md"

// docBlock is one fenced code block of a Markdown document.
type docBlock struct {
	info string // the words after the opening fence, e.g. "cel points"
	line int    // of the opening fence, 1-based
	body string
}

func readDocBlocks(t *testing.T, path string) []docBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }() // read-only
	var blocks []docBlock
	var cur *docBlock
	var body []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			cur = &docBlock{info: strings.TrimSpace(strings.TrimPrefix(trimmed, "```")), line: n}
			body = nil
		case cur != nil && trimmed == "```":
			cur.body = strings.Join(body, "\n")
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			body = append(body, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s:%d: code block never closed", path, cur.line)
	}
	return blocks
}

// TestRulesDocExamplesCompileAndMatch compiles every ```cel block of docs/rules.md (a
// rule, or with "cel points" a points expression) and runs every ```json rule-test block
// through POST /v1/rules/test with the rule (and points) above it: each must match.
func TestRulesDocExamplesCompileAndMatch(t *testing.T) {
	t.Parallel()
	blocks := readDocBlocks(t, rulesDoc)
	env := newTestEnv(t)
	var rule, points string
	rules, tests := 0, 0
	for _, b := range blocks {
		words := strings.Fields(b.info)
		if len(words) == 0 {
			continue
		}
		switch {
		case words[0] == "cel" && len(words) > 1 && words[1] == "points":
			if _, err := cel.CompilePoints(b.body); err != nil {
				t.Errorf("%s:%d: points expression does not compile: %v\n%s", rulesDoc, b.line, err, b.body)
			}
			points = b.body
		case words[0] == "cel":
			rules++
			if _, err := cel.Compile(b.body); err != nil {
				t.Errorf("%s:%d: rule does not compile: %v\n%s", rulesDoc, b.line, err, b.body)
			}
			rule, points = b.body, ""
		case words[0] == "json" && len(words) > 1 && words[1] == "rule-test":
			tests++
			if rule == "" {
				t.Fatalf("%s:%d: rule-test block before any rule", rulesDoc, b.line)
			}
			var req map[string]any
			if err := json.Unmarshal([]byte(b.body), &req); err != nil {
				t.Fatalf("%s:%d: %v", rulesDoc, b.line, err)
			}
			req["rule"] = rule
			if points != "" {
				req["reward"] = map[string]any{"type": "points", "points": points}
			}
			resp, out := env.do(t, "POST", "/v1/rules/test", env.tokens["viewer"], req)
			if resp.StatusCode != 200 || out["matched"] != true {
				t.Errorf("%s:%d: the example does not match its sample: %d %v\nrule: %s", rulesDoc, b.line, resp.StatusCode, out, rule)
				continue
			}
			if n, ok := out["points"].(float64); points != "" && (!ok || n <= 0) {
				t.Errorf("%s:%d: points = %v, want some", rulesDoc, b.line, out["points"])
			}
		}
	}
	if rules < 10 || tests < 10 {
		t.Fatalf("%s has %d rules and %d rule tests, want at least ten of each (did the fences change?)", rulesDoc, rules, tests)
	}
}

// typeChecks compile only when NAME has the CEL type documented for it. They avoid loops,
// whose estimated cost over a map is high.
var typeChecks = map[string]string{
	"string":           `NAME + "" == NAME`,
	"int":              `NAME + 0 == NAME`,
	"double":           `NAME + 0.0 == NAME`,
	"timestamp":        `NAME + duration("1s") > NAME`,
	"map(string, dyn)": `NAME["k"] + 0 == 0 || NAME["k"] + "" == ""`, // dyn values only
	"map(string, int)": `NAME["k"] + 0 == 0`,
}

// TestRuleEnvironmentIsRightAndDocumented proves each entry of the environment table
// (which the OpenAPI description shows) exists with its stated type, and that
// docs/rules.md mentions it.
func TestRuleEnvironmentIsRightAndDocumented(t *testing.T) {
	doc, err := os.ReadFile(rulesDoc)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range cel.Environment() {
		t.Run(v.Name, func(t *testing.T) {
			check, ok := typeChecks[v.Type]
			if !ok {
				t.Fatalf("no type check for %q", v.Type)
			}
			expr := v.Name
			if v.Call != "" {
				expr = v.Call
			}
			if _, err := cel.Compile(strings.ReplaceAll(check, "NAME", expr)); err != nil {
				t.Errorf("%s is not a %s: %v", v.Name, v.Type, err)
			}
			if !strings.Contains(string(doc), "`"+v.Name+"`") {
				t.Errorf("%s does not document %s", rulesDoc, v.Name)
			}
		})
	}
}
