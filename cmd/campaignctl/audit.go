package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

// auditEntry is one change in the audit log.
type auditEntry struct {
	ID         int64           `json:"id"`
	Actor      string          `json:"actor"`
	Action     string          `json:"action"`
	TargetType string          `json:"target_type"`
	TargetID   string          `json:"target_id"`
	Before     json.RawMessage `json:"before,omitempty"`
	After      json.RawMessage `json:"after,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
}

func (c *cli) auditCommand() *cobra.Command {
	var actor, targetType, targetID string
	chunk := 500
	cmd := &cobra.Command{
		Use:   "audit [--actor A] [--target-type T] [--target-id ID]",
		Short: "List the audit log, oldest first: who changed what, when (admin role)",
		Args:  cobra.NoArgs,
		RunE: action(func(cmd *cobra.Command, args []string) error {
			if chunk < 1 || chunk > 1000 {
				return usageErrorf("--chunk-size must be from 1 to 1000, got %d", chunk)
			}
			q := url.Values{}
			for k, v := range map[string]string{"actor": actor, "target_type": targetType, "target_id": targetID} {
				if v != "" {
					q.Set(k, v)
				}
			}
			path := "/v1/audit"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			cl, err := c.authed()
			if err != nil {
				return err
			}
			raws, err := allPages(cmd.Context(), cl, path, "entries", chunk)
			if err != nil {
				return err
			}
			if c.structured() {
				return c.print(map[string]any{"entries": raws})
			}
			list := make([]auditEntry, len(raws))
			for i, r := range raws {
				if err := json.Unmarshal(r, &list[i]); err != nil {
					return fmt.Errorf("decode audit entries: %w", err)
				}
			}
			return c.table(cols("ID", "AT", "ACTOR", "ACTION", "TARGET", "+AFTER"),
				rowsOf(list, func(e auditEntry) []string {
					return []string{strconv.FormatInt(e.ID, 10), timeOr(&e.CreatedAt, "-"), e.Actor, e.Action, e.TargetType + "/" + e.TargetID,
						c.cut(string(e.After), 80)}
				}))
		}),
	}
	f := cmd.Flags()
	f.StringVar(&actor, "actor", "", "only changes by this admin")
	f.StringVar(&targetType, "target-type", "", "only changes of this kind of target (campaign, pool, webhook, api_key, admin, tiers, …)")
	f.StringVar(&targetID, "target-id", "", "only changes of this target")
	f.IntVar(&chunk, "chunk-size", chunk, "entries fetched per request (the list shows them all)")
	return cmd
}
