package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// pool is a coupon code pool as the admin API shows it, with its counts.
type pool struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Pattern     string     `json:"pattern"`
	ExpiresAt   *time.Time `json:"expires_at"`
	LowWater    int64      `json:"low_water"`
	Low         bool       `json:"low"`
	Total       int64      `json:"total"`
	Issued      int64      `json:"issued"`
	Redeemed    int64      `json:"redeemed"`
	Expired     int64      `json:"expired"`
	Left        int64      `json:"left"`
	CreatedBy   string     `json:"created_by"`
	CreatedAt   time.Time  `json:"created_at"`
}

// codesResult is the answer to an import or a generation.
type codesResult struct {
	PoolID     string   `json:"pool_id"`
	Added      int64    `json:"added"`
	Duplicates int64    `json:"duplicates"`
	Examples   []string `json:"duplicate_examples,omitempty"`
	Repeated   int64    `json:"repeated"`
	Total      int64    `json:"total"`
	Left       int64    `json:"left"`
}

// line is the result as import and generate print it.
func (r codesResult) line() string {
	s := fmt.Sprintf("pool/%s: %d codes added", r.PoolID, r.Added)
	if r.Duplicates > 0 {
		s += fmt.Sprintf(", %d left out that exist already (e.g. %s)", r.Duplicates, strings.Join(r.Examples, ", "))
	}
	if r.Repeated > 0 {
		s += fmt.Sprintf(", %d repeated in the file", r.Repeated)
	}
	return s + fmt.Sprintf("; %d codes, %d left", r.Total, r.Left)
}

// Import limits: the server takes at most maxImportCodes codes and 8 MiB per request;
// campaignctl sends a file in chunks well below both.
const (
	maxImportCodes = 100_000
	maxImportBytes = 4 << 20
)

func (c *cli) poolsCommand() *cobra.Command {
	return group("pools", "Manage coupon code pools: create, list, show, update, delete, import and generate codes",
		c.poolsCreateCommand(), c.poolsListCommand(), c.poolsShowCommand(), c.poolsUpdateCommand(), c.poolsDeleteCommand(),
		c.poolsImportCommand(), c.poolsGenerateCommand())
}

// expiryFlag parses an --expires-at value (RFC 3339; "" for none).
func expiryFlag(v string) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, usageErrorf("--expires-at must be an RFC 3339 time such as 2026-12-31T23:59:59Z, got %q", v)
	}
	return &t, nil
}

func (c *cli) poolsCreateCommand() *cobra.Command {
	var id, name, description, pattern, expires string
	var count int
	var lowWater int64
	cmd := &cobra.Command{
		Use:   "create --name NAME [--id ID] [--pattern SHIP-####-#### --count N]",
		Short: "Create a pool, generating --count codes from --pattern (editor role)",
		Long: `Create a coupon code pool. Each '#' of --pattern becomes a random character of
23456789ABCDEFGHJKMNPQRSTUVWXYZ (no look-alikes 0/O, 1/I/L); other characters stay.
Without --count the pool starts empty: import codes or generate them later.`,
		Args: cobra.NoArgs,
		RunE: action(func(cmd *cobra.Command, args []string) error {
			if name == "" {
				return usageErrorf("--name is required")
			}
			exp, err := expiryFlag(expires)
			if err != nil {
				return err
			}
			body := map[string]any{"name": name, "description": description, "pattern": pattern, "count": count}
			if id != "" {
				body["id"] = id
			}
			if exp != nil {
				body["expires_at"] = exp
			}
			if cmd.Flags().Changed("low-water") {
				body["low_water"] = lowWater
			}
			return c.show(cmd, "POST", "/v1/pools", body, as("pool", func(p pool) error {
				fmt.Fprintf(c.stdout, "pool/%s created (%d codes)\n", p.ID, p.Total)
				return nil
			}))
		}),
	}
	f := cmd.Flags()
	f.StringVar(&id, "id", "", "pool id (a slug; made from the name when absent)")
	f.StringVar(&name, "name", "", "what the pool is for")
	f.StringVar(&description, "description", "", "a longer description")
	f.StringVar(&pattern, "pattern", "", "pattern of generated codes, e.g. SHIP-####-####")
	f.IntVar(&count, "count", 0, "codes to generate from --pattern now")
	f.StringVar(&expires, "expires-at", "", "expiry (RFC 3339) of the codes added without one")
	f.Int64Var(&lowWater, "low-water", 0, "the pool is low at or below this many codes left (default: the server's CAMPAIGN_POOL_LOW_WATER)")
	return cmd
}

