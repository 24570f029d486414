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
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/accounts"
)

// Config configures a Store. Zero values mean the defaults named.
type Config struct {
	// DSN is the PostgreSQL connection string, as a URL
	// (postgres://user:password@host:5432/db?sslmode=verify-full) or in
	// key=value form. Required. Pool settings (pool_max_conns, …) may be
	// given in it too; MaxConns overrides its pool_max_conns.
	DSN string
	// MaxConns bounds the connections this process opens. Zero means
	// pgxpool's default: the greater of 4 and the number of CPUs.
	MaxConns int32
}

// DefaultConfig returns the defaults, with no DSN.
func DefaultConfig() Config { return Config{} }

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	if c.DSN == "" {
		return fillcast.ConfigErrorf("pgstore", "DSN", "required: a PostgreSQL connection string such as postgres://fillcast@db.example.com/fillcast")
	}
	if _, err := pgxpool.ParseConfig(c.DSN); err != nil {
		return fillcast.ConfigErrorf("pgstore", "DSN", "%v", err)
	}
	if c.MaxConns < 0 {
		return fillcast.ConfigErrorf("pgstore", "MaxConns", "%d is negative", c.MaxConns)
	}
	return nil
}

// Store is accounts.Store on PostgreSQL. It is safe for concurrent use,
// and for use by many processes on one database.
type Store struct {
	pool *pgxpool.Pool
}

var _ accounts.Store = (*Store)(nil)

// Open connects to the database of cfg.DSN, creates or upgrades the
// accounts' tables, and returns a Store; Close releases it.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	s := &Store{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
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

// SQLSTATEs the store branches on.
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

// pgCode returns the SQLSTATE and constraint of a server's error.
func pgCode(err error) (code, constraint string) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code, pe.ConstraintName
	}
	return "", ""
}

// exists maps a unique violation to ErrExists, keeping the server's
// message; other errors are only wrapped.
func exists(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if code, _ := pgCode(err); code == uniqueViolation {
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
