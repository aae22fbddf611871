package bench

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Scenario is a named list of phases run against one server, after the baselines.
type Scenario struct {
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Baseline    time.Duration `json:"-"` // duration of each baseline (CEL gets half)
	Drain       time.Duration `json:"-"` // how long a phase waits for outstanding rewards
	Phases      []Phase       `json:"phases"`
}

// Phase names the report's targets refer to.
const (
	PhaseHTTPMax    = "http-max"
	PhaseNATSMax    = "nats-max"
	PhaseHTTPHalf   = "http-half"
	PhaseHTTPMax100 = "http-max-100c"
	// The delivery scenario's phases: the reward loop with one webhook endpoint (after
	// PhaseHTTPMax without it), 1000 rewards/s delivered, and a backlog drained.
	PhaseHTTPMaxWebhook = "http-max-webhook"
	PhaseWebhook1k      = "webhook-1k"
	PhaseWebhookBacklog = "webhook-backlog"
	// PhaseHTTPMax1000 is http-max with 1,000 active campaigns.
	PhaseHTTPMax1000 = "http-max-1000c"
	// PhaseHTTPSingle posts one event per request (POST /v1/events) from singleConns
	// connections, as fast as they are answered.
	PhaseHTTPSingle = "http-single-max"
	// The latency scenario's phases (issue 15 goal 1): a fixed 2,000 events/s in HTTP
	// batches of 10 and one event per request, and one event per request at half the max.
	PhaseHTTP2k         = "http-2k"
	PhaseHTTPSingle2k   = "http-single-2k"
	PhaseHTTPSingleHalf = "http-single-half"
)

// fixedRate is the latency scenario's fixed rate (events/s).
const fixedRate = 2000

// singleConns is the connections of PhaseHTTPSingle (issue 15: 64).
const singleConns = 64

func base(name, transport string, users uint64, campaigns int, d time.Duration) Phase {
	return Phase{
		Name: name, Transport: transport, Duration: Dur(d), Batch: 100, Conns: 8,
		Campaigns: campaigns, Users: users, Skew: "uniform", Mix: "purchase:90,view:7,signup:3", PayloadSize: 256,
		MaxInflight: 10_000,
	}
}

func natsPhase(p Phase) Phase { p.Conns = 2; return p }

func small(p Phase) Phase { p.MaxInflight = 4000; return p }

func halfOf(p Phase, of string) Phase {
	p.RateOf, p.RateFraction, p.Batch = of, 0.5, 10
	return p
}

func zipf(p Phase) Phase { p.Skew, p.Theta = "zipf", 0.99; return p }

func hooked(p Phase, mode string) Phase { p.Webhook = mode; return p }

func at(p Phase, rate float64) Phase { p.Rate, p.Batch = rate, 10; return p }
func single(p Phase) Phase           { p.Batch, p.Conns = 1, singleConns; return p }

// singleAt sends one event per request at rate (or at fraction of the rate of phase of),
// from 128 connections: an open loop's connections must not be what holds it (each is
// one request at a time; with 32 at 2,000/s a connection had 16 ms per request and
// queued sends behind its slower ones), storefront traffic comes from many clients.
func singleAt(p Phase, rate float64, of string, fraction float64) Phase {
	p.Rate, p.RateOf, p.RateFraction, p.Batch, p.Conns = rate, of, fraction, 1, 128
	return p
}

// has reports whether sc has a phase called name.
func (sc Scenario) has(name string) bool {
	for _, p := range sc.Phases {
		if p.Name == name {
			return true
		}
	}
	return false
}

