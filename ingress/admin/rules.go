package admin

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/cel"
	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/api"
	"github.com/campaignmanager/campaignmanager/ingress/event"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// ruleEnvironmentText describes the environment in Markdown, for the OpenAPI description.
func ruleEnvironmentText() string {
	var b strings.Builder
	b.WriteString("**RuleEnvironment.** A rule is a boolean CEL expression, a points expression an integer one, over these names ")
	b.WriteString("(the user state is the one *before* the event):\n\n| name | type | meaning |\n| --- | --- | --- |\n")
	for _, v := range cel.Environment() {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, v.Type, strings.ReplaceAll(v.Doc, "|", `\|`))
	}
	fmt.Fprintf(&b, "\nInts and doubles compare with each other; `has()`, `?.`/`orValue`, durations and timestamps, "+
		"and the strings and math extensions are available. An expression's estimated cost may be at most %d. "+
		"See docs/rules.md for examples.", cel.MaxCost)
	return b.String()
}

type ruleValidate struct {
	Rule   string              `json:"rule"`
	Points campaign.PointsExpr `json:"points"`
}

type ruleValidation struct {
	Valid     bool   `json:"valid"`
	Cost      uint64 `json:"cost"`
	CostLimit uint64 `json:"cost_limit"`
}

// validateRule compiles a rule and, when given, a points expression, and answers their
// estimated cost and the limit, or a 400 problem whose errors have line, column and a
// caret snippet. An expression over the cost limit is such a problem, naming the limit.
func (a *API) validateRule(c *fiber.Ctx) error {
	var req ruleValidate
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Rule) == "" && strings.TrimSpace(string(req.Points)) == "" {
		return fieldError("rule", "rule (or points) is required")
	}
	out := ruleValidation{CostLimit: cel.MaxCost}
	if strings.TrimSpace(req.Rule) != "" {
		r, err := cel.Compile(req.Rule)
		if err != nil {
			return err
		}
		out.Cost += r.Cost()
	}
	if strings.TrimSpace(string(req.Points)) != "" {
		p, err := cel.CompilePoints(string(req.Points))
		if err != nil {
			return err
		}
		out.Cost += p.Cost()
	}
	out.Valid = true
	return c.JSON(out)
}

// ruleTestUser is a user state as rules see it, with the names rules use. It is both
// the optional "user" of a rule test and the state the answer shows.
type ruleTestUser struct {
	Tier           string           `json:"tier"`
	Points         int64            `json:"points"`
	LifetimePoints int64            `json:"lifetime_points"`
	PurchaseCount  int64            `json:"purchase_count"`
	TotalSpent     float64          `json:"total_spent"`
	FirstSeen      *time.Time       `json:"first_seen,omitempty"`
	LastPurchaseAt *time.Time       `json:"last_purchase_at,omitempty"`
	EventCounts    map[string]int64 `json:"event_counts"`
	Rewards        map[string]int64 `json:"rewards"`
	// History is the daily activity the *_within functions read, oldest first.
	History []ruleTestDay `json:"history,omitempty"`
}

// ruleTestDay is one day of a user's history with a readable date.
type ruleTestDay struct {
	Day    string           `json:"day"` // YYYY-MM-DD, UTC
	Spent  float64          `json:"spent,omitempty"`
	Counts map[string]int64 `json:"counts,omitempty"`
}

const dayLayout = "2006-01-02"

// celHistory converts the days to the engine's form, oldest first; it fails naming the
// first bad or repeated day.
func celHistory(days []ruleTestDay) ([]loyalty.DayStat, error) {
	out := make([]loyalty.DayStat, 0, len(days))
	seen := map[int32]bool{}
	for i, d := range days {
		t, err := time.Parse(dayLayout, d.Day)
		if err != nil || seen[loyalty.DayOf(t)] {
			return nil, fieldError(fmt.Sprintf("user.history[%d].day", i), "each history day must be a distinct date YYYY-MM-DD")
		}
		seen[loyalty.DayOf(t)] = true
		out = append(out, loyalty.DayStat{Day: loyalty.DayOf(t), Spent: d.Spent, Counts: d.Counts})
	}
	slices.SortFunc(out, func(a, b loyalty.DayStat) int { return cmp.Compare(a.Day, b.Day) })
	return out, nil
}

