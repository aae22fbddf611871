package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// campaign is a campaign as the admin API shows it, for tables.
type campaign struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Rule        string     `json:"rule"`
	Reward      reward     `json:"reward"`
	Status      string     `json:"status"`
	StartsAt    *time.Time `json:"starts_at"`
	EndsAt      *time.Time `json:"ends_at"`
	Priority    int        `json:"priority"`
	Exclusive   bool       `json:"exclusive"`
	Limits      struct {
		PerUser       int64 `json:"per_user"`
		PerUserPerDay int64 `json:"per_user_per_day"`
		TotalRewards  int64 `json:"total_rewards"`
		TotalPoints   int64 `json:"total_points"`
	} `json:"limits"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

type reward struct {
	Type   string         `json:"type"`
	Points any            `json:"points"`
	Data   map[string]any `json:"data"`
}

func (r reward) String() string {
	if r.Points != nil && fmt.Sprint(r.Points) != "" {
		return r.Type + ": " + fmt.Sprint(r.Points)
	}
	return r.Type
}

func (c campaign) limits() string {
	var parts []string
	for _, l := range []struct {
		name string
		v    int64
	}{{"per_user", c.Limits.PerUser}, {"per_user_per_day", c.Limits.PerUserPerDay},
		{"total_rewards", c.Limits.TotalRewards}, {"total_points", c.Limits.TotalPoints}} {
		if l.v != 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", l.name, l.v))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// shorten cuts s to n runes on one line, for table cells.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func timeOr(t *time.Time, def string) string {
	if t == nil || t.IsZero() {
		return def
	}
	return t.UTC().Format(time.RFC3339)
}

func (c *cli) campaignsCommand() *cobra.Command {
	return group("campaigns", "Create, inspect and change campaigns",
		c.campaignsApplyCommand(),
		c.campaignsDiffCommand(),
		c.campaignsGetCommand(),
		c.campaignsListCommand(),
		c.campaignStatusCommand("activate", "activated", "Activate a campaign (it goes live at once)"),
		c.campaignStatusCommand("pause", "paused", "Pause a campaign"),
		c.campaignStatusCommand("archive", "archived", "Archive a campaign (PUT it with a status to bring it back)"),
		c.campaignsVersionsCommand(),
	)
}

// applyResult is what apply did (or, with DryRun, would do) to one campaign.
type applyResult struct {
	ID     string `json:"id"`
	Result string `json:"result"` // created, updated or unchanged
	// Version is the campaign's version after apply; with DryRun, the stored one (0 for
	// a campaign that would be created).
	Version int64    `json:"version"`
	Changed []string `json:"changed,omitempty"`
	DryRun  bool     `json:"dry_run,omitempty"`
}

// line is the result as apply prints it.
func (r applyResult) line() string {
	var s string
	switch {
	case !r.DryRun:
		s = fmt.Sprintf("campaign/%s %s (version %d)", r.ID, r.Result, r.Version)
	case r.Result == "created":
		s = fmt.Sprintf("campaign/%s created (dry run)", r.ID)
	default:
		s = fmt.Sprintf("campaign/%s %s (dry run; stored version %d)", r.ID, r.Result, r.Version)
	}
	if len(r.Changed) > 0 {
		s += "; changed: " + strings.Join(r.Changed, ", ")
	}
	return s
}

func (c *cli) campaignsApplyCommand() *cobra.Command {
	var file string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE [--dry-run]",
		Short: "Create or update campaigns from a YAML or JSON file (idempotent)",
		Long: `Create or update the campaign in FILE (YAML or JSON; "-" reads stdin), or each campaign
