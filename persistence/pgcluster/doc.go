// Package pgcluster runs a private PostgreSQL cluster that belongs to one directory.
//
// cmd/campaignd calls Start when no external database is configured, and
// persistence/pgtest uses it to give tests a throwaway server. Start runs initdb on
// first use, then starts the server with pg_ctl; the postmaster runs detached from
// the calling process (its own session), so it survives the caller until Stop is
// called, and a later Start on the same directory adopts it.
//
// Layout of the cluster directory:
//
//	data/          the PostgreSQL data directory
//	password       the superuser password (mode 0600)
//	port           the TCP port the cluster listens on
//	postgres.log   the server log
//	.lock          serialises Start calls on the directory across processes
//
// The server listens on 127.0.0.1 only, over TCP (no Unix socket), with
// scram-sha-256 authentication for the superuser "postgres".
//
// When the process runs as root, initdb and pg_ctl run as the "postgres" system
// user, which then owns the cluster directory; every parent directory must be
// traversable by that user.
//
// The package owns no goroutines: each call runs its commands and returns.
package pgcluster