// state is the user state the rules see.
func (u ruleTestUser) state(history []loyalty.DayStat) loyalty.User {
	v := loyalty.User{Tier: u.Tier, Points: u.Points, LifetimePoints: u.LifetimePoints, PurchaseCount: u.PurchaseCount,
		TotalSpent: u.TotalSpent, EventCounts: u.EventCounts, RewardCounts: u.Rewards, History: history,
		LastPurchaseAt: u.LastPurchaseAt}
	if u.FirstSeen != nil {
		v.FirstSeen = *u.FirstSeen
	}
	return v
}

// storedRuleUser is what rules see of a stored user, as the engine's view of it (limits
// are not evaluated here, so the per-day reward counts are left out).
func storedRuleUser(u *loyalty.User) ruleTestUser {
	v := ruleTestUser{Tier: u.Tier, Points: u.Points, LifetimePoints: u.LifetimePoints, PurchaseCount: u.PurchaseCount,
		TotalSpent: u.TotalSpent, LastPurchaseAt: u.LastPurchaseAt, EventCounts: u.EventCounts, Rewards: u.RewardCounts}
	if !u.FirstSeen.IsZero() {
		t := u.FirstSeen
		v.FirstSeen = &t
	}
	for _, d := range u.History {
		v.History = append(v.History, ruleTestDay{Day: time.Unix(int64(d.Day)*86400, 0).UTC().Format(dayLayout), Spent: d.Spent, Counts: d.Counts})
	}
	return v
}

type ruleTest struct {
	Rule   string           `json:"rule"`
	Reward *campaign.Reward `json:"reward"`
	Event  json.RawMessage  `json:"event"`
	User   *ruleTestUser    `json:"user"`
}

// clauseResult is one top-level clause of a tested rule and its value on its own: true,
// false or "error: ...".
type clauseResult struct {
	Clause string `json:"clause"`
	Result any    `json:"result"`
}

type grantedReward struct {
	Type   string         `json:"type"`
	Points *int64         `json:"points,omitempty"`
	Data   map[string]any `json:"data,omitempty"`
}

type ruleTestResult struct {
	Matched bool           `json:"matched"`
	Points  *int64         `json:"points,omitempty"`
	Reward  *grantedReward `json:"reward,omitempty"`
	// Error is the runtime error that made the rule (or points) fail, meaning no match.
	Error string `json:"error,omitempty"`
	// Reason says in a sentence why the rule did not match.
	Reason     string       `json:"reason,omitempty"`
	UserSource string       `json:"user_source"`
	User       ruleTestUser `json:"user"`
	Event      event.Event  `json:"event"`
	// Operator joins the clauses of Explanation: "&&", "||", or "" for one clause.
	Operator    string         `json:"operator,omitempty"`
	Explanation []clauseResult `json:"explanation"`
}

// User sources of a rule test.
const (
	userGiven  = "given"
	userStored = "stored"
	userNew    = "new"
)

// testRule evaluates a rule (and a points expression) against an event and a user
// state, the given one or else the stored one, and explains the result clause by clause.
// Nothing is stored or published. Runtime errors are part of the answer, not a failure.
func (a *API) testRule(c *fiber.Ctx) error {
	var req ruleTest
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Rule) == "" {
		return fieldError("rule", "is required")
	}
	rule, err := cel.Compile(req.Rule)
	if err != nil {
		return err
	}
	var points *cel.Points
	if req.Reward != nil {
		if points, err = compileTestReward(req.Reward); err != nil {
			return err
		}
	}
	if len(req.Event) == 0 || string(req.Event) == "null" {
		return fieldError("event", "is required: the event JSON as a storefront would send it")
	}
	ev, err := event.Decode(req.Event, time.Now().UTC())
	if err != nil {
		var fe *event.FieldError
		if errors.As(err, &fe) {
			return &event.FieldError{Field: strings.TrimSuffix("event."+fe.Field, "."), Reason: fe.Reason}
		}
		return fieldError("event", err.Error())
	}

	out := ruleTestResult{Event: ev}
	if req.User != nil {
		out.UserSource, out.User = userGiven, *req.User
	} else {
		ctx, cancel := api.Ctx(c)
		defer cancel()
		stored, err := a.deps.Store.GetUser(ctx, ev.UserID)
		switch {
		case errors.Is(err, persistence.ErrNotFound):
			out.UserSource = userNew
		case err != nil:
			return err
		default:
			out.UserSource, out.User = userStored, storedRuleUser(&stored)
		}
	}
	history, err := celHistory(out.User.History)
	if err != nil {
		return err
	}
	cu := out.User.state(history)
	in := &cel.Input{Event: &ev, User: &cu}

	matched, err := rule.Eval(in)
	if err != nil {
		out.Error = evalMessage(err)
	}
	if matched && points != nil {
		n, err := points.Eval(in)
		if err != nil {
			matched, out.Error = false, evalMessage(err)
		} else {
			out.Points = &n
		}
	}
	out.Matched = matched
	if matched && req.Reward != nil {
		out.Reward = &grantedReward{Type: req.Reward.Type, Points: out.Points, Data: req.Reward.Data}
	}
	x := cel.Explain(req.Rule, in)
	out.Operator = x.Operator
	out.Explanation = make([]clauseResult, 0, len(x.Clauses))
	for _, cl := range x.Clauses {
		out.Explanation = append(out.Explanation, clauseResult{Clause: cl.Text, Result: cl.Result()})
	}
	if !matched {
		out.Reason = notMatchedReason(out)
	}
	return c.JSON(out)
}

