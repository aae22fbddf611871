package main

import (
	"encoding/json"
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
			return listEvery(c, cmd, path, "entries", chunk, func(list []auditEntry) error {
				return c.table(cols("ID", "AT", "ACTOR", "ACTION", "TARGET", "+AFTER"),
					rowsOf(list, func(e auditEntry) []string {
						return []string{strconv.FormatInt(e.ID, 10), timeOr(&e.CreatedAt, "-"), e.Actor, e.Action, e.TargetType + "/" + e.TargetID,
							c.cut(string(e.After), 80)}
					}))
			})
		}),
	}
	f := cmd.Flags()
	f.StringVar(&actor, "actor", "", "only changes by this admin")
	f.StringVar(&targetType, "target-type", "", "only changes of this kind of target (campaign, pool, webhook, api_key, admin, tiers, …)")
	f.StringVar(&targetID, "target-id", "", "only changes of this target")
	f.IntVar(&chunk, "chunk-size", chunk, "entries fetched per request (the list shows them all)")
	return cmd
}
