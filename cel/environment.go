package cel

import (
	"fmt"
	"slices"
	"strings"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
)

//go:generate go test -run ^TestRulesDocEnvironmentIsGenerated$ -update .

// Var is one name a rule or points expression can use: a variable, a field of event or
// user, or a function of user.
type Var struct {
	// Name is the name as a rule writes it, e.g. "event.amount" or "now"; for a function,
	// its signature with parameter names, e.g. "user.count_within(type, d)".
	Name string
	// Type is the CEL type of its value as the checker infers it, written as in the
	// documentation: string, int, double, bool, timestamp, duration, map(string, dyn),
	// map(string, int), list(...).
	Type string
	// Doc says what it is, in a sentence or two of Markdown.
	Doc string
	// Call is, for a function, a call with example arguments, such as
	// `user.spent_within(duration("720h"))`; "" for variables and fields.
	Call string
}

// environment is the one definition of the rule environment's documentation. A test
// checks it against celEnv: every field of event and user, every function of theirs and
// every other variable has exactly one entry, of the type the checker infers.
var environment = []Var{
	{Name: "event.id", Type: "string", Doc: "The event's id, the storefront's idempotency key."},
	{Name: "event.user_id", Type: "string", Doc: "The customer the event belongs to."},
	{Name: "event.type", Type: "string", Doc: "What happened: `\"purchase\"`, `\"signup\"`, `\"review\"`, … (lower case, your choice)."},
	{Name: "event.amount", Type: "double", Doc: "The money amount; `0.0` when the event has none. It compares with ints: `event.amount > 50`."},
	{Name: "event.currency", Type: "string", Doc: "ISO 4217 code such as `\"EUR\"`; `\"\"` when absent."},
	{Name: "event.occurred_at", Type: "timestamp", Doc: "When it happened; the time it was received when the storefront sent none."},
	{Name: "event.attributes", Type: "map(string, dyn)", Doc: "Anything else the storefront sends: `event.attributes.category`, " +
		"`event.attributes.rating`, … A missing key is a runtime error and the rule does not match: guard with " +
		"`has(event.attributes.x)` or `event.attributes.?x.orValue(default)`."},

	{Name: "user.tier", Type: "string", Doc: "The loyalty tier, e.g. `\"gold\"`; `\"\"` when none."},
	{Name: "user.points", Type: "int", Doc: "Spendable points."},
	{Name: "user.lifetime_points", Type: "int", Doc: "Every point ever granted."},
	{Name: "user.purchase_count", Type: "int", Doc: "Earlier events of type `\"purchase\"`: `0` on a first purchase."},
	{Name: "user.total_spent", Type: "double", Doc: "Sum of the amounts of all earlier purchases."},
	{Name: "user.first_seen", Type: "timestamp", Doc: "The user's first event; **unset** for a new user (`has(user.first_seen)` is false)."},
	{Name: "user.last_purchase_at", Type: "timestamp", Doc: "The latest earlier purchase; **unset** before the first purchase " +
		"(`has(user.last_purchase_at)` is false)."},
	{Name: "user.event_counts", Type: "map(string, int)", Doc: "Earlier events per type: `user.event_counts.?review.orValue(0)`."},
	{Name: "user.rewards", Type: "map(string, int)", Doc: "Rewards granted so far per campaign id: `!(\"signup-bonus\" in user.rewards)`."},

	{Name: "user.spent_within(d)", Type: "double", Call: `user.spent_within(duration("720h"))`,
		Doc: "Purchase amounts, net of refunds, within `d`: `user.spent_within(duration(\"720h\")) >= 200.0` (30 days)."},
	{Name: "user.count_within(type, d)", Type: "int", Call: `user.count_within("purchase", duration("168h"))`,
		Doc: "Events of a type within `d`: `user.count_within(\"purchase\", duration(\"168h\")) >= 3` (7 days)."},
	{Name: "user.days_active_within(d)", Type: "int", Call: `user.days_active_within(duration("720h"))`,
		Doc: "Days with any event within `d`."},

	{Name: "now", Type: "timestamp", Doc: "The event's `occurred_at`, **never the wall clock**: an event that is delivered twice, " +
		"or replayed from the dead-letter queue a week later, is judged exactly as it was the first time. " +
		"\"This weekend\" means \"the event happened this weekend\"."},
}

// Environment returns every name a rule or points expression can use, documented: the
// fields of event, the fields of user, the functions of user, then now. The slice is
// the caller's to modify. It is safe for concurrent use.
func Environment() []Var { return slices.Clone(environment) }

// envGroup is one table of EnvironmentMarkdown.
type envGroup struct {
	heading string // a Markdown heading, or "" to continue the previous section
	intro   string
	column  string // what the first column holds
	holds   func(v Var) bool
}

func isFunction(v Var) bool { return strings.Contains(v.Name, "(") }

var envGroups = []envGroup{
	{heading: "### `event`", column: "field",
		holds: func(v Var) bool { return strings.HasPrefix(v.Name, "event.") && !isFunction(v) }},
	{heading: "### `user`", column: "field",
		intro: "The state *before* the event: on a customer's first purchase `user.purchase_count` is `0`.",
		holds: func(v Var) bool { return strings.HasPrefix(v.Name, "user.") && !isFunction(v) }},
	{column: "function",
		intro: fmt.Sprintf("Recent activity, by whole UTC days ending with the event's day (that day included, this\n"+
			"event not), over a history of the last %d days:", loyalty.HistoryDays),
		holds: isFunction},
	{heading: "### `now`", column: "variable",
		holds: func(v Var) bool { return !strings.Contains(v.Name, ".") }},
}

// EnvironmentMarkdown renders Environment as the Markdown tables of docs/rules.md's
// section "What a rule can see" (a heading and a table for event, user and now; the
// functions of user in a table of their own). A test keeps the document's generated
// part equal to it; `go generate ./cel` rewrites that part. It is safe for concurrent
// use.
func EnvironmentMarkdown() string {
	var b strings.Builder
	for i, g := range envGroups {
		if i > 0 {
			b.WriteByte('\n')
		}
		if g.heading != "" {
			b.WriteString(g.heading + "\n\n")
		}
		if g.intro != "" {
			b.WriteString(g.intro + "\n\n")
		}
		fmt.Fprintf(&b, "| %s | type | meaning |\n| --- | --- | --- |\n", g.column)
		for _, v := range environment {
			if g.holds(v) {
				fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, v.Type, strings.ReplaceAll(v.Doc, "|", `\|`))
			}
		}
	}
	return b.String()
}