// Scenarios are the built-in scenarios by name.
var Scenarios = map[string]Scenario{
	"quick": {
		Name:        "quick",
		Description: "smoke check for CI, about 90 s with the campaignd build: 10 then 100 campaigns, 10k users, 4 s phases",
		Baseline:    2 * time.Second, Drain: 8 * time.Second,
		Phases: []Phase{
			small(base(PhaseHTTPMax, "http", 10_000, 10, 4*time.Second)),
			small(natsPhase(base(PhaseNATSMax, "nats", 10_000, 10, 4*time.Second))),
			halfOf(base(PhaseHTTPHalf, "http", 10_000, 10, 4*time.Second), PhaseHTTPMax),
			small(single(base(PhaseHTTPSingle, "http", 10_000, 10, 4*time.Second))),
			small(base(PhaseHTTPMax100, "http", 10_000, 100, 4*time.Second)),
		},
	},
	"standard": {
		Name:        "standard",
		Description: "the issue's targets: 100k users, 10, 100 then 1,000 campaigns, HTTP and NATS, max rate and half rate, single events, Zipf skew; 20 s phases",
		Baseline:    5 * time.Second, Drain: 20 * time.Second,
		Phases: []Phase{
			base(PhaseHTTPMax, "http", 100_000, 10, 20*time.Second),
			natsPhase(base(PhaseNATSMax, "nats", 100_000, 10, 20*time.Second)),
			halfOf(base(PhaseHTTPHalf, "http", 100_000, 10, 20*time.Second), PhaseHTTPMax),
			singleAt(base(PhaseHTTPSingleHalf, "http", 100_000, 10, 20*time.Second), 0, PhaseHTTPMax, 0.5),
			zipf(base("http-max-zipf", "http", 100_000, 10, 20*time.Second)),
			single(base(PhaseHTTPSingle, "http", 100_000, 10, 20*time.Second)),
			base(PhaseHTTPMax100, "http", 100_000, 100, 20*time.Second),
			base(PhaseHTTPMax1000, "http", 100_000, 1000, 20*time.Second),
		},
	},
	"latency": {
		Name: "latency",
		Description: "issue 15 goal 1, event to reward latency: the max rate, then a fixed 2,000 events/s and half the max, " +
			"each in HTTP batches of 10 and one event per request; 100k users, 10 campaigns, 20 s phases; the engine's time by stage",
		Baseline: 5 * time.Second, Drain: 15 * time.Second,
		Phases: []Phase{
			base(PhaseHTTPMax, "http", 100_000, 10, 20*time.Second),
			at(base(PhaseHTTP2k, "http", 100_000, 10, 20*time.Second), fixedRate),
			singleAt(base(PhaseHTTPSingle2k, "http", 100_000, 10, 20*time.Second), fixedRate, "", 0),
			halfOf(base(PhaseHTTPHalf, "http", 100_000, 10, 20*time.Second), PhaseHTTPMax),
			singleAt(base(PhaseHTTPSingleHalf, "http", 100_000, 10, 20*time.Second), 0, PhaseHTTPMax, 0.5),
		},
	},
	"delivery": {
		Name: "delivery",
		Description: "webhooks to a receiver in the driver: the reward loop without and with one endpoint (same run), " +
			"1000 events/s with the endpoint (p99 reward commit to webhook received), and a backlog built with the endpoint off, " +
			"then drained (notices/s); 20 s phases, one campaign (one reward per event)",
		Baseline: 5 * time.Second, Drain: 60 * time.Second,
		Phases: []Phase{
			base(PhaseHTTPMax, "http", 100_000, 1, 20*time.Second),
			hooked(base(PhaseHTTPMaxWebhook, "http", 100_000, 1, 20*time.Second), WebhookOn),
			hooked(at(base(PhaseWebhook1k, "http", 100_000, 1, 20*time.Second), 1000), WebhookOn),
			hooked(base(PhaseWebhookBacklog, "http", 100_000, 1, 20*time.Second), WebhookBacklog),
		},
	},
	"scale": {
		Name:        "scale",
		Description: "1M users, 100 campaigns, memory: 60 s phases over HTTP and NATS, campaignd RSS per second",
		Baseline:    5 * time.Second, Drain: 60 * time.Second,
		Phases: []Phase{
			base(PhaseHTTPMax100, "http", 1_000_000, 100, 60*time.Second),
			natsPhase(base("nats-max-100c", "nats", 1_000_000, 100, 60*time.Second)),
			halfOf(base("http-half-100c", "http", 1_000_000, 100, 60*time.Second), PhaseHTTPMax100),
		},
	},
}

// ScenarioNames lists the built-in scenarios.
func ScenarioNames() string {
	var n []string
	for k := range Scenarios {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

// Overrides replace fields of every phase of a scenario when set (non-zero).
type Overrides struct {
	Transport   string
	Rate        float64
	Duration    time.Duration
	Batch       int
	Conns       int
	Campaigns   int
	Users       uint64
	Skew        string
	Theta       float64
	Mix         string
	PayloadSize int
	MaxInflight int
}

// Apply returns sc with o applied to every phase. A set Transport or Rate keeps only
// the phases whose rate does not depend on another.
func (o Overrides) Apply(sc Scenario) (Scenario, error) {
	out := sc
	out.Phases = nil
	for _, p := range sc.Phases {
		if o.Transport != "" {
			if o.Transport != "http" && o.Transport != "nats" {
				return sc, fmt.Errorf("transport must be http or nats, got %q", o.Transport)
			}
			p.Transport = o.Transport
		}
		if o.Rate > 0 {
			p.Rate, p.RateOf = o.Rate, ""
		}
		if o.Duration > 0 {
			p.Duration = Dur(o.Duration)
		}
		setInt(&p.Batch, o.Batch)
		setInt(&p.Conns, o.Conns)
		setInt(&p.Campaigns, o.Campaigns)
		setInt(&p.PayloadSize, o.PayloadSize)
		setInt(&p.MaxInflight, o.MaxInflight)
		if o.Users > 0 {
			p.Users = o.Users
		}
		if o.Skew != "" {
			p.Skew = o.Skew
		}
		if o.Theta > 0 {
			p.Theta = o.Theta
		}
		if o.Mix != "" {
			p.Mix = o.Mix
		}
		if p.Batch < 1 || p.Batch > 1000 {
			return sc, fmt.Errorf("batch must be 1..1000, got %d", p.Batch)
		}
		out.Phases = append(out.Phases, p)
	}
	return out, nil
}

func setInt(dst *int, v int) {
	if v > 0 {
		*dst = v
	}
}
