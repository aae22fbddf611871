package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// termIsTerminal is term.IsTerminal, named for isTerminal.
var termIsTerminal = term.IsTerminal

// readPassword gets a password: from the flag, from stdin's first line with
// fromStdin, or from a prompt on stderr when stdin is a terminal.
func (c *cli) readPassword(flag string, flagSet, fromStdin bool, prompt string) (string, error) {
	switch {
	case flagSet && fromStdin:
		return "", usageErrorf("give --password or --password-stdin, not both")
	case flagSet:
		return flag, nil
	case fromStdin:
		line, err := bufio.NewReader(c.stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password from stdin: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", usageErrorf("--password-stdin: stdin held no password")
		}
		return pw, nil
	}
	f, ok := isTerminal(c.stdin)
	if !ok {
		return "", usageErrorf("no password: give --password-stdin (or --password), or run in a terminal to be prompted")
	}
	fmt.Fprint(c.stderr, prompt)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(c.stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if len(b) == 0 {
		return "", usageErrorf("empty password")
	}
	return string(b), nil
}

func (c *cli) loginCommand() *cobra.Command {
	var username, password string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login --username NAME [--password-stdin]",
		Short: "Log in to the server and cache the token",
		Long: `Exchange a username and password for an access token and cache it for this server
in the user's config dir (config.json, mode 0600). The password comes from --password-stdin
(first line of stdin), a prompt when stdin is a terminal, or --password (visible to other
users of the machine; avoid it).`,
		Args: cobra.NoArgs,
		RunE: action(func(cmd *cobra.Command, args []string) error {
			if username == "" {
				return usageErrorf("--username is required")
			}
			pw, err := c.readPassword(password, cmd.Flags().Changed("password"), passwordStdin, "Password for "+username+": ")
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("password") {
				fmt.Fprintln(c.stderr, "Warning: --password is visible to other users of this machine; prefer --password-stdin.")
			}
			var tok struct {
				AccessToken string `json:"access_token"`
				TokenType   string `json:"token_type"`
				ExpiresIn   int64  `json:"expires_in"`
			}
			_, err = newClient(c.server).do(cmd.Context(), "POST", "/v1/auth/token",
				map[string]string{"username": username, "password": pw}, nil, &tok)
			if err != nil {
				return err
			}
			if tok.AccessToken == "" {
				return fmt.Errorf("the server answered no access_token")
			}
			sess := session{Username: username, Token: tok.AccessToken}
			var ttl time.Duration
			if tok.ExpiresIn > 0 {
				ttl = time.Duration(tok.ExpiresIn) * time.Second
				sess.ExpiresAt = c.now().Add(ttl).UTC()
			}
			store, err := newConfigStore(c.getenv)
			if err != nil {
				return err
			}
			if err := store.put(c.server, sess); err != nil {
				return err
			}
			if c.structured() {
				return c.print(map[string]any{"server": c.server, "username": username, "expires_at": sess.ExpiresAt})
			}
			msg := fmt.Sprintf("Logged in to %s as %s", c.server, username)
			if ttl > 0 {
				msg += fmt.Sprintf(" (token valid for %s)", ttl)
			}
			fmt.Fprintln(c.stdout, msg)
			return nil
		}),
	}
	cmd.Flags().StringVarP(&username, "username", "u", "", "admin username")
	cmd.Flags().StringVarP(&password, "password", "p", "", "password (prefer --password-stdin or the prompt)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of stdin")
	return cmd
}

func (c *cli) logoutCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Forget the cached token for the server",
		Args:  cobra.NoArgs,
		RunE: action(func(cmd *cobra.Command, args []string) error {
			store, err := newConfigStore(c.getenv)
			if err != nil {
				return err
			}
			had, err := store.remove(c.server)
			if err != nil {
				return err
			}
			if had {
				fmt.Fprintf(c.stdout, "Logged out of %s\n", c.server)
			} else {
				fmt.Fprintf(c.stdout, "Not logged in to %s\n", c.server)
			}
			return nil
		}),
	}
}
