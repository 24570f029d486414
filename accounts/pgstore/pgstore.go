// Package pgstore is the accounts store for Fillcast at scale: the
// records in PostgreSQL, shared by any number of control plane nodes, for
// when the accounts outgrow what every node can hold in its replicated
// state (accounts/embedded). It passes the same contract suite
// (accounts/storetest).
//
// The conditional writes hold under concurrency across processes: a
// unique email is a unique index; the limits on an account's profiles,
// sessions and streams are checked and written in one transaction that
// first locks the account's row (SELECT … FOR NO KEY UPDATE), so writes to
// one account take turns while other accounts' go on. Open creates or
// upgrades the schema, under an advisory lock, so that many nodes may
// start at once.
package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/internal/pgdb"
)

// Config configures a Store: DSN, the PostgreSQL connection string
// (required), and MaxConns, how many connections this process may open
// (zero: pgxpool's default). It is pgdb.Config, whose fields say more.
type Config pgdb.Config

// DefaultConfig returns the defaults, with no DSN.
func DefaultConfig() Config { return Config(pgdb.DefaultConfig()) }

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error { return pgdb.Config(c).Validate("pgstore") }

// Store is accounts.Store on PostgreSQL. It is safe for concurrent use,
// and for use by many processes on one database.
type Store struct {
	pool *pgxpool.Pool
}

var _ accounts.Store = (*Store)(nil)

// Open connects to the database of cfg.DSN, creates or upgrades the
// accounts' tables, and returns a Store; Close releases it.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	pool, err := pgdb.Open(ctx, "pgstore", pgdb.Config(cfg), schema)
	if err != nil {
		return nil, err
	}
	return &Store{pool: pool}, nil
}

// Close closes the connections, waiting for those in use. It is safe to
// call twice.
func (s *Store) Close() { s.pool.Close() }

// inTx runs fn in a transaction, committed when fn returns nil. Its
// isolation is READ COMMITTED: each statement sees what committed before
// it, so a statement after the account's row lock sees every write of the
// transactions that held the lock before.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// lockAccount locks an account's row until the transaction ends, so that
// the account's conditional writes take turns; ErrNotFound if there is no
// such account. NO KEY UPDATE, not UPDATE: the foreign keys of the rows
// inserted meanwhile (which take KEY SHARE) need not wait.
func lockAccount(ctx context.Context, tx pgx.Tx, id string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE`, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("pgstore: account %q: %w", id, accounts.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("pgstore: lock account %q: %w", id, err)
	}
	return nil
}

// exists maps a unique violation to ErrExists, keeping the server's
// message; other errors are only wrapped.
func exists(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if code, _ := pgdb.Code(err); code == pgdb.UniqueViolation {
		return fmt.Errorf("pgstore: %s: %w: %w", what, accounts.ErrExists, err)
	}
	return fmt.Errorf("pgstore: %s: %w", what, err)
}

// notFound maps pgx.ErrNoRows to ErrNotFound.
func notFound(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("pgstore: %s: %w", what, accounts.ErrNotFound)
	}
	return fmt.Errorf("pgstore: %s: %w", what, err)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("pgstore: %w: %s", accounts.ErrInvalid, fmt.Sprintf(format, args...))
}
