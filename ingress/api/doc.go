// Package api holds the primitives the HTTP edge (package ingress) and the admin API
// (package ingress/admin) share: a route's description (Route, Access, Group: the one
// source for routing, access control and the OpenAPI document), the problem details body
// (Problem), and strict request helpers (DecodeJSON, the one decoder of admin bodies, with the
// strictness of events: strict.go; PathParam, Query, Page, CorrelationID).
//
// It exists so that the admin API can describe its routes without importing package
// ingress, which mounts them (ingress imports admin). Errors become problems in exactly
// one place, ingress's error handler; handlers here return errors, typed where the
// client must learn something (*event.FieldError, *Problem, or a store sentinel wrapped
// with About).
//
// The package owns no goroutines; its functions are safe for concurrent use.
package api
