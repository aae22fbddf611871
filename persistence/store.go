package persistence

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the Postgres-backed record of the engine. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// IdleInTransactionTimeout is how long Postgres lets one of the Store's sessions sit in an
// open transaction waiting for its client before it ends the session (and rolls the
// transaction back), unless the database URL sets idle_in_transaction_session_timeout.
// A commit holds its partitions' epoch rows FOR SHARE until it ends, and a claim waits for
// them: an engine frozen mid-commit (SIGSTOP, a stalled VM) would otherwise keep the new
// owner of its partitions from taking them until it wakes up. Nothing of the engine keeps
// a transaction open while it waits on anything but Postgres.
const IdleInTransactionTimeout = "10s"

const idleInTxParam = "idle_in_transaction_session_timeout"

// Open connects to the database at url, applies the embedded migrations and returns a
// Store. It blocks until the database answers or ctx ends.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if _, set := cfg.ConnConfig.RuntimeParams[idleInTxParam]; !set {
		cfg.ConnConfig.RuntimeParams[idleInTxParam] = IdleInTransactionTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	s := &Store{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: acquire connection: %w", err)
	}
	defer conn.Release()
	m, err := migrate.NewMigrator(ctx, conn.Conn(), "schema_version")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := m.LoadMigrations(mustSub(migrations, "migrations")); err != nil {
		return fmt.Errorf("migrate: load: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Close closes every connection. It blocks until connections in use are returned.
func (s *Store) Close() { s.pool.Close() }