func (c *cli) poolsListCommand() *cobra.Command {
	chunk := 1000
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List every pool with its counts, oldest first",
		Args:    cobra.NoArgs,
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return listEvery(c, cmd, "/v1/pools", "pools", chunk, func(list []pool) error {
				return c.table(cols("ID", "NAME", "TOTAL", "ISSUED", "REDEEMED", "LEFT", "LOW WATER", "LOW", "+EXPIRED", "+PATTERN", "+EXPIRES AT", "+CREATED AT"),
					rowsOf(list, func(p pool) []string {
						return []string{p.ID, c.cut(p.Name, 30), itoa(p.Total), itoa(p.Issued), itoa(p.Redeemed), itoa(p.Left), itoa(p.LowWater),
							strconv.FormatBool(p.Low), itoa(p.Expired), orDash(p.Pattern), timeOr(p.ExpiresAt, "-"), timeOr(&p.CreatedAt, "-")}
					}))
			})
		}),
	}
	cmd.Flags().IntVar(&chunk, "chunk-size", chunk, "pools fetched per request (the list shows them all)")
	return cmd
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (c *cli) poolsShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "show ID",
		Aliases: []string{"get"},
		Short:   "Show a pool with its counts: issued, redeemed, left",
		Args:    cobra.ExactArgs(1),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return c.show(cmd, "GET", "/v1/pools/"+escape(args[0]), nil, as("pool", func(p pool) error {
				return c.fields([][2]string{
					{"ID", p.ID}, {"Name", p.Name}, {"Description", orDash(p.Description)}, {"Pattern", orDash(p.Pattern)},
					{"Expires at", timeOr(p.ExpiresAt, "-")}, {"Total", itoa(p.Total)}, {"Issued", itoa(p.Issued)},
					{"Redeemed", itoa(p.Redeemed)}, {"Expired", itoa(p.Expired)}, {"Left", itoa(p.Left)},
					{"Low water", itoa(p.LowWater)}, {"Low", strconv.FormatBool(p.Low)},
					{"Created", timeOr(&p.CreatedAt, "-") + " by " + p.CreatedBy},
				})
			}))
		}),
	}
}

func (c *cli) poolsUpdateCommand() *cobra.Command {
	var name, description, pattern, expires string
	var lowWater int64
	var noExpiry bool
	cmd := &cobra.Command{
		Use:   "update ID [--name N] [--description D] [--pattern P] [--expires-at T | --no-expiry] [--low-water N]",
		Short: "Change a pool's name, description, pattern, expiry of codes added later or low-water mark (editor role)",
		Args:  cobra.ExactArgs(1),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			body := map[string]any{}
			for flag, v := range map[string]string{"name": name, "description": description, "pattern": pattern} {
				if cmd.Flags().Changed(flag) {
					body[flag] = v
				}
			}
			switch {
			case noExpiry && cmd.Flags().Changed("expires-at"):
				return usageErrorf("--expires-at and --no-expiry exclude each other")
			case noExpiry:
				body["expires_at"] = nil
			case cmd.Flags().Changed("expires-at"):
				exp, err := expiryFlag(expires)
				if err != nil || exp == nil {
					return usageErrorf("--expires-at must be an RFC 3339 time such as 2026-12-31T23:59:59Z, got %q", expires)
				}
				body["expires_at"] = exp
			}
			if cmd.Flags().Changed("low-water") {
				body["low_water"] = lowWater
			}
			if len(body) == 0 {
				return usageErrorf("nothing to change: give --name, --description, --pattern, --expires-at, --no-expiry or --low-water")
			}
			return c.show(cmd, "PATCH", "/v1/pools/"+escape(args[0]), body, as("pool", func(p pool) error {
				fmt.Fprintf(c.stdout, "pool/%s updated (low water %d, %d left)\n", p.ID, p.LowWater, p.Left)
				return nil
			}))
		}),
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "new name")
	f.StringVar(&description, "description", "", "new description")
	f.StringVar(&pattern, "pattern", "", "new default pattern of generated codes (\"\": none)")
	f.StringVar(&expires, "expires-at", "", "expiry (RFC 3339) of codes added from now on without one; codes added already keep theirs")
	f.BoolVar(&noExpiry, "no-expiry", false, "codes added from now on without an expiry do not expire")
	f.Int64Var(&lowWater, "low-water", 0, "the pool is low at or below this many codes left")
	return cmd
}

func (c *cli) poolsDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a pool none of whose codes was issued and that no campaign (not archived) names, with its free codes",
		Args:  cobra.ExactArgs(1),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return c.show(cmd, "DELETE", "/v1/pools/"+escape(args[0]), nil, as("pool", func(p pool) error {
				fmt.Fprintf(c.stdout, "pool/%s deleted (%d free codes with it)\n", p.ID, p.Total)
				return nil
			}))
		}),
	}
}

func (c *cli) poolsGenerateCommand() *cobra.Command {
	var pattern, expires string
	var count int
	cmd := &cobra.Command{
		Use:   "generate ID --count N [--pattern P]",
		Short: "Generate codes into a pool from a pattern (the pool's by default)",
		Args:  cobra.ExactArgs(1),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			if count < 1 {
				return usageErrorf("--count is required (1 to %d)", maxImportCodes)
			}
			exp, err := expiryFlag(expires)
			if err != nil {
				return err
			}
			body := map[string]any{"count": count}
			if pattern != "" {
				body["pattern"] = pattern
			}
			if exp != nil {
				body["expires_at"] = exp
			}
			return c.show(cmd, "POST", "/v1/pools/"+escape(args[0])+"/generate", body, as("result", func(r codesResult) error {
				fmt.Fprintln(c.stdout, r.line())
				return nil
			}))
		}),
	}
	cmd.Flags().IntVar(&count, "count", 0, "codes to generate")
	cmd.Flags().StringVar(&pattern, "pattern", "", "pattern, e.g. SHIP-####-#### (default: the pool's)")
	cmd.Flags().StringVar(&expires, "expires-at", "", "expiry (RFC 3339) of these codes (default: the pool's)")
	return cmd
}