// compileTestReward checks a rule test's reward as ValidateCampaign would and compiles
// its points expression (nil for other reward types).
func compileTestReward(r *campaign.Reward) (*cel.Points, error) {
	switch r.Type {
	case campaign.RewardPoints:
		src := string(r.Points)
		if strings.TrimSpace(src) == "" {
			return nil, fieldError("reward.points", "is required for points rewards")
		}
		p, err := cel.CompilePoints(src)
		if err != nil {
			return nil, err
		}
		return p, nil
	case campaign.RewardCoupon, campaign.RewardFreeShipping, campaign.RewardNotification:
		if r.Points != "" {
			return nil, fieldError("reward.points", "is only allowed for points rewards")
		}
		if r.Pool != "" {
			return nil, r.Validate()
		}
		return nil, nil
	}
	return nil, fieldError("reward.type", fmt.Sprintf("must be one of %s, %s, %s, %s; got %q",
		campaign.RewardPoints, campaign.RewardCoupon, campaign.RewardFreeShipping, campaign.RewardNotification, r.Type))
}

// evalMessage is a runtime error as the rule test shows it, without the "evaluate rule: "
// prefix.
func evalMessage(err error) string {
	msg := err.Error()
	for _, p := range []string{"evaluate rule: ", "evaluate points: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}

// notMatchedReason says in a sentence why a tested rule did not match.
func notMatchedReason(r ruleTestResult) string {
	if r.Error != "" {
		return "the rule failed at run time, which counts as no match: " + r.Error
	}
	if r.Operator == "||" {
		return "every clause joined by || is false"
	}
	for _, cl := range r.Explanation {
		switch v := cl.Result.(type) {
		case bool:
			if !v {
				return "false: " + cl.Clause
			}
		case string:
			return "fails at run time on its own: " + cl.Clause
		}
	}
	return "the rule is false"
}

// ruleRoutes are rule validation and testing.
func (a *API) ruleRoutes() api.Group {
	const tag = "Rules"
	return api.Group{
		Tags: []api.Tag{{Name: tag, Description: "Check a rule before it goes live: compile and type-check it, or run it on a sample event and user state " +
			"with an explanation clause by clause. Nothing is stored. Open to every admin role."}},
		Routes: []api.Route{
			{Method: "POST", Path: "/v1/rules/validate", Access: api.Viewer, Tag: tag, OperationID: "validateRule",
				Summary: "Compile and type-check a rule and points expression", Handler: a.validateRule, Request: "RuleValidate", Response: "RuleValidation", Description: ruleEnvironmentText(),
				Statuses:    []int{200, 400, 415},
				StatusNotes: map[int]string{400: "The rule or points do not compile or cost too much: errors has line, column and a caret snippet for each"}},
			{Method: "POST", Path: "/v1/rules/test", Access: api.Viewer, Tag: tag, OperationID: "testRule",
				Summary: "Evaluate a rule (and points) against an event and a user state, without side effects", Handler: a.testRule, Request: "RuleTest", Response: "RuleTestResult", Description: ruleEnvironmentText(),
				Statuses: []int{200, 400, 415},
				StatusNotes: map[int]string{
					200: "Evaluated: a runtime error is part of the answer (no match), not a failure",
					400: "The rule or points do not compile (errors has line, column and snippet), or the event or user is invalid",
				}},
		},
		Schemas:  ruleSchemas(),
		Examples: ruleExamples(),
	}
}

// ruleSchemas describe the rule endpoints' bodies in the OpenAPI document.
func ruleSchemas() map[string]any {
	dateTime := fiber.Map{"type": "string", "format": "date-time"}
	counts := fiber.Map{"type": "object", "additionalProperties": integer}
	user := fiber.Map{"type": "object", "description": "A user state with the names rules use", "properties": fiber.Map{
		"tier": str(), "points": integer, "lifetime_points": integer, "purchase_count": integer,
		"total_spent": number, "first_seen": dateTime, "last_purchase_at": dateTime,
		"event_counts": nullable(counts), "rewards": nullable(counts),
		"history": fiber.Map{"type": "array", "description": "Daily activity for the *_within functions", "items": obj([]string{"day"}, fiber.Map{
			"day": fiber.Map{"type": "string", "format": "date"}, "spent": number, "counts": counts})}}}
	return map[string]any{
		"RuleValidate": obj(nil, fiber.Map{"rule": fiber.Map{"type": "string", "description": "Boolean CEL expression"}, "points": pointsExpr}),
		"RuleValidation": obj([]string{"valid", "cost", "cost_limit"}, fiber.Map{"valid": boolean,
			"cost":       fiber.Map{"type": "integer", "description": "Estimated cost of the rule and points together"},
			"cost_limit": fiber.Map{"type": "integer", "description": "The most an expression may cost"}}),
		"RuleTestUser": user,
		"RuleTest": obj([]string{"rule", "event"}, fiber.Map{
			"rule":   fiber.Map{"type": "string", "description": "Boolean CEL expression"},
			"reward": ref("Reward"),
			"event":  ref("Event"),
			"user":   fiber.Map{"$ref": "#/components/schemas/RuleTestUser", "description": "Defaults to the stored state of event.user_id"},
		}),
		"RuleTestResult": obj([]string{"matched", "user_source", "user", "event", "explanation"}, fiber.Map{
			"matched": boolean,
			"points":  fiber.Map{"type": "integer", "description": "The points a match earns"},
			"reward": obj(nil, fiber.Map{
				"type": str(), "points": integer, "data": fiber.Map{"type": "object"}}),
			"error":       fiber.Map{"type": "string", "description": "The runtime error that made the rule fail (no match)"},
			"reason":      fiber.Map{"type": "string", "description": "Why the rule did not match"},
			"user_source": fiber.Map{"type": "string", "enum": []string{userGiven, userStored, userNew}},
			"user":        ref("RuleTestUser"),
			"event":       ref("Event"),
			"operator":    fiber.Map{"type": "string", "enum": []string{"&&", "||"}, "description": "What joins the clauses; absent for one clause"},
			"explanation": fiber.Map{"type": "array", "items": obj([]string{"clause", "result"}, fiber.Map{
				"clause": str(),
				"result": fiber.Map{"description": "true, false or \"error: ...\"", "oneOf": []fiber.Map{{"type": "boolean"}, {"type": "string"}}}})},
		}),
	}
}

// ruleExamples are the example bodies of the rule endpoints.
func ruleExamples() map[string]any {
	ev := fiber.Map{"id": "order-1001", "user_id": "alice", "type": "purchase", "amount": 120, "currency": "EUR", "occurred_at": "2025-06-01T12:00:00Z"}
	return map[string]any{
		"RuleValidate":   fiber.Map{"rule": `event.type == "purchase" && event.amount > 50`, "points": "int(event.amount * 0.1)"},
		"RuleValidation": fiber.Map{"valid": true, "cost": 12, "cost_limit": cel.MaxCost},
		"RuleTest": fiber.Map{"rule": `event.type == "purchase" && user.purchase_count == 0`,
			"reward": fiber.Map{"type": "points", "points": "50"}, "event": ev, "user": fiber.Map{"purchase_count": 0}},
		"RuleTestResult": fiber.Map{"matched": true, "points": 50, "reward": fiber.Map{"type": "points", "points": 50},
			"user_source": userGiven, "user": fiber.Map{"tier": "", "points": 0, "lifetime_points": 0, "purchase_count": 0, "total_spent": 0},
			"event": ev, "operator": "&&",
			"explanation": []fiber.Map{{"clause": `event.type == "purchase"`, "result": true}, {"clause": "user.purchase_count == 0", "result": true}}},
	}
}
