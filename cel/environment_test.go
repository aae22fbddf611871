package cel

import (
	"bytes"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
)

var update = flag.Bool("update", false, "rewrite the generated environment section of docs/rules.md")

// typeName writes t as the documentation does: timestamp and duration for the
// protobuf well-known types, parameters in parentheses.
func typeName(t *types.Type) string {
	switch t.Kind() {
	case types.TimestampKind:
		return "timestamp"
	case types.DurationKind:
		return "duration"
	}
	if len(t.Parameters()) == 0 {
		return t.String()
	}
	params := make([]string, len(t.Parameters()))
	for i, p := range t.Parameters() {
		params[i] = typeName(p)
	}
	return t.DeclaredTypeName() + "(" + strings.Join(params, ", ") + ")"
}

// environmentNames lists what the environment must document, from its real definition:
// the fields of event and user, their functions, and the variables other than event and
// user (documented by their fields). Functions are keyed "user.name" (or "event.name").
func environmentNames(t *testing.T) map[string]bool {
	t.Helper()
	want := map[string]bool{}
	for _, f := range eventObject.names {
		want["event."+f] = true
	}
	for _, f := range userObject.names {
		want["user."+f] = true
	}
	objects := map[string]string{eventTypeName: "event", userTypeName: "user"}
	for _, v := range celEnv.Variables() {
		if _, ok := objects[v.Type().TypeName()]; !ok {
			want[v.Name()] = true
		}
	}
	for name, fn := range celEnv.Functions() {
		for _, o := range fn.OverloadDecls() {
			args := o.ArgTypes()
			if len(args) == 0 {
				continue
			}
			if obj, ok := objects[args[0].TypeName()]; ok {
				if !o.IsMemberFunction() {
					t.Fatalf("function %s takes %s but is not a member function: document it and extend this test", name, obj)
				}
				want[obj+"."+name] = true
			}
		}
	}
	return want
}

// TestEnvironmentMatchesTheRealEnvironment proves the documentation table is exact:
// every field of event and user, every function of theirs and every other variable has
// one entry, and each entry's type is the one the checker infers.
func TestEnvironmentMatchesTheRealEnvironment(t *testing.T) {
	want := environmentNames(t)
	for _, must := range []string{"event.amount", "user.tier", "now", "user.spent_within", "user.count_within", "user.days_active_within"} {
		if !want[must] {
			t.Fatalf("environmentNames misses %s: the test no longer reads the environment", must)
		}
	}
	seen := map[string]bool{}
	for _, v := range Environment() {
		t.Run(v.Name, func(t *testing.T) {
			key, params, isFn := strings.Cut(v.Name, "(")
			switch {
			case !want[key]:
				t.Fatalf("%s is not in the environment", v.Name)
			case seen[key]:
				t.Fatalf("%s has two entries", key)
			case v.Doc == "" || strings.Contains(v.Doc, "\n"):
				t.Fatalf("%s needs a one-paragraph Doc", v.Name)
			case isFn != (v.Call != ""):
				t.Fatalf("%s: a function, and only a function, has a Call example", v.Name)
			}
			seen[key] = true

			expr := v.Name
			if isFn {
				expr = v.Call
			}
			ast, iss := celEnv.Compile(expr)
			if iss.Err() != nil {
				t.Fatalf("%s does not compile: %v", expr, iss.Err())
			}
			if got := typeName(ast.OutputType()); got != v.Type {
				t.Errorf("%s has type %s, documented %s", expr, got, v.Type)
			}
			if isFn {
				// The example calls this function on its object, with as many arguments as
				// the signature names.
				root := ast.NativeRep().Expr()
				obj, fn, _ := strings.Cut(key, ".")
				nParams := len(strings.Split(strings.TrimSuffix(params, ")"), ","))
				if strings.TrimSpace(strings.TrimSuffix(params, ")")) == "" {
					nParams = 0
				}
				if root.Kind() != celast.CallKind || root.AsCall().FunctionName() != fn ||
					root.AsCall().Target().Kind() != celast.IdentKind || root.AsCall().Target().AsIdent() != obj ||
					len(root.AsCall().Args()) != nParams {
					t.Errorf("Call %s is not a call of %s with %d arguments", v.Call, v.Name, nParams)
				}
			}
		})
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s is in the environment but has no entry in Environment()", name)
		}
	}
}

// TestEnvironmentMarkdownListsEveryEntryOnce proves each entry lands in exactly one of
// the rendered tables.
func TestEnvironmentMarkdownListsEveryEntryOnce(t *testing.T) {
	md := EnvironmentMarkdown()
	for _, v := range Environment() {
		n := 0
		for _, g := range envGroups {
			if g.holds(v) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s is in %d tables, want 1", v.Name, n)
		}
		if c := strings.Count(md, "| `"+v.Name+"` |"); c != 1 {
			t.Errorf("%s has %d rows, want 1", v.Name, c)
		}
	}
}

const (
	rulesDoc       = "../docs/rules.md"
	generatedBegin = "<!-- BEGIN GENERATED: environment (cel.EnvironmentMarkdown; go generate ./cel) -->\n"
	generatedEnd   = "<!-- END GENERATED: environment -->\n"
)

// TestRulesDocEnvironmentIsGenerated proves docs/rules.md shows the environment as
// EnvironmentMarkdown renders it, between its markers. With -update (go generate ./cel)
// it rewrites that part instead.
func TestRulesDocEnvironmentIsGenerated(t *testing.T) {
	doc, err := os.ReadFile(rulesDoc)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok := bytes.Cut(doc, []byte(generatedBegin))
	if !ok {
		t.Fatalf("%s has no line %q", rulesDoc, generatedBegin)
	}
	got, after, ok := bytes.Cut(rest, []byte(generatedEnd))
	if !ok {
		t.Fatalf("%s has no line %q after the first marker", rulesDoc, generatedEnd)
	}
	want := "\n" + EnvironmentMarkdown() + "\n"
	if string(got) == want {
		return
	}
	if !*update {
		t.Fatalf("%s's environment section differs from cel.EnvironmentMarkdown(); run go generate ./cel\n--- got:\n%s\n--- want:\n%s",
			rulesDoc, got, want)
	}
	out := slices.Concat(before, []byte(generatedBegin), []byte(want), []byte(generatedEnd), after)
	if err := os.WriteFile(rulesDoc, out, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("rewrote %s", rulesDoc)
}
