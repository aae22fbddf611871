// Package ingress is the HTTP edge of Campaign Manager: the Fiber server, the route table
// (the one source for routing, access control and the OpenAPI document), problem details
// (every error becomes one in problemFor), request metrics and correlation ids, event
// ingest (POST /v1/events and /v1/events/batch, stored in JetStream before any 2xx), the
// ingest API key guard and its in-memory mirror of the api_keys bucket (KeyMirror),
// health, metrics and docs. The admin API (package ingress/admin) is mounted here.
//
// Goroutines owned: Server.Start serves in one goroutine until Close; KeyMirror.Run
// watches the api_keys bucket on its caller's goroutine.
package ingress
