// Package actors is the engine: lanes (each a durable consumer over a range of
// partitions) feed per-user hollywood actors that hold loyalty state in memory, evaluate
// the compiled campaign rules and apply events through loyalty.Step; the committer
// batches their decisions into Postgres transactions and answers each actor; the
// publisher then publishes rewards and loyalty notices, parks refused events in the DLQ,
// and only then acks the JetStream messages.
//
// Goroutines owned: every long-running part is a stage of one supervisor (package
// actors/supervisor), started by Engine.Start in this order and stopped by Close in
// reverse: the publisher (Writers goroutines), the committer (its batch loop, up to
// Writers concurrent commits, redelivery lookups), the loader, the campaign and tier
// watchers, one stage per lane, the lane keeper, the expiry sweep and the passivation
// sweep; plus the hollywood engine's actors, which a lane stops (PoisonCtx, waited for)
// after draining. A single lane can be started and stopped on its own (startLane,
// stopLane): it stops fetching, lets its in-flight events commit and ack, and stops its
// actors.
//
// Postgres is the record; actors are a cache and a serialiser. A user's events reach one
// actor in stream order, and the actor has one job with the committer at a time: it
// submits a decision (or a chain of them, for events that queued up meanwhile) and waits
// for the answer before the next. Actors never block on Postgres inside Receive: loads
// (a user's state, a refund's original) go through the loader and come back as messages.
//
// Memory: an actor with nothing to do holds its user's committed state in compact form
// (userActor.pack) and decodes it for its next event; once idle for Config.IdleTimeout it
// is stopped and only the compact state stays (lane.passivate).
package actors
