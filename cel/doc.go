// Package cel compiles and evaluates campaign rules written in CEL (Common Expression
// Language).
//
// A campaign's rule is a boolean CEL expression over three variables: event (the event
// being processed), user (the user's loyalty state before the event) and now (the
// event's occurred_at, never the wall clock, so a redelivered event evaluates the same
// way). A points reward carries an integer CEL expression over the same variables.
// The environment is typed: a misspelt field or a comparison of mismatched types is
// a compile error, reported with its 1-based line and column.
//
// The admin API calls ValidateCampaign when a campaign is saved, so invalid rules are
// refused with their positions. The actors build a RuleSet from the active campaigns
// (NewRuleSet) whenever the campaigns bucket changes and call RuleSet.Evaluate for each
// event. A RuleSet is immutable and safe for concurrent use; swap it atomically to apply
// changes. It indexes its campaigns by the event types and attribute values their rules
// can be true for (analysis.go: an abstract evaluation of each checked AST, sound, so
// skipping a rule never changes a result; index.go), so an event is evaluated only
// against the rules that can match it.
//
// Rule tooling lives here too, so that nothing else needs a CEL lexer: Explain splits a
// rule into its top-level clauses from cel-go's checked AST and evaluates each on its
// own (the admin API's POST /v1/rules/test), Snippet draws the caret under an Issue's
// position, and Environment is the one documented definition of the names rules can
// use, shown by the OpenAPI description and rendered by EnvironmentMarkdown into
// docs/rules.md (go generate ./cel; a test fails when they drift).
//
// Nothing outside this package imports cel-go: the API uses the package's own names
// (Rule, Points, RuleSet). The package owns no goroutines.
package cel
