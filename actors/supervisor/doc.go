// Package supervisor runs the long-running stages of a process and retries what fails,
// with the one retry policy of the project (Policy, modelled on watermill's
// middleware.Retry). A Supervisor starts each Stage (a Run(ctx) error) on a goroutine of
// its own, restarts the restartable ones after a failure, and stops them in reverse
// order, each draining its in-flight work by the stop's deadline (Draining). Stages can
// be started and stopped one at a time, as the engine does with its lanes when it gains
// or hands over partitions.
//
// The supervisor owns every goroutine it starts; everything is safe for concurrent use.
package supervisor
