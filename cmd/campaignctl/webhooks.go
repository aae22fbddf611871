package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// webhook is an endpoint as the admin API shows it; Secret only after create and rotate.
type webhook struct {
	ID          string `json:"id"`
	URL         string `json:"url"`
	Description string `json:"description"`
	Filter      struct {
		Notices     []string `json:"notices"`
		RewardTypes []string `json:"reward_types"`
		Campaigns   []string `json:"campaigns"`
	} `json:"filter"`
	Enabled             bool       `json:"enabled"`
	DisabledReason      string     `json:"disabled_reason"`
	PreviousSecretUntil *time.Time `json:"previous_secret_until"`
	Version             int64      `json:"version"`
	CreatedBy           string     `json:"created_by"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
	Secret              string     `json:"secret"`
}

// filterText renders an endpoint's filter: "all", or what it narrows to.
func (w webhook) filterText() string {
	var parts []string
	if len(w.Filter.Notices) > 0 {
		parts = append(parts, "notices="+strings.Join(w.Filter.Notices, ","))
	}
	if len(w.Filter.RewardTypes) > 0 {
		parts = append(parts, "reward_types="+strings.Join(w.Filter.RewardTypes, ","))
	}
	if len(w.Filter.Campaigns) > 0 {
		parts = append(parts, "campaigns="+strings.Join(w.Filter.Campaigns, ","))
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, " ")
}

// deliveryRow is a delivery record as the admin API shows it.
type deliveryRow struct {
	ID            string     `json:"id"`
	Type          string     `json:"type"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	LastStatus    int        `json:"last_status"`
	LastError     string     `json:"last_error"`
	LastLatencyMS *float64   `json:"last_latency_ms"`
	LastAttemptAt *time.Time `json:"last_attempt_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
}

func (d deliveryRow) cells(c *cli) []string {
	code, latency := "-", "-"
	if d.LastStatus > 0 {
		code = strconv.Itoa(d.LastStatus)
	}
	if d.LastLatencyMS != nil {
		latency = strconv.FormatFloat(*d.LastLatencyMS, 'f', 1, 64) + "ms"
	}
	errText := "-"
	if d.LastError != "" {
		errText = c.cut(d.LastError, 40)
	}
	return []string{d.ID, d.Type, d.Status, strconv.Itoa(d.Attempts), code, latency,
		timeOr(d.LastAttemptAt, "-"), timeOr(d.NextAttemptAt, "-"), errText}
}

var deliveryColumns = cols("ID", "TYPE", "STATUS", "ATTEMPTS", "LAST STATUS", "LATENCY", "+LAST ATTEMPT", "NEXT ATTEMPT", "+LAST ERROR")

func (c *cli) webhooksCommand() *cobra.Command {
	return group("webhooks", "Manage webhook endpoints and their deliveries (admin role)",
		c.webhooksCreateCommand(), c.webhooksListCommand(), c.webhooksGetCommand(), c.webhooksUpdateCommand(),
		c.webhooksDeleteCommand(), c.webhooksRotateCommand(), c.webhooksTestCommand(), c.webhooksDeliveriesCommand(),
		c.webhooksRetryCommand())
}

// filterFlags are the flags that set an endpoint's filter.
type filterFlags struct {
	notices, rewardTypes, campaigns []string
}

func (f *filterFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringSliceVar(&f.notices, "notice", nil, "notice kinds to receive: reward, tier_changed, points_expired, coupon_redeemed (repeat or comma-separate; none: all)")
	cmd.Flags().StringSliceVar(&f.rewardTypes, "reward-type", nil, "only rewards of these types: points, coupon, free_shipping, notification")
	cmd.Flags().StringSliceVar(&f.campaigns, "campaign", nil, "only rewards of these campaigns")
}

func (f *filterFlags) changed(cmd *cobra.Command) bool {
	return cmd.Flags().Changed("notice") || cmd.Flags().Changed("reward-type") || cmd.Flags().Changed("campaign")
}

func (f *filterFlags) body() map[string]any {
	out := map[string]any{}
	for k, v := range map[string][]string{"notices": f.notices, "reward_types": f.rewardTypes, "campaigns": f.campaigns} {
		if len(v) > 0 {
			out[k] = v
		}
	}
	return out
}

// printWebhook shows an endpoint as aligned key: value lines, its secret when the answer
// holds one (with a word that it is shown once).
func (c *cli) printWebhook(w webhook) error {
	state := "enabled"
	if !w.Enabled {
		state = "disabled"
		if w.DisabledReason != "" {
			state += " (" + w.DisabledReason + ")"
		}
	}
	kv := [][2]string{{"ID", w.ID}, {"URL", w.URL}, {"Description", w.Description}, {"Filter", w.filterText()},
		{"State", state}, {"Version", strconv.FormatInt(w.Version, 10)}, {"Created", timeOr(&w.CreatedAt, "-") + " by " + w.CreatedBy},
		{"Updated", timeOr(&w.UpdatedAt, "-")}}
	if w.PreviousSecretUntil != nil {
		kv = append(kv, [2]string{"Previous secret signs until", timeOr(w.PreviousSecretUntil, "-")})
	}
	if w.Secret != "" {
		kv = append(kv, [2]string{"Secret", w.Secret})
	}
	if err := c.fields(kv); err != nil {
		return err
	}
	if w.Secret != "" {
		fmt.Fprintln(c.stderr, "Store the secret now: the server shows it only once. Receivers verify webhook-signature with it.")
	}
	return nil
}

func (c *cli) webhooksCreateCommand() *cobra.Command {
	var u, description string
	var disabled bool
	var f filterFlags
	cmd := &cobra.Command{
		Use:   "create --url URL",
		Short: "Create an endpoint; its signing secret is shown only now",
		Args:  cobra.NoArgs,
		RunE: action(func(cmd *cobra.Command, args []string) error {
			if u == "" {
				return usageErrorf("--url is required")
			}
			body := map[string]any{"url": u, "description": description, "filter": f.body(), "enabled": !disabled}
			return c.show(cmd, "POST", "/v1/webhooks", body, as("webhook", c.printWebhook))
		}),
	}
	cmd.Flags().StringVar(&u, "url", "", "where deliveries are POSTed (absolute http or https URL)")
	cmd.Flags().StringVar(&description, "description", "", "what the endpoint is for")
	cmd.Flags().BoolVar(&disabled, "disabled", false, "create it disabled (nothing is delivered until it is enabled)")
	f.add(cmd)
	return cmd
}

func (c *cli) webhooksListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List endpoints (no secrets)",
		Args:    cobra.NoArgs,
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return c.show(cmd, "GET", "/v1/webhooks?limit=1000", nil, as("webhooks", func(list struct {
				Webhooks []webhook `json:"webhooks"`
			}) error {
				return c.table(cols("ID", "URL", "ENABLED", "FILTER", "+DESCRIPTION", "+VERSION"),
					rowsOf(list.Webhooks, func(w webhook) []string {
						return []string{w.ID, c.cut(w.URL, 50), strconv.FormatBool(w.Enabled), c.cut(w.filterText(), 60),
							c.cut(w.Description, 40), strconv.FormatInt(w.Version, 10)}
					}))
			}))
		}),
	}
}

func (c *cli) webhooksGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show an endpoint (no secret)",
		Args:  cobra.ExactArgs(1),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return c.show(cmd, "GET", "/v1/webhooks/"+escape(args[0]), nil, as("webhook", c.printWebhook))
		}),
	}
}

func (c *cli) webhooksUpdateCommand() *cobra.Command {
	var u, description string
	var enable, disable bool
	var f filterFlags
	cmd := &cobra.Command{
		Use:   "update ID [--url URL] [--description TEXT] [--notice KIND]... [--enable|--disable]",
		Short: "Change an endpoint; the filter flags, when given, replace the whole filter",
		Args:  cobra.ExactArgs(1),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			body := map[string]any{}
			if cmd.Flags().Changed("url") {
				body["url"] = u
			}
			if cmd.Flags().Changed("description") {
				body["description"] = description
			}
			if f.changed(cmd) {
				body["filter"] = f.body()
			}
			switch {
			case enable && disable:
				return usageErrorf("--enable and --disable exclude each other")
			case enable, disable:
				body["enabled"] = enable
			}
			if len(body) == 0 {
				return usageErrorf("nothing to change: give --url, --description, a filter flag, --enable or --disable")
			}
			return c.show(cmd, "PATCH", "/v1/webhooks/"+escape(args[0]), body, as("webhook", c.printWebhook))
		}),
	}
	cmd.Flags().StringVar(&u, "url", "", "new URL")
	cmd.Flags().StringVar(&description, "description", "", "new description")
	cmd.Flags().BoolVar(&enable, "enable", false, "deliver to it again (after a 410 Gone or --disable); what waited is delivered")
	cmd.Flags().BoolVar(&disable, "disable", false, "stop delivering to it; notices wait until it is enabled")
	f.add(cmd)
	return cmd
}

func (c *cli) webhooksDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete an endpoint and its delivery records",
		Args:  cobra.ExactArgs(1),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return c.show(cmd, "DELETE", "/v1/webhooks/"+escape(args[0]), nil, func(json.RawMessage) error {
				fmt.Fprintf(c.stdout, "webhook/%s deleted\n", args[0])
				return nil
			})
		}),
	}
}

func (c *cli) webhooksRotateCommand() *cobra.Command {
	var overlap time.Duration
	cmd := &cobra.Command{
		Use:   "rotate-secret ID [--overlap 24h]",
		Short: "Give an endpoint a new signing secret; the old one signs too during the overlap",
		Args:  cobra.ExactArgs(1),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			q := url.Values{"overlap": {overlap.String()}}
			return c.show(cmd, "POST", "/v1/webhooks/"+escape(args[0])+"/rotate-secret?"+q.Encode(), nil, as("webhook", c.printWebhook))
		}),
	}
	cmd.Flags().DurationVar(&overlap, "overlap", 24*time.Hour, "how long the old secret keeps signing (0s: not at all; at most 168h)")
	return cmd
}

func (c *cli) webhooksTestCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "test ID",
		Short: "Send the endpoint a signed webhook.test delivery now and show how it went",
		Args:  cobra.ExactArgs(1),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return c.show(cmd, "POST", "/v1/webhooks/"+escape(args[0])+"/test", nil, as("delivery", func(d deliveryRow) error {
				if err := c.table(deliveryColumns, [][]string{d.cells(c)}); err != nil {
					return err
				}
				if d.Status != "succeeded" {
					return &exitStatus{code: exitError}
				}
				return nil
			}))
		}),
	}
}

func (c *cli) webhooksDeliveriesCommand() *cobra.Command {
	var status, cursor string
	var limit int
	cmd := &cobra.Command{
		Use:   "deliveries ID [--status failed]",
		Short: "List an endpoint's deliveries, oldest first: status, attempts, last answer, next attempt",
		Args:  cobra.ExactArgs(1),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			if limit < 1 || limit > 1000 {
				return usageErrorf("--limit must be from 1 to 1000, got %d", limit)
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if status != "" {
				q.Set("status", status)
			}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			return c.show(cmd, "GET", "/v1/webhooks/"+escape(args[0])+"/deliveries?"+q.Encode(), nil, as("deliveries", func(page struct {
				Deliveries []deliveryRow `json:"deliveries"`
				NextCursor string        `json:"next_cursor"`
			}) error {
				if err := c.table(deliveryColumns, rowsOf(page.Deliveries, func(d deliveryRow) []string { return d.cells(c) })); err != nil {
					return err
				}
				if page.NextCursor != "" {
					fmt.Fprintf(c.stderr, "More deliveries: --cursor %s\n", page.NextCursor)
				}
				return nil
			}))
		}),
	}
	cmd.Flags().StringVar(&status, "status", "", "only pending, succeeded or failed deliveries")
	cmd.Flags().IntVar(&limit, "limit", 100, "deliveries per page (1 to 1000)")
	cmd.Flags().StringVar(&cursor, "cursor", "", "next_cursor from a previous page")
	return cmd
}

func (c *cli) webhooksRetryCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "retry ID DELIVERY_ID",
		Short: "Send a failed delivery again (same webhook-id and body, a new retry schedule)",
		Args:  cobra.ExactArgs(2),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			path := "/v1/webhooks/" + escape(args[0]) + "/deliveries/" + escape(args[1]) + "/retry"
			return c.show(cmd, "POST", path, nil, func(json.RawMessage) error {
				fmt.Fprintf(c.stdout, "delivery/%s queued again\n", args[1])
				return nil
			})
		}),
	}
}
