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

func (c *cli) rulesValidateCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Compile and type-check a rule (and points expression)",
		Long: `Compile and type-check the rule in FILE (YAML or JSON; "-" reads stdin): an object with
"rule" and optionally "points". A campaign file works too: its reward.points is checked.
An invalid rule exits 1 and prints each error with its line:column.`,
		Args: cobra.NoArgs,
		RunE: action(func(cmd *cobra.Command, args []string) error {
			docs, _, err := c.readInput(file)
			if err != nil {
				return err
			}
			if len(docs) != 1 {
				return usageErrorf("%s: validate takes one rule, not a list", file)
			}
			body := pick(docs[0], "rule", "points")
			if _, ok := body["points"]; !ok {
				if r, ok := docs[0]["reward"].(map[string]any); ok && r["points"] != nil {
					body["points"] = r["points"]
				}
			}
			if body["rule"] == nil && body["points"] == nil {
				return usageErrorf("%s holds neither rule nor points", file)
			}
			cl, err := c.authed()
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if _, err := cl.do(cmd.Context(), "POST", "/v1/rules/validate", body, nil, &raw); err != nil {
				return err
			}
			if c.json() {
				return c.printJSON(raw)
			}
			var res struct {
				Valid bool   `json:"valid"`
				Cost  uint64 `json:"cost"`
			}
			if err := json.Unmarshal(raw, &res); err != nil {
				return fmt.Errorf("decode validation: %w", err)
			}
			if !res.Valid {
				return fmt.Errorf("the server did not find the rule valid: %s", raw)
			}
			fmt.Fprintf(c.stdout, "valid (estimated cost %d)\n", res.Cost)
			return nil
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
			docs, _, err := c.readInput(file)
			if err != nil {
				return err
			}
			if len(docs) != 1 {
				return usageErrorf("%s: test takes one rule, not a list", file)
			}
			body := pick(docs[0], "rule", "reward", "event", "user")
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
			cl, err := c.authed()
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if _, err := cl.do(cmd.Context(), "POST", "/v1/rules/test", body, nil, &raw); err != nil {
				return err
			}
			if c.json() {
				return c.printJSON(raw)
			}
			var res map[string]any
			if err := json.Unmarshal(raw, &res); err != nil {
				return fmt.Errorf("decode test result: %w", err)
			}
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
		}),
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "YAML or JSON file with rule, reward, event and user (- for stdin)")
	cmd.Flags().StringVar(&eventFile, "event", "", "YAML or JSON file with the event (overrides the one in -f)")
	cmd.Flags().StringVar(&userFile, "user", "", "YAML or JSON file with the user state (overrides the one in -f)")
	return cmd
}
