package main

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/spf13/cobra"
)

func (c *cli) rulesCommand() *cobra.Command {
	return group("rules", "Check rules before saving them",
		c.rulesValidateCommand(),
		c.rulesTestCommand(),
	)
}

// pick copies the given keys of doc that are present.
func pick(doc map[string]any, keys ...string) map[string]any {
	out := map[string]any{}
	for _, k := range keys {
		if v, ok := doc[k]; ok {
			out[k] = v
		}
	}
	return out
}

// readRule reads file (see readInput), which must hold one object rather than a list;
// verb names the command in the usage error.
func (c *cli) readRule(file, verb string) (map[string]any, error) {
	docs, _, err := c.readInput(file)
	if err != nil {
		return nil, err
	}
	if len(docs) != 1 {
		return nil, usageErrorf("%s: %s takes one rule, not a list", file, verb)
	}
	return docs[0], nil
}

func (c *cli) rulesValidateCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Compile and type-check a rule (and points expression)",
		Long: `Compile and type-check the rule in FILE (YAML or JSON; "-" reads stdin): an object with
"rule" and optionally "points". A campaign file works too: its reward.points is checked.
An invalid rule exits 1 and prints each error with its line:column, then the line of the
rule with a ^ under the spot.`,
		Args: cobra.NoArgs,
		RunE: action(func(cmd *cobra.Command, args []string) error {
			doc, err := c.readRule(file, "validate")
			if err != nil {
				return err
			}
			body := pick(doc, "rule", "points")
			if _, ok := body["points"]; !ok {
				if r, ok := doc["reward"].(map[string]any); ok && r["points"] != nil {
					body["points"] = r["points"]
				}
			}
			if body["rule"] == nil && body["points"] == nil {
				return usageErrorf("%s holds neither rule nor points", file)
			}
			return c.show(cmd, "POST", "/v1/rules/validate", body, func(raw json.RawMessage) error {
				// The raw answer goes into the error, so decode within this closure.
				return as("validation", func(res struct {
					Valid bool   `json:"valid"`
					Cost  uint64 `json:"cost"`
				}) error {
					if !res.Valid {
						return fmt.Errorf("the server did not find the rule valid: %s", raw)
					}
					fmt.Fprintf(c.stdout, "valid (estimated cost %d)\n", res.Cost)
					return nil
				})(raw)
			})
		}),
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "YAML or JSON file with rule and optional points (- for stdin)")
	return cmd
}

func (c *cli) rulesTestCommand() *cobra.Command {
	var file, eventFile, userFile string
	cmd := &cobra.Command{
		Use:   "test -f FILE",
		Short: "Run a rule against a given event and user state",
		Long: `Run a rule (and its reward) against an event and optional user state, without storing
anything. FILE (YAML or JSON) holds "rule", optionally "reward", "event" and optionally
"user"; a campaign file works too. --event and --user read those parts from other files.`,
		Args: cobra.NoArgs,
		RunE: action(func(cmd *cobra.Command, args []string) error {
			doc, err := c.readRule(file, "test")
			if err != nil {
				return err
			}
			body := pick(doc, "rule", "reward", "event", "user")
			for _, x := range [][2]string{{eventFile, "event"}, {userFile, "user"}} {
				flag, part := x[0], x[1]
				if flag == "" {
					continue
				}
				d, _, err := c.readInput(flag)
				if err != nil {
					return err
				}
				if len(d) != 1 {
					return usageErrorf("%s: the %s must be one object", flag, part)
				}
				body[part] = d[0]
			}
			if body["rule"] == nil {
				return usageErrorf("%s holds no rule", file)
			}
			if body["event"] == nil {
				return usageErrorf("no event: put \"event\" in %s or give --event FILE", file)
			}
			return c.show(cmd, "POST", "/v1/rules/test", body, as("test result", c.printTestResult))
		}),
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "YAML or JSON file with rule, reward, event and user (- for stdin)")
	cmd.Flags().StringVar(&eventFile, "event", "", "YAML or JSON file with the event (overrides the one in -f)")
	cmd.Flags().StringVar(&userFile, "user", "", "YAML or JSON file with the user state (overrides the one in -f)")
	return cmd
}

// printTestResult shows a rules test answer as key: value lines, matched first and the
// rest sorted; values that are not strings are shown as JSON.
func (c *cli) printTestResult(res map[string]any) error {
	kv := [][2]string{{"matched", fmt.Sprint(res["matched"])}}
	keys := make([]string, 0, len(res))
	for k := range res {
		if k != "matched" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := res[k]
		s, ok := v.(string)
		if !ok {
			b, _ := json.Marshal(v)
			s = string(b)
		}
		kv = append(kv, [2]string{k, s})
	}
	return c.fields(kv)
}
