// Package event defines the customer event accepted by Campaign Manager and the rules it
// must satisfy (DESIGN §4).
//
// It is a leaf package: it imports only the standard library. The HTTP ingress
// (package ingress) calls [Decode] on every request body and maps its errors to problem
// details (*[FieldError] to 400 with the field, [ErrTooLarge] to 413). The NATS
// ingest path and the event consumers (package actors) call [Decode] on message payloads,
// compare [Token] of the user id with the last subject token, and dead-letter what fails.
// Publishers use [Token] to build the subject events.<token>, and [ParseToken] recovers the
// user id from a subject token.
//
// The package owns no goroutines and keeps no mutable state; every function is safe for
// concurrent use.
package event
