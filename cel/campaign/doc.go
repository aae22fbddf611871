// Package campaign defines a marketing campaign as admins write it and engines run it
// (DESIGN §7): the definition stored in Postgres, published in the campaigns KV bucket and
// compiled by package cel, its structural validation (Validate, which returns
// *event.FieldError values), and Match, a campaign that matched an event. It does not
// import cel-go: the admin API, persistence and the loyalty domain use it without the
// rule compiler.
//
// The package owns no goroutines; its functions are safe for concurrent use.
package campaign
