package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
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
	output string // --output: table, wide, json or yaml
}

// Output formats (--output).
const (
	outputTable = "table"
	outputWide  = "wide"
	outputJSON  = "json"
	outputYAML  = "yaml"
)

var outputFormats = []string{outputTable, outputWide, outputJSON, outputYAML}

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
	var quiet *exitStatus
	if errors.As(err, &quiet) {
		return quiet.code // the command has said what it had to
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
	case *cliError, *apiError, *notLoggedInError, *exitStatus:
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
		Short: "Administer Campaign Manager: campaigns, rules, API keys, admins, loyalty users, coupon pools and webhooks",
		Long: `campaignctl administers a Campaign Manager server over its admin HTTP API.

Log in once per server; the token is cached in the user's config dir (mode 0600), keyed
by the server URL with its case, default port and trailing slash normalised, and with
localhost, 127.0.0.1 and ::1 taken as the same loopback host.
Output (-o): table (default), wide (tables with more columns), json or yaml.
Exit codes: 0 ok, 1 server or other error (campaigns diff: differences found), 2 usage
error, 3 not logged in or 401, 4 not found.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.NoArgs,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(outputFormats, c.output) {
				return usageErrorf("--output must be one of %s, got %q", strings.Join(outputFormats, ", "), c.output)
			}
			if cmd.Annotations[offline] != "" || cmd.Name() == cobra.ShellCompRequestCmd || cmd.Name() == cobra.ShellCompNoDescRequestCmd {
				return nil // needs no server (completions ask it themselves): a bad --server must not stop it
			}
			s, err := normalizeServer(c.server)
			if err != nil {
				return err
			}
			c.server = s
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
	root.PersistentFlags().StringVarP(&c.output, "output", "o", outputTable, "output format: table, wide, json or yaml")
	_ = root.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return outputFormats, cobra.ShellCompDirectiveNoFileComp
	})
	root.AddCommand(
		c.versionCommand(),
		c.completionCommand(root),
		c.loginCommand(),
		c.logoutCommand(),
		c.campaignsCommand(),
		c.rulesCommand(),
		c.keysCommand(),
		c.adminsCommand(),
		c.usersCommand(),
		c.poolsCommand(),
		c.tiersCommand(),
		c.dlqCommand(),
		c.auditCommand(),
		c.webhooksCommand(),
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

// offline annotates commands that need no server (version, completion).
const offline = "campaignctl/offline"

// show is the shape of every command that prints one server answer: it sends one
// authenticated request (body nil for none) and, with --output json or yaml, prints the
// answer in that format; otherwise it leaves the answer to render (a table, fields or a
// line).
func (c *cli) show(cmd *cobra.Command, method, path string, body any, render func(raw json.RawMessage) error) error {
	cl, err := c.authed()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if _, err := cl.do(cmd.Context(), method, path, body, nil, &raw); err != nil {
		return err
	}
	if c.structured() {
		return c.print(raw)
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

// structured reports whether --output asks for json or yaml rather than text.
func (c *cli) structured() bool { return c.output == outputJSON || c.output == outputYAML }

// wide reports whether --output wide was asked for.
func (c *cli) wide() bool { return c.output == outputWide }

// print writes v (raw JSON bytes, or a value encoding/json encodes) as indented JSON,
// or as YAML with the fields in the same order.
func (c *cli) print(v any) error {
	raw, ok := v.(json.RawMessage)
	if !ok {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode output: %w", err)
		}
		raw = b
	}
	if c.output == outputYAML {
		return writeYAML(c.stdout, raw)
	}
	return writeJSON(c.stdout, raw)
}

// writeJSON writes raw JSON re-indented (as it is when it is not JSON).
func writeJSON(w io.Writer, raw json.RawMessage) error {
	var x any
	if err := json.Unmarshal(raw, &x); err != nil {
		_, err = w.Write(raw)
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(x)
}

// writeYAML writes raw JSON as block-style YAML, keeping the order of the fields (JSON is
// YAML: the document is parsed as it is, then printed without the flow style and quotes
// JSON needs; strings that would read as another type stay quoted).
func writeYAML(w io.Writer, raw json.RawMessage) error {
	var n yaml.Node
	if err := yaml.Unmarshal(raw, &n); err != nil {
		return fmt.Errorf("convert the answer to YAML: %w", err)
	}
	plain(&n)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return fmt.Errorf("write YAML: %w", err)
	}
	return enc.Close()
}

// plain clears the styles JSON brought (flow collections, quoted scalars) in n's tree.
func plain(n *yaml.Node) {
	n.Style = 0
	for _, k := range n.Content {
		plain(k)
	}
}

// column is a table's column; a wide one is shown only with --output wide.
type column struct {
	head string
	wide bool
}

// cols are columns named by heads; a head starting with "+" is wide-only.
func cols(heads ...string) []column {
	out := make([]column, len(heads))
	for i, h := range heads {
		wide := strings.HasPrefix(h, "+")
		out[i] = column{head: strings.TrimPrefix(h, "+"), wide: wide}
	}
	return out
}

// table writes rows (one cell per column) under the headers, aligned with
// text/tabwriter; wide columns are left out unless --output wide.
func (c *cli) table(columns []column, rows [][]string) error {
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	pick := func(cells []string) string {
		var out []string
		for i, col := range columns {
			if i < len(cells) && (!col.wide || c.wide()) {
				out = append(out, cells[i])
			}
		}
		return strings.Join(out, "\t")
	}
	heads := make([]string, len(columns))
	for i, col := range columns {
		heads[i] = col.head
	}
	fmt.Fprintln(tw, pick(heads))
	for _, r := range rows {
		fmt.Fprintln(tw, pick(r))
	}
	return tw.Flush()
}

// cut shortens s to n runes on one line for a table cell; with --output wide it is only
// put on one line.
func (c *cli) cut(s string, n int) string {
	if c.wide() {
		return strings.Join(strings.Fields(s), " ")
	}
	return shorten(s, n)
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
