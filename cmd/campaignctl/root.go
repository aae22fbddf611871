package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// defaultServer is used when neither --server nor CAMPAIGN_SERVER is set.
const defaultServer = "http://127.0.0.1:8080"

// cli is one invocation's environment and global flags, shared by every command.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time

	server string // --server, normalised in PersistentPreRunE
	output string // --output: table or json
}

// run executes campaignctl with args (without the program name) and returns the exit
// code. It blocks until the command is done or ctx ends.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, now: time.Now}
	root := c.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	if !isOurs(err) {
		code = exitUsage // cobra's own errors: unknown command or flag, wrong arguments
	}
	fmt.Fprintf(stderr, "Error: %v\n", err)
	if code == exitUsage {
		fmt.Fprintln(stderr, "Run 'campaignctl --help' for usage.")
	}
	return code
}

// isOurs reports whether err comes from a command's own code rather than cobra's parsing.
func isOurs(err error) bool {
	switch err.(type) {
	case *cliError, *apiError, *notLoggedInError:
		return true
	}
	return false
}

// action wraps a command body so that every error it returns is typed: errors without
// an exit code of their own become exit 1.
func action(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := f(cmd, args)
		if err == nil || isOurs(err) {
			return err
		}
		return &cliError{code: exitCode(err), err: err}
	}
}

// group returns a command that only holds subcommands: alone it prints help, with an
// unknown subcommand it is a usage error.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(subs...)
	return cmd
}

func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "campaignctl",
		Short: "Administer Campaign Manager: campaigns, rules, API keys, admins and loyalty users",
		Long: `campaignctl administers a Campaign Manager server over its admin HTTP API.

Log in once per server; the token is cached in the user's config dir (mode 0600).
Exit codes: 0 ok, 1 server or other error, 2 usage error, 3 not logged in or 401, 4 not found.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.NoArgs,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			s, err := normalizeServer(c.server)
			if err != nil {
				return err
			}
			c.server = s
			switch c.output {
			case "table", "json":
			default:
				return usageErrorf("--output must be table or json, got %q", c.output)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &cliError{code: exitUsage, err: err}
	})
	server := c.getenv("CAMPAIGN_SERVER")
	if server == "" {
		server = defaultServer
	}
	root.PersistentFlags().StringVarP(&c.server, "server", "s", server, "campaignd URL (env CAMPAIGN_SERVER)")
	root.PersistentFlags().StringVarP(&c.output, "output", "o", "table", "output format: table or json")
	root.AddCommand(
		c.loginCommand(),
		c.logoutCommand(),
		c.campaignsCommand(),
		c.rulesCommand(),
		c.keysCommand(),
		c.adminsCommand(),
		c.usersCommand(),
	)
	return root
}

// authed returns a client carrying the cached token for the server.
func (c *cli) authed() (*client, error) {
	store, err := newConfigStore(c.getenv)
	if err != nil {
		return nil, err
	}
	tok, err := store.token(c.server, c.now())
	if err != nil {
		return nil, err
	}
	cl := newClient(c.server)
	cl.token = tok
	return cl, nil
}

// show is the shape of every command that prints one server answer: it sends one
// authenticated request (body nil for none) and, with --output json, prints the answer
// re-indented; otherwise it leaves the answer to render (a table, fields or a line).
func (c *cli) show(cmd *cobra.Command, method, path string, body any, render func(raw json.RawMessage) error) error {
	cl, err := c.authed()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if _, err := cl.do(cmd.Context(), method, path, body, nil, &raw); err != nil {
		return err
	}
	if c.json() {
		return c.printJSON(raw)
	}
	return render(raw)
}

// as returns a render func for show that decodes the answer into a T and passes it to f.
// what names the answer in a decode error ("decode what: …").
func as[T any](what string, f func(T) error) func(raw json.RawMessage) error {
	return func(raw json.RawMessage) error {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("decode %s: %w", what, err)
		}
		return f(v)
	}
}

// rowsOf makes one table row of each item, for table.
func rowsOf[T any](items []T, row func(T) []string) [][]string {
	rows := make([][]string, 0, len(items))
	for _, it := range items {
		rows = append(rows, row(it))
	}
	return rows
}

// json reports whether --output json was asked for.
func (c *cli) json() bool { return c.output == "json" }

// printJSON writes v indented, or raw JSON bytes re-indented.
func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if raw, ok := v.(json.RawMessage); ok {
		var x any
		if err := json.Unmarshal(raw, &x); err != nil {
			_, err = c.stdout.Write(raw)
			return err
		}
		v = x
	}
	return enc.Encode(v)
}

// table writes rows under header, aligned with text/tabwriter.
func (c *cli) table(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// fields writes key: value lines, aligned.
func (c *cli) fields(kv [][2]string) error {
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	for _, p := range kv {
		fmt.Fprintf(tw, "%s:\t%s\n", p[0], p[1])
	}
	return tw.Flush()
}

// isTerminal reports whether r is a terminal, for password prompts.
func isTerminal(r io.Reader) (*os.File, bool) {
	f, ok := r.(*os.File)
	if !ok {
		return nil, false
	}
	return f, termIsTerminal(int(f.Fd()))
}
