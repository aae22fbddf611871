package main

import (
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// serverManaged are campaign fields the server sets; apply neither sends nor compares
// them.
var serverManaged = map[string]bool{"version": true, "created_at": true, "updated_at": true}

// changedFields lists, sorted, the top-level fields where the desired campaign differs
// from the stored one: every field the user gave that differs, and every field the user
// left out that PUT would clear (stored with a non-zero value). id, server-managed
// fields and an omitted status (PUT keeps the stored one) are not compared.
func changedFields(desired, stored map[string]any) []string {
	var out []string
	for k, v := range desired {
		if k == "id" || serverManaged[k] {
			continue
		}
		if !sameValue(v, stored[k]) {
			out = append(out, k)
		}
	}
	for k, v := range stored {
		if _, given := desired[k]; given || k == "id" || k == "status" || serverManaged[k] {
			continue
		}
		if !isZero(v) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// sameValue compares two decoded JSON values as the server would store them: a missing
// value equals a zero one (the server omits empty fields), numbers compare by value, a
// number equals the string spelling it (a points constant is stored as a string), and
// RFC 3339 times compare as instants at Postgres' microsecond precision.
func sameValue(a, b any) bool {
	if a == nil || b == nil {
		return isZero(a) && isZero(b)
	}
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok {
			return false
		}
		for k, av := range a {
			if !sameValue(av, bm[k]) {
				return false
			}
		}
		for k, bv := range bm {
			if _, ok := a[k]; !ok && !isZero(bv) {
				return false
			}
		}
		return true
	case []any:
		bs, ok := b.([]any)
		if !ok || len(a) != len(bs) {
			return false
		}
		for i := range a {
			if !sameValue(a[i], bs[i]) {
				return false
			}
		}
		return true
	case json.Number:
		switch b := b.(type) {
		case json.Number:
			return sameNumber(string(a), string(b))
		case string:
			return sameNumber(string(a), strings.TrimSpace(b))
		}
		return false
	case string:
		switch b := b.(type) {
		case string:
			return a == b || sameTime(a, b)
		case json.Number:
			return sameNumber(strings.TrimSpace(a), string(b))
		}
		return false
	case bool:
		bb, ok := b.(bool)
		return ok && a == bb
	}
	return false
}

func sameNumber(a, b string) bool {
	x, ok1 := new(big.Rat).SetString(a)
	y, ok2 := new(big.Rat).SetString(b)
	return ok1 && ok2 && x.Cmp(y) == 0
}

func sameTime(a, b string) bool {
	x, err1 := time.Parse(time.RFC3339Nano, a)
	y, err2 := time.Parse(time.RFC3339Nano, b)
	return err1 == nil && err2 == nil && x.Truncate(time.Microsecond).Equal(y.Truncate(time.Microsecond))
}

// isZero reports whether v is null, false, 0, "", or an empty (or all-zero) object or
// list.
func isZero(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case bool:
		return !v
	case string:
		return v == ""
	case json.Number:
		return sameNumber(string(v), "0")
	case map[string]any:
		for _, x := range v {
			if !isZero(x) {
				return false
			}
		}
		return true
	case []any:
		return len(v) == 0
	}
	return false
}

func (c *cli) campaignsDiffCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "diff -f FILE",
		Short: "Show what apply would change, as a unified diff (exit 1 when something differs)",
		Long: `Compare each campaign in FILE (YAML or JSON; "-" reads stdin) with the one stored on the
server and print what apply would change as a unified diff of YAML: "-" lines are the
server's, "+" lines the file's. Values apply treats as equal (100 and "100", one instant
in two time zones, a zero value and an absent one) are shown once, as the server has
them; server-managed fields (version, created_at, updated_at) are left out, and a status
the file leaves out is the stored one, as apply keeps it. Like kubectl diff, it exits 0
when nothing differs and 1 when something does (other errors keep their exit codes).`,
		Args: cobra.NoArgs,
		RunE: action(func(cmd *cobra.Command, args []string) error {
			docs, _, err := c.readCampaigns(file, "diff")
			if err != nil {
				return err
			}
			cl, err := c.authed()
			if err != nil {
				return err
			}
			differs := false
			for _, d := range docs {
				id := d["id"].(string)
				stored, err := storedCampaign(cmd.Context(), cl, id)
				if err != nil {
					return fmt.Errorf("campaign %s: %w", id, err)
				}
				out, err := campaignDiff(id, file, applyBody(d), stored)
				if err != nil {
					return fmt.Errorf("campaign %s: %w", id, err)
				}
				if out != "" {
					differs = true
					fmt.Fprint(c.stdout, out)
				}
			}
			if differs {
				return &exitStatus{code: exitError}
			}
			return nil
		}),
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "YAML or JSON file with a campaign or a list of them (- for stdin)")
	return cmd
}