of a list. Each needs an id. A campaign that does not exist is created; one that exists is
replaced only when a field differs from the stored campaign (fields the file leaves out are
cleared, except status, which is kept), so applying the same file twice changes nothing
and makes no new version. With --dry-run nothing is stored: apply says what it would do
and has the server check each rule and points expression it would send.`,
		Args: cobra.NoArgs,
		RunE: action(func(cmd *cobra.Command, args []string) error {
			docs, list, err := c.readCampaigns(file, "apply")
			if err != nil {
				return err
			}
			cl, err := c.authed()
			if err != nil {
				return err
			}
			var results []applyResult
			for _, d := range docs {
				res, err := applyCampaign(cmd.Context(), cl, d, dryRun)
				if err != nil {
					return fmt.Errorf("campaign %s: %w", d["id"], err)
				}
				results = append(results, res)
				if !c.structured() {
					fmt.Fprintln(c.stdout, res.line())
				}
			}
			if c.structured() {
				if list {
					return c.print(results)
				}
				return c.print(results[0])
			}
			return nil
		}),
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "YAML or JSON file with a campaign or a list of them (- for stdin)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "store nothing: say what apply would do and have the server check the rules")
	return cmd
}

// readCampaigns reads the campaigns of file (see readInput); each needs an id, which
// verb uses to find the stored campaign.
func (c *cli) readCampaigns(file, verb string) ([]map[string]any, bool, error) {
	docs, list, err := c.readInput(file)
	if err != nil {
		return nil, false, err
	}
	for i, d := range docs {
		if id, _ := d["id"].(string); id == "" {
			return nil, false, usageErrorf("%s: campaign %d has no id; %s needs one to find the campaign on the server", file, i+1, verb)
		}
	}
	return docs, list, nil
}

// applyBody is what apply sends of desired: everything but the server-managed fields.
func applyBody(desired map[string]any) map[string]any {
	body := make(map[string]any, len(desired))
	for k, v := range desired {
		if !serverManaged[k] {
			body[k] = v
		}
	}
	return body
}

// storedCampaign gets campaign id as stored, or nil when there is none.
func storedCampaign(ctx context.Context, cl *client, id string) (map[string]any, error) {
	var stored map[string]any
	_, err := cl.do(ctx, "GET", "/v1/campaigns/"+escape(id), nil, nil, &stored)
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusNotFound {
		return nil, nil
	}
	return stored, err
}

// checkRule has the server compile the rule and points of a campaign body (the
// dry-run's check); a bad one is the server's problem, with line, column and snippet.
func checkRule(ctx context.Context, cl *client, body map[string]any) error {
	req := map[string]any{}
	if r, ok := body["rule"]; ok {
		req["rule"] = r
	}
	if rw, ok := body["reward"].(map[string]any); ok && rw["points"] != nil {
		req["points"] = rw["points"]
	}
	if len(req) == 0 {
		return nil
	}
	_, err := cl.do(ctx, "POST", "/v1/rules/validate", req, nil, nil)
	return err
}

// applyCampaign creates desired when its id is unknown, else replaces it (with If-Match)
// only when changedFields finds a difference. With dryRun it stores nothing, has the
// server check the rule it would send, and reports what it would do.
func applyCampaign(ctx context.Context, cl *client, desired map[string]any, dryRun bool) (applyResult, error) {
	id := desired["id"].(string)
	body := applyBody(desired)
	stored, err := storedCampaign(ctx, cl, id)
	if err != nil {
		return applyResult{}, err
	}
	if stored == nil {
		if dryRun {
			return applyResult{ID: id, Result: "created", DryRun: true}, checkRule(ctx, cl, body)
		}
		var created campaign
		if _, err := cl.do(ctx, "POST", "/v1/campaigns", body, nil, &created); err != nil {
			return applyResult{}, err
		}
		return applyResult{ID: created.ID, Result: "created", Version: created.Version}, nil
	}
	version, _ := strconv.ParseInt(fmt.Sprint(stored["version"]), 10, 64)
	changed := changedFields(body, stored)
	if len(changed) == 0 {
		return applyResult{ID: id, Result: "unchanged", Version: version, DryRun: dryRun}, nil
	}
	if dryRun {
		return applyResult{ID: id, Result: "updated", Version: version, Changed: changed, DryRun: true}, checkRule(ctx, cl, body)
	}
	hdr := http.Header{}
	if version > 0 {
		hdr.Set("If-Match", strconv.Quote(strconv.FormatInt(version, 10)))
	}
	var updated campaign
	_, err = cl.do(ctx, "PUT", "/v1/campaigns/"+escape(id), body, hdr, &updated)
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusPreconditionFailed {
		return applyResult{}, fmt.Errorf("changed on the server while applying (version %d is no longer current); apply again: %w", version, err)
	}
	if err != nil {
		return applyResult{}, err
	}
	return applyResult{ID: id, Result: "updated", Version: updated.Version, Changed: changed}, nil
}

func (c *cli) campaignsGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "get ID",
		Short:             "Show a campaign",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: c.completeCampaignIDs,
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return c.show(cmd, "GET", "/v1/campaigns/"+escape(args[0]), nil, as("campaign", c.printCampaign))
		}),
	}
}

// printCampaign shows one campaign as aligned key: value lines.
func (c *cli) printCampaign(k campaign) error {
	kv := [][2]string{
		{"ID", k.ID}, {"Name", k.Name}, {"Description", k.Description},
		{"Status", k.Status}, {"Version", strconv.FormatInt(k.Version, 10)},
		{"Priority", strconv.Itoa(k.Priority)}, {"Exclusive", strconv.FormatBool(k.Exclusive)},
		{"Rule", strings.Join(strings.Fields(k.Rule), " ")}, {"Reward", k.Reward.String()},
	}
	if len(k.Reward.Data) > 0 {
		d, _ := json.Marshal(k.Reward.Data)
		kv = append(kv, [2]string{"Reward data", string(d)})
	}
	kv = append(kv,
		[2]string{"Starts", timeOr(k.StartsAt, "-")}, [2]string{"Ends", timeOr(k.EndsAt, "-")},
		[2]string{"Limits", k.limits()},
		[2]string{"Created", timeOr(&k.CreatedAt, "-")}, [2]string{"Updated", timeOr(&k.UpdatedAt, "-")})
	return c.fields(kv)
}

// campaignPage is the page size campaignctl asks GET /v1/campaigns for by default (the
// most the server gives).
const campaignPage = 1000

// allCampaigns fetches every campaign, oldest first, chunk at a time.
func allCampaigns(ctx context.Context, cl *client, chunk int) ([]json.RawMessage, error) {
	return allPages(ctx, cl, "/v1/campaigns", "campaigns", chunk)
}

// listEvery answers a list command: it fetches every item of the paged list at path (its
// items under key, chunk per request, 1 to 1000) and prints them as they came with -o
// json|yaml (under key), else decoded into T for render.
func listEvery[T any](c *cli, cmd *cobra.Command, path, key string, chunk int, render func([]T) error) error {
	if chunk < 1 || chunk > 1000 {
		return usageErrorf("--chunk-size must be from 1 to 1000, got %d", chunk)
	}
	cl, err := c.authed()
	if err != nil {
		return err
	}
	raws, err := allPages(cmd.Context(), cl, path, key, chunk)
	if err != nil {
		return err
	}
	if c.structured() {
		return c.print(map[string]any{key: raws})
	}
	items := make([]T, len(raws))
	for i, r := range raws {
		if err := json.Unmarshal(r, &items[i]); err != nil {
			return fmt.Errorf("decode %s: %w", key, err)
		}
	}
	return render(items)
}

// allPages fetches every item of the paged list at path (its items under key), oldest
// first, chunk at a time, following next_cursor from page to page.
func allPages(ctx context.Context, cl *client, path, key string, chunk int) ([]json.RawMessage, error) {
	out := []json.RawMessage{}
	for cursor := ""; ; {
		q := url.Values{"limit": {strconv.Itoa(chunk)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page map[string]json.RawMessage
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&" // path has a query of its own
		}
		if _, err := cl.do(ctx, "GET", path+sep+q.Encode(), nil, nil, &page); err != nil {
			return nil, err
		}
		var items []json.RawMessage
		var next string
		if err := json.Unmarshal(page[key], &items); err != nil && page[key] != nil {
			return nil, fmt.Errorf("GET %s: %s: %w", path, key, err)
		}
		if err := json.Unmarshal(page["next_cursor"], &next); err != nil && page["next_cursor"] != nil {
			return nil, fmt.Errorf("GET %s: next_cursor: %w", path, err)
		}
		out = append(out, items...)
		if next == "" || next == cursor {
			return out, nil
		}
		cursor = next
	}
}

func (c *cli) campaignsListCommand() *cobra.Command {
	chunk := campaignPage
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List every campaign, oldest first, archived ones included",
		Args:    cobra.NoArgs,
		RunE: action(func(cmd *cobra.Command, args []string) error {
			if chunk < 1 || chunk > campaignPage {
				return usageErrorf("--chunk-size must be from 1 to %d, got %d", campaignPage, chunk)
			}
			cl, err := c.authed()
			if err != nil {
				return err
			}
			raws, err := allCampaigns(cmd.Context(), cl, chunk)
			if err != nil {
				return err
			}
			if c.structured() {
				return c.print(map[string]any{"campaigns": raws})
			}
			list := make([]campaign, len(raws))
			for i, r := range raws {
				if err := json.Unmarshal(r, &list[i]); err != nil {
					return fmt.Errorf("decode campaigns: %w", err)
				}
			}
			return c.table(cols("ID", "NAME", "STATUS", "VERSION", "PRIORITY", "REWARD", "RULE",
				"+EXCLUSIVE", "+LIMITS", "+STARTS", "+ENDS", "+UPDATED AT"),
				rowsOf(list, func(k campaign) []string {
					return []string{k.ID, c.cut(k.Name, 30), k.Status, strconv.FormatInt(k.Version, 10),
						strconv.Itoa(k.Priority), c.cut(k.Reward.String(), 30), c.cut(k.Rule, 50),
						strconv.FormatBool(k.Exclusive), k.limits(), timeOr(k.StartsAt, "-"), timeOr(k.EndsAt, "-"), timeOr(&k.UpdatedAt, "-")}
				}))
		}),
	}
	cmd.Flags().IntVar(&chunk, "chunk-size", campaignPage, "campaigns fetched per request (the list shows them all, like kubectl's --chunk-size)")
	return cmd
}

// campaignStatusCommand is activate, pause or archive: a POST (DELETE for archive) that
// answers the campaign.
func (c *cli) campaignStatusCommand(verb, past, short string) *cobra.Command {
	return &cobra.Command{
		Use:               verb + " ID",
		Short:             short,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: c.completeCampaignIDs,
		RunE: action(func(cmd *cobra.Command, args []string) error {
			method, path := "POST", "/v1/campaigns/"+escape(args[0])+"/"+verb
			if verb == "archive" {
				method, path = "DELETE", "/v1/campaigns/"+escape(args[0])
			}
			return c.show(cmd, method, path, nil, as("campaign", func(k campaign) error {
				fmt.Fprintf(c.stdout, "campaign/%s %s (status %s, version %d)\n", k.ID, past, k.Status, k.Version)
				return nil
			}))
		}),
	}
}

// campaignVersion is one saved version of a campaign, as campaigns versions lists it.
type campaignVersion struct {
	Version   int64     `json:"version"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	Campaign  campaign  `json:"campaign"`
}

func (c *cli) campaignsVersionsCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "versions ID",
		Short:             "List every saved version of a campaign, oldest first",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: c.completeCampaignIDs,
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return c.show(cmd, "GET", "/v1/campaigns/"+escape(args[0])+"/versions", nil, as("versions", func(list struct {
				Versions []campaignVersion `json:"versions"`
			}) error {
				return c.table(cols("VERSION", "CREATED BY", "CREATED AT", "STATUS", "REWARD", "RULE", "+NAME", "+PRIORITY", "+LIMITS"),
					rowsOf(list.Versions, func(v campaignVersion) []string {
						return []string{strconv.FormatInt(v.Version, 10), v.CreatedBy, timeOr(&v.CreatedAt, "-"),
							v.Campaign.Status, c.cut(v.Campaign.Reward.String(), 30), c.cut(v.Campaign.Rule, 50),
							v.Campaign.Name, strconv.Itoa(v.Campaign.Priority), v.Campaign.limits()}
					}))
			}))
		}),
	}
}
