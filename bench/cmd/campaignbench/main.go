// Command campaignbench is the load driver of Campaign Manager's bench suite (see
// bench/README.md). It runs a scenario (quick, standard, scale) against a campaignd it
// starts itself, or against an existing server given --server/--nats/--username/
// --password, and writes result.json, summary.md and chart.svg under
// bench/results/<scenario>-<timestamp>/. Every flag has an environment fallback
// (CAMPAIGNBENCH_<FLAG>, upper case, dashes as underscores).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/campaignmanager/campaignmanager/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "campaignbench: %v\n", err)
		}
		os.Exit(1)
	}
}

// run parses args (with getenv fallbacks), runs the scenario and prints the summary's
// path and targets on stdout.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("campaignbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string {
		if v := getenv("CAMPAIGNBENCH_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))); v != "" {
			return v
		}
		return def
	}
	var (
		scenario  = fs.String("scenario", env("scenario", "quick"), "scenario: "+bench.ScenarioNames())
		server    = fs.String("server", env("server", ""), "campaignd base URL; empty starts a campaignd child")
		natsURL   = fs.String("nats", env("nats", ""), "NATS URL of the server (with --server), with the credentials of a user that may publish events, subscribe to rewards.> and create a stream, e.g. nats://campaignd:PASSWORD@host:4222")
		username  = fs.String("username", env("username", "admin"), "admin user (with --server)")
		password  = fs.String("password", env("password", ""), "admin password (with --server)")
		campaignd = fs.String("campaignd", env("campaignd", ""), "prebuilt campaignd binary for the child; empty builds ./cmd/campaignd")
		out       = fs.String("out", env("out", ""), "results directory (default bench/results in the module)")
		noBase    = fs.Bool("no-baselines", env("no_baselines", "") == "true", "skip the baselines")
		o         bench.Overrides
		serverEnv envList
	)
	fs.Var(&serverEnv, "server-env", "KEY=VALUE for the campaignd child's environment (repeatable), e.g. CAMPAIGN_ACTOR_IDLE=10s")
	fs.StringVar(&o.Transport, "transport", env("transport", ""), "override: http or nats")
	fs.Float64Var(&o.Rate, "rate", envFloat(env("rate", "")), "override: fixed rate in events/s (open loop); 0 keeps the scenario's")
	fs.DurationVar(&o.Duration, "duration", envDur(env("duration", "")), "override: duration of each phase")
	fs.IntVar(&o.Batch, "batch", envInt(env("batch", "")), "override: events per HTTP request (1..1000)")
	fs.IntVar(&o.Conns, "conns", envInt(env("conns", "")), "override: connections (one sender each)")
	fs.IntVar(&o.Campaigns, "campaigns", envInt(env("campaigns", "")), "override: active campaigns")
	users := fs.Int("users", envInt(env("users", "")), "override: number of users")
	fs.StringVar(&o.Skew, "skew", env("skew", ""), "override: uniform, zipf or sequential (every user in turn)")
	fs.Float64Var(&o.Theta, "theta", envFloat(env("theta", "")), "override: Zipf exponent in (0,1)")
	fs.StringVar(&o.Mix, "mix", env("mix", ""), `override: event mix, e.g. "purchase:90,view:10"`)
	fs.IntVar(&o.PayloadSize, "payload", envInt(env("payload", "")), "override: approximate bytes per event")
	fs.IntVar(&o.MaxInflight, "max-inflight", envInt(env("max_inflight", "")), "override: events unrewarded at most in max mode")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Users = uint64(max(*users, 0))
	sc, ok := bench.Scenarios[*scenario]
	if !ok {
		return fmt.Errorf("--scenario: unknown %q (have %s)", *scenario, bench.ScenarioNames())
	}
	sc, err := o.Apply(sc)
	if err != nil {
		return err
	}
	if *server != "" && *natsURL == "" {
		return errors.New("--nats is required with --server")
	}
	if *out == "" {
		root, err := bench.ModuleRoot(".")
		if err != nil {
			return err
		}
		*out = filepath.Join(root, "bench", "results")
	}
	res, err := bench.Run(ctx, bench.Options{
		Scenario: sc, Server: *server, NATS: *natsURL, Username: *username, Password: *password,
		Campaignd: *campaignd, ServerEnv: serverEnv, OutDir: *out, NoBaselines: *noBase, Stderr: stderr,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", filepath.Join(res.Dir, "summary.md"))
	for _, t := range res.Targets {
		fmt.Fprintf(stdout, "target %-45s goal %s %s, got %.3g (met: %v)\n", t.Name, t.Goal, t.Unit, t.Got, t.Met)
	}
	return nil
}

// envList collects repeated KEY=VALUE flags.
type envList []string

func (l *envList) String() string { return strings.Join(*l, " ") }

func (l *envList) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	*l = append(*l, v)
	return nil
}

func envInt(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func envFloat(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

func envDur(s string) time.Duration {
	d, _ := time.ParseDuration(s)
	return d
}