// campaignDiff is the unified diff between the stored campaign (nil: none) and the one
// apply would store from desired, or "" when apply would change nothing.
func campaignDiff(id, file string, desired, stored map[string]any) (string, error) {
	from := "campaign/" + id + " (not on the server)"
	live := map[string]any{}
	want := make(map[string]any, len(desired)+1)
	for k, v := range desired {
		want[k] = v
	}
	if stored != nil {
		if len(changedFields(desired, stored)) == 0 {
			return "", nil
		}
		for k, v := range stored {
			if !serverManaged[k] {
				live[k] = v
			}
		}
		if _, ok := want["status"]; !ok {
			want["status"] = stored["status"] // PUT keeps it
		}
		from = fmt.Sprintf("campaign/%s (on the server, version %v)", id, stored["version"])
	}
	w, l := align(want, live)
	var a, b []string
	var err error
	if stored != nil {
		if a, err = yamlLines(l); err != nil {
			return "", err
		}
	}
	if b, err = yamlLines(w); err != nil {
		return "", err
	}
	return unifiedDiff(from, "campaign/"+id+" ("+file+")", a, b), nil
}

// align returns desired and live with every part that sameValue finds equal replaced by
// live's spelling of it, so that only real differences differ in the printed diff.
func align(desired, live any) (any, any) {
	if sameValue(desired, live) {
		return live, live
	}
	dm, ok1 := desired.(map[string]any)
	lm, ok2 := live.(map[string]any)
	if !ok1 || !ok2 {
		return desired, live
	}
	outD, outL := map[string]any{}, map[string]any{}
	for k, lv := range lm {
		dv, given := dm[k]
		switch {
		case !given && isZero(lv):
			outD[k], outL[k] = lv, lv
		case !given:
			outL[k] = lv
		default:
			outD[k], outL[k] = align(dv, lv)
		}
	}
	for k, dv := range dm {
		if _, ok := lm[k]; !ok && !isZero(dv) {
			outD[k] = dv
		}
	}
	return outD, outL
}

// yamlLines is v as YAML (keys sorted, numbers as numbers), line by line.
func yamlLines(v any) ([]string, error) {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(yamlValue(v)); err != nil {
		return nil, fmt.Errorf("write YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("write YAML: %w", err)
	}
	s := strings.TrimSuffix(b.String(), "\n")
	if s == "{}" || s == "" {
		return nil, nil
	}
	return strings.Split(s, "\n"), nil
}

// yamlValue is v with its json.Numbers as int64 or float64, which YAML writes as
// numbers (it would quote a json.Number, a string).
func yamlValue(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		if f, err := v.Float64(); err == nil {
			return f
		}
		return v.String()
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = yamlValue(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = yamlValue(x)
		}
		return out
	}
	return v
}

// diffContext is how many unchanged lines a hunk shows around a change.
const diffContext = 3

// unifiedDiff is the unified diff of a and b (lines), "" when they are equal. The lines
// are few, so a plain longest-common-subsequence table does.
func unifiedDiff(from, to string, a, b []string) string {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		kind   byte // ' ', '-' or '+'
		text   string
		ai, bi int // lines of a and b before this one
	}
	var ops []op
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, op{' ', a[i], i, j})
			i, j = i+1, j+1
		case j == m || (i < n && lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{'-', a[i], i, j})
			i++
		default:
			ops = append(ops, op{'+', b[j], i, j})
			j++
		}
	}
	var out strings.Builder
	for k := 0; k < len(ops); {
		if ops[k].kind == ' ' {
			k++
			continue
		}
		// A hunk: from diffContext lines before this change to diffContext lines after
		// the last change that follows within 2*diffContext unchanged lines.
		start, end := max(0, k-diffContext), k
		for q := k; q < len(ops); q++ {
			if ops[q].kind != ' ' {
				end = q
			} else if q-end > 2*diffContext {
				break
			}
		}
		end = min(len(ops), end+diffContext+1)
		if out.Len() == 0 {
			fmt.Fprintf(&out, "--- %s\n+++ %s\n", from, to)
		}
		aLen, bLen := 0, 0
		for _, o := range ops[start:end] {
			if o.kind != '+' {
				aLen++
			}
			if o.kind != '-' {
				bLen++
			}
		}
		aStart, bStart := ops[start].ai+1, ops[start].bi+1
		if aLen == 0 {
			aStart--
		}
		if bLen == 0 {
			bStart--
		}
		fmt.Fprintf(&out, "@@ -%d,%d +%d,%d @@\n", aStart, aLen, bStart, bLen)
		for _, o := range ops[start:end] {
			out.WriteString(string(o.kind) + o.text + "\n")
		}
		k = end
	}
	return out.String()
}