func (c *cli) poolsImportCommand() *cobra.Command {
	var file, expires string
	chunk := 10_000
	cmd := &cobra.Command{
		Use:   "import ID -f FILE",
		Short: "Import codes into a pool from a file (- for stdin), one code per line",
		Long: `Import codes into a pool: one code per line, optionally followed by a comma and its
expiry (RFC 3339); blank lines and lines starting with '#' are skipped. The file is read
line by line and sent in chunks of --chunk-size codes. Codes are case-insensitive (stored
upper-case); codes held twice, and codes that exist already in any pool, are added once
and counted.`,
		Args: cobra.ExactArgs(1),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return usageErrorf("-f FILE is required (- for stdin)")
			}
			if chunk < 1 || chunk > maxImportCodes {
				return usageErrorf("--chunk-size must be from 1 to %d, got %d", maxImportCodes, chunk)
			}
			exp, err := expiryFlag(expires)
			if err != nil {
				return err
			}
			cl, err := c.authed()
			if err != nil {
				return err
			}
			in := c.stdin
			if file != "-" {
				f, err := os.Open(file)
				if err != nil {
					return usageErrorf("read %s: %v", file, err)
				}
				defer f.Close() //nolint:errcheck // read only
				in = f
			}
			imp := &codeImport{cl: cl, path: "/v1/pools/" + escape(args[0]) + "/codes", file: file, chunk: chunk, expiry: exp}
			total, err := imp.run(cmd.Context(), in)
			if err != nil {
				return err
			}
			if c.structured() {
				return c.print(total)
			}
			fmt.Fprintln(c.stdout, total.line())
			return nil
		}),
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "file of codes, one per line (- for stdin)")
	cmd.Flags().StringVar(&expires, "expires-at", "", "expiry (RFC 3339) of the codes without one on their line (default: the pool's)")
	cmd.Flags().IntVar(&chunk, "chunk-size", chunk, "codes sent per request")
	return cmd
}

// codeImport sends a file of codes to a pool chunk by chunk, remembering which line of
// the file each line sent came from, so that a refused line is named by its place in
// the file.
type codeImport struct {
	cl     *client
	path   string
	file   string
	chunk  int
	expiry *time.Time

	body  strings.Builder
	lines []int // file line of each line in body
	total codesResult
}

// run reads in and sends every chunk; it returns the sums of the answers.
func (m *codeImport) run(ctx context.Context, in io.Reader) (codesResult, error) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 4096), 4096)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if m.expiry != nil && !strings.Contains(line, ",") {
			line += "," + m.expiry.Format(time.RFC3339)
		}
		m.body.WriteString(line + "\n")
		m.lines = append(m.lines, n)
		if len(m.lines) >= m.chunk || m.body.Len() >= maxImportBytes {
			if err := m.send(ctx); err != nil {
				return m.total, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return m.total, usageErrorf("%s: a line is longer than 4 KiB", m.file)
		}
		return m.total, usageErrorf("read %s: %v", m.file, err)
	}
	if len(m.lines) > 0 {
		if err := m.send(ctx); err != nil {
			return m.total, err
		}
	}
	if m.total.PoolID == "" {
		return m.total, usageErrorf("%s holds no code", m.file)
	}
	return m.total, nil
}

// send posts the chunk collected and adds its answer to the total.
func (m *codeImport) send(ctx context.Context) error {
	var r codesResult
	_, err := m.cl.send(ctx, "POST", m.path, "text/plain", []byte(m.body.String()), nil, &r)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			if n, ok := strings.CutPrefix(ae.problem.Field, "line "); ok {
				if i, perr := strconv.Atoi(n); perr == nil && i >= 1 && i <= len(m.lines) {
					return fmt.Errorf("%s line %d: %w", m.file, m.lines[i-1], err)
				}
			}
			return fmt.Errorf("%s lines %d to %d: %w", m.file, m.lines[0], m.lines[len(m.lines)-1], err)
		}
		return err
	}
	t := &m.total
	t.PoolID, t.Total, t.Left = r.PoolID, r.Total, r.Left
	t.Added += r.Added
	t.Duplicates += r.Duplicates
	t.Repeated += r.Repeated
	if len(t.Examples) < 5 {
		t.Examples = append(t.Examples, r.Examples[:min(len(r.Examples), 5-len(t.Examples))]...)
	}
	m.body.Reset()
	m.lines = m.lines[:0]
	return nil
}
