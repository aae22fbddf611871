package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

// admin is an admin account as the API shows it.
type admin struct {
	Username  string    `json:"username"`
	Role      string    `json:"role"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func validRole(r string) bool { return r == "admin" || r == "editor" || r == "viewer" }

func (c *cli) adminsCommand() *cobra.Command {
	return group("admins", "Manage admin accounts (admin role)",
		c.adminsCreateCommand(), c.adminsListCommand(), c.adminsSetRoleCommand(),
		c.adminsDisableCommand(true), c.adminsDisableCommand(false))
}

// adminDone is show's render for an answer holding one admin: a line saying what was
// done (verb, e.g. "created") to it.
func (c *cli) adminDone(verb string) func(raw json.RawMessage) error {
	return as("admin", func(a admin) error {
		fmt.Fprintf(c.stdout, "admin/%s %s (role %s, disabled %t)\n", a.Username, verb, a.Role, a.Disabled)
		return nil
	})
}

func (c *cli) adminsCreateCommand() *cobra.Command {
	var role, password string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "create USERNAME --role admin|editor|viewer [--password-stdin]",
		Short: "Create an admin account",
		Long: `Create an admin account. Roles: admin (everything), editor (campaigns), viewer (read
only). The username is stored trimmed and lower-cased. The password (12 characters to 72
bytes, not a common one) comes from --password-stdin, a prompt when stdin is a terminal,
or --password.`,
		Args: cobra.ExactArgs(1),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			if !validRole(role) {
				return usageErrorf("--role must be admin, editor or viewer, got %q", role)
			}
			pw, err := c.readPassword(password, cmd.Flags().Changed("password"), passwordStdin, "Password for the new admin "+args[0]+": ")
			if err != nil {
				return err
			}
			body := map[string]string{"username": args[0], "password": pw, "role": role}
			return c.show(cmd, "POST", "/v1/admins", body, c.adminDone("created"))
		}),
	}
	cmd.Flags().StringVar(&role, "role", "", "admin, editor or viewer")
	cmd.Flags().StringVar(&password, "password", "", "password (prefer --password-stdin or the prompt)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of stdin")
	return cmd
}

func (c *cli) adminsListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List admin accounts",
		Args:    cobra.NoArgs,
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return c.show(cmd, "GET", "/v1/admins", nil, as("admins", func(list struct {
				Admins []admin `json:"admins"`
			}) error {
				return c.table(cols("USERNAME", "ROLE", "DISABLED", "CREATED AT", "+UPDATED AT"),
					rowsOf(list.Admins, func(a admin) []string {
						return []string{a.Username, a.Role, strconv.FormatBool(a.Disabled), timeOr(&a.CreatedAt, "-"), timeOr(&a.UpdatedAt, "-")}
					}))
			}))
		}),
	}
}

// patchAdmin sends PATCH /v1/admins/{username} with body and prints the answer.
func (c *cli) patchAdmin(cmd *cobra.Command, username string, body map[string]any, verb string) error {
	return c.show(cmd, "PATCH", "/v1/admins/"+escape(username), body, c.adminDone(verb))
}

func (c *cli) adminsSetRoleCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "set-role USERNAME admin|editor|viewer",
		Short: "Change an admin's role",
		Args:  cobra.ExactArgs(2),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			if !validRole(args[1]) {
				return usageErrorf("role must be admin, editor or viewer, got %q", args[1])
			}
			return c.patchAdmin(cmd, args[0], map[string]any{"role": args[1]}, "updated")
		}),
	}
}

// adminsDisableCommand is disable (disabled true) or enable (false).
func (c *cli) adminsDisableCommand(disable bool) *cobra.Command {
	verb, past, short := "disable", "disabled", "Disable an admin account (its logins are refused)"
	if !disable {
		verb, past, short = "enable", "enabled", "Enable a disabled admin account"
	}
	return &cobra.Command{
		Use:   verb + " USERNAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return c.patchAdmin(cmd, args[0], map[string]any{"disabled": disable}, past)
		}),
	}
}
