package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// user is a loyalty user's state as the API shows it.
type user struct {
	UserID         string           `json:"user_id"`
	Tier           string           `json:"tier"`
	Points         int64            `json:"points"`
	LifetimePoints int64            `json:"lifetime_points"`
	PurchaseCount  int64            `json:"purchase_count"`
	TotalSpent     float64          `json:"total_spent"`
	FirstSeen      time.Time        `json:"first_seen"`
	LastPurchaseAt *time.Time       `json:"last_purchase_at"`
	EventCounts    map[string]int64 `json:"event_counts"`
	RewardCounts   map[string]int64 `json:"reward_counts"`
	Version        int64            `json:"version"`
	UpdatedAt      time.Time        `json:"updated_at"`
}

// rewardRow is one granted reward.
type rewardRow struct {
	ID              string         `json:"id"`
	CampaignID      string         `json:"campaign_id"`
	CampaignVersion int64          `json:"campaign_version"`
	EventID         string         `json:"event_id"`
	Type            string         `json:"type"`
	Points          int64          `json:"points"`
	Payload         map[string]any `json:"payload"`
	OccurredAt      time.Time      `json:"occurred_at"`
	CreatedAt       time.Time      `json:"created_at"`
}

// counts renders a map of counts as "a=1 b=2", sorted.
func counts(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func (c *cli) usersCommand() *cobra.Command {
	return group("users", "Inspect loyalty users, their rewards and coupon codes",
		c.usersGetCommand(), c.usersRewardsCommand(), c.usersCouponsCommand())
}

func (c *cli) usersGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get USER_ID",
		Short: "Show a user's loyalty state (any UTF-8 id)",
		Args:  cobra.ExactArgs(1),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return c.show(cmd, "GET", "/v1/users/"+escape(args[0]), nil, as("user", c.printUser))
		}),
	}
}

// printUser shows a user's loyalty state as aligned key: value lines.
func (c *cli) printUser(u user) error {
	return c.fields([][2]string{
		{"User", u.UserID}, {"Tier", u.Tier}, {"Points", strconv.FormatInt(u.Points, 10)},
		{"Lifetime points", strconv.FormatInt(u.LifetimePoints, 10)},
		{"Purchases", strconv.FormatInt(u.PurchaseCount, 10)},
		{"Total spent", strconv.FormatFloat(u.TotalSpent, 'f', 2, 64)},
		{"First seen", timeOr(&u.FirstSeen, "-")}, {"Last purchase", timeOr(u.LastPurchaseAt, "-")},
		{"Events", counts(u.EventCounts)}, {"Rewards", counts(u.RewardCounts)},
		{"Version", strconv.FormatInt(u.Version, 10)}, {"Updated", timeOr(&u.UpdatedAt, "-")},
	})
}

func (c *cli) usersRewardsCommand() *cobra.Command {
	var limit int
	var cursor string
	var all bool
	cmd := &cobra.Command{
		Use:   "rewards USER_ID",
		Short: "List a user's rewards, oldest first",
		Args:  cobra.ExactArgs(1),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			if limit < 1 || limit > 1000 {
				return usageErrorf("--limit must be from 1 to 1000, got %d", limit)
			}
			cl, err := c.authed()
			if err != nil {
				return err
			}
			var rewards []json.RawMessage
			next := cursor
			for {
				q := url.Values{"limit": {strconv.Itoa(limit)}}
				if next != "" {
					q.Set("cursor", next)
				}
				var page struct {
					Rewards    []json.RawMessage `json:"rewards"`
					NextCursor string            `json:"next_cursor"`
				}
				if _, err := cl.do(cmd.Context(), "GET", "/v1/users/"+escape(args[0])+"/rewards?"+q.Encode(), nil, nil, &page); err != nil {
					return err
				}
				rewards = append(rewards, page.Rewards...)
				next = page.NextCursor
				if !all || next == "" {
					break
				}
			}
			if rewards == nil {
				rewards = []json.RawMessage{}
			}
			if c.structured() {
				out := map[string]any{"rewards": rewards}
				if next != "" {
					out["next_cursor"] = next
				}
				return c.print(out)
			}
			rows := make([][]string, 0, len(rewards))
			for _, r := range rewards {
				var rw rewardRow
				if err := json.Unmarshal(r, &rw); err != nil {
					return fmt.Errorf("decode reward: %w", err)
				}
				payload := "-"
				if len(rw.Payload) > 0 {
					b, _ := json.Marshal(rw.Payload)
					payload = string(b)
				}
				rows = append(rows, []string{rw.ID, rw.CampaignID, strconv.FormatInt(rw.CampaignVersion, 10),
					rw.EventID, rw.Type, strconv.FormatInt(rw.Points, 10), timeOr(&rw.OccurredAt, "-"), timeOr(&rw.CreatedAt, "-"), payload})
			}
			if err := c.table(cols("ID", "CAMPAIGN", "VERSION", "EVENT", "TYPE", "POINTS", "OCCURRED AT", "+CREATED AT", "+PAYLOAD"), rows); err != nil {
				return err
			}
			if next != "" {
				fmt.Fprintf(c.stderr, "More rewards: --cursor %s (or --all)\n", next)
			}
			return nil
		}),
	}
	cmd.Flags().IntVar(&limit, "limit", 100, "rewards per page (1 to 1000)")
	cmd.Flags().StringVar(&cursor, "cursor", "", "next_cursor from a previous page")
	cmd.Flags().BoolVar(&all, "all", false, "fetch every page")
	return cmd
}

// coupon is a coupon code issued to a user, with its status.
type coupon struct {
	Code       string     `json:"code"`
	PoolID     string     `json:"pool_id"`
	CampaignID string     `json:"campaign_id"`
	Type       string     `json:"type"`
	Status     string     `json:"status"`
	IssuedAt   time.Time  `json:"issued_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	RedeemedAt *time.Time `json:"redeemed_at"`
	OrderID    string     `json:"order_id"`
	RewardID   string     `json:"reward_id"`
}

func (c *cli) usersCouponsCommand() *cobra.Command {
	var limit int
	var cursor string
	cmd := &cobra.Command{
		Use:   "coupons USER_ID",
		Short: "List the coupon codes issued to a user, oldest first, with their status",
		Args:  cobra.ExactArgs(1),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			if limit < 1 || limit > 1000 {
				return usageErrorf("--limit must be from 1 to 1000, got %d", limit)
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			return c.show(cmd, "GET", "/v1/users/"+escape(args[0])+"/coupons?"+q.Encode(), nil, as("coupons", func(page struct {
				Coupons    []coupon `json:"coupons"`
				NextCursor string   `json:"next_cursor"`
			}) error {
				err := c.table(cols("CODE", "POOL", "CAMPAIGN", "TYPE", "STATUS", "ISSUED AT", "EXPIRES AT", "ORDER", "+REDEEMED AT", "+REWARD"),
					rowsOf(page.Coupons, func(k coupon) []string {
						return []string{k.Code, k.PoolID, k.CampaignID, k.Type, k.Status, timeOr(&k.IssuedAt, "-"), timeOr(k.ExpiresAt, "-"),
							orDash(k.OrderID), timeOr(k.RedeemedAt, "-"), k.RewardID}
					}))
				if err == nil && page.NextCursor != "" {
					fmt.Fprintf(c.stderr, "More coupons: --cursor %s\n", page.NextCursor)
				}
				return err
			}))
		}),
	}
	cmd.Flags().IntVar(&limit, "limit", 100, "coupons per page (1 to 1000)")
	cmd.Flags().StringVar(&cursor, "cursor", "", "next_cursor from a previous page")
	return cmd
}
