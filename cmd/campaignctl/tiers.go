package main

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/spf13/cobra"
)

// tierConfig is GET /v1/tiers.
type tierConfig struct {
	Version int64  `json:"version"`
	Basis   string `json:"basis"`
	Window  string `json:"window,omitempty"`
	Tiers   []struct {
		Name      string  `json:"name"`
		Threshold float64 `json:"threshold"`
	} `json:"tiers"`
	UpdatedBy string `json:"updated_by,omitempty"`
	UpdatedAt string `json:"updated_at,omitempty"`
}

func (c *cli) tiersCommand() *cobra.Command {
	return group("tiers", "Show and set the loyalty tiers", c.tiersShowCommand(), c.tiersApplyCommand())
}

func (c *cli) tiersShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "show",
		Aliases: []string{"get"},
		Short:   "Show the tier configuration: its basis and the tiers with their thresholds",
		Args:    cobra.NoArgs,
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return c.show(cmd, "GET", "/v1/tiers", nil, as("tiers", func(t tierConfig) error {
				basis := t.Basis
				if t.Window != "" {
					basis += " within " + t.Window
				}
				fmt.Fprintf(c.stdout, "version %d, basis %s\n", t.Version, basis)
				rows := make([][]string, 0, len(t.Tiers))
				for _, tier := range t.Tiers {
					rows = append(rows, []string{tier.Name, strconv.FormatFloat(tier.Threshold, 'f', -1, 64)})
				}
				return c.table(cols("TIER", "THRESHOLD"), rows)
			}))
		}),
	}
}

func (c *cli) tiersApplyCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Replace the tier configuration with the one in FILE (YAML or JSON; admin role)",
		Long: `Replace the tier configuration, e.g.

  basis: lifetime_points        # or spend, with window: 8760h
  tiers:
    - {name: silver, threshold: 1000}
    - {name: gold, threshold: 5000}

It applies to the version read just before (If-Match): a change made meanwhile by
someone else is not overwritten; apply again to replace it.`,
		Args: cobra.NoArgs,
		RunE: action(func(cmd *cobra.Command, args []string) error {
			docs, list, err := c.readInput(file)
			if err != nil {
				return err
			}
			if list || len(docs) != 1 {
				return usageErrorf("%s must hold one tier configuration (an object), not a list", file)
			}
			cl, err := c.authed()
			if err != nil {
				return err
			}
			var cur tierConfig
			if _, err := cl.do(cmd.Context(), "GET", "/v1/tiers", nil, nil, &cur); err != nil {
				return err
			}
			hdr := http.Header{"If-Match": {strconv.Quote(strconv.FormatInt(cur.Version, 10))}}
			var saved tierConfig
			_, err = cl.do(cmd.Context(), "PUT", "/v1/tiers", docs[0], hdr, &saved)
			var ae *apiError
			if errors.As(err, &ae) && ae.status == http.StatusPreconditionFailed {
				return fmt.Errorf("the tiers changed on the server while applying (version %d is no longer current); apply again: %w", cur.Version, err)
			}
			if err != nil {
				return err
			}
			if c.structured() {
				return c.print(saved)
			}
			fmt.Fprintf(c.stdout, "tiers version %d applied (%d tiers, basis %s)\n", saved.Version, len(saved.Tiers), saved.Basis)
			return nil
		}),
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "the configuration, YAML or JSON (- for stdin)")
	return cmd
}
