package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// apiKey is an API key as the admin API lists it (never the secret).
type apiKey struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
	Key       string     `json:"key"`
}

func (c *cli) keysCommand() *cobra.Command {
	return group("keys", "Manage storefront API keys (admin role)",
		c.keysCreateCommand(), c.keysListCommand(), c.keysRevokeCommand())
}

func (c *cli) keysCreateCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "create --name NAME",
		Short: "Create an API key; the secret is shown only now",
		Args:  cobra.NoArgs,
		RunE: action(func(cmd *cobra.Command, args []string) error {
			if name == "" {
				return usageErrorf("--name is required")
			}
			return c.show(cmd, "POST", "/v1/api-keys", map[string]string{"name": name}, as("key", func(k apiKey) error {
				if err := c.fields([][2]string{{"ID", k.ID}, {"Name", k.Name}, {"Key", k.Key}}); err != nil {
					return err
				}
				fmt.Fprintln(c.stderr, "Store the key now: the server shows it only once.")
				return nil
			}))
		}),
	}
	cmd.Flags().StringVar(&name, "name", "", "what the key is for, e.g. the storefront's name")
	return cmd
}

func (c *cli) keysListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List API keys (no secrets)",
		Args:    cobra.NoArgs,
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return c.show(cmd, "GET", "/v1/api-keys", nil, as("keys", func(list struct {
				Keys []apiKey `json:"api_keys"`
			}) error {
				return c.table(cols("ID", "NAME", "PREFIX", "CREATED BY", "CREATED AT", "REVOKED AT"),
					rowsOf(list.Keys, func(k apiKey) []string {
						return []string{k.ID, c.cut(k.Name, 40), k.Prefix, k.CreatedBy,
							timeOr(&k.CreatedAt, "-"), timeOr(k.RevokedAt, "-")}
					}))
			}))
		}),
	}
}

func (c *cli) keysRevokeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key",
		Args:  cobra.ExactArgs(1),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return c.show(cmd, "DELETE", "/v1/api-keys/"+escape(args[0]), nil, func(json.RawMessage) error {
				fmt.Fprintf(c.stdout, "key/%s revoked\n", args[0])
				return nil
			})
		}),
	}
}
