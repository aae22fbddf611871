package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

// dlqEntry is a dead-letter entry as the admin API shows it.
type dlqEntry struct {
	ID         string          `json:"id"`
	Reason     string          `json:"reason"`
	Partition  int             `json:"partition"`
	Deliveries uint64          `json:"deliveries"`
	StreamSeq  uint64          `json:"stream_seq"`
	Subject    string          `json:"subject"`
	EventID    string          `json:"event_id"`
	Event      json.RawMessage `json:"event"`
	ParkedAt   time.Time       `json:"parked_at"`
}

func (c *cli) dlqCommand() *cobra.Command {
	return group("dlq", "Inspect, replay and discard events parked in the dead-letter stream (admin role)",
		c.dlqListCommand(), c.dlqReplayCommand(), c.dlqDeleteCommand())
}

func (c *cli) dlqListCommand() *cobra.Command {
	chunk := 500
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List every parked event, oldest first, with the reason it was parked",
		Args:    cobra.NoArgs,
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return listEvery(c, cmd, "/v1/dlq", "entries", chunk, func(list []dlqEntry) error {
				return c.table(cols("ID", "EVENT ID", "REASON", "DELIVERIES", "PARKED AT", "+SUBJECT", "+EVENTS SEQ", "+EVENT"),
					rowsOf(list, func(e dlqEntry) []string {
						return []string{e.ID, orDash(e.EventID), c.cut(e.Reason, 60), strconv.FormatUint(e.Deliveries, 10), timeOr(&e.ParkedAt, "-"),
							e.Subject, strconv.FormatUint(e.StreamSeq, 10), c.cut(string(e.Event), 80)}
					}))
			})
		}),
	}
	cmd.Flags().IntVar(&chunk, "chunk-size", chunk, "entries fetched per request (the list shows them all)")
	return cmd
}

func (c *cli) dlqReplayCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "replay ID",
		Short: "Publish a parked event to EVENTS again (same event id) and remove it from the DLQ",
		Args:  cobra.ExactArgs(1),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return c.show(cmd, "POST", "/v1/dlq/"+escape(args[0])+"/replay", nil, as("entry", func(e dlqEntry) error {
				fmt.Fprintf(c.stdout, "dlq/%s replayed (event %s)\n", e.ID, orDash(e.EventID))
				return nil
			}))
		}),
	}
}

func (c *cli) dlqDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Discard a parked event",
		Args:  cobra.ExactArgs(1),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return c.show(cmd, "DELETE", "/v1/dlq/"+escape(args[0]), nil, as("entry", func(e dlqEntry) error {
				fmt.Fprintf(c.stdout, "dlq/%s deleted (event %s)\n", e.ID, orDash(e.EventID))
				return nil
			}))
		}),
	}
}
