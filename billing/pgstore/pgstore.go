// Package pgstore is the billing store on PostgreSQL (billing.Store):
// subscriptions, invoices, the ledger and idempotent requests, shared by
// any number of control plane nodes, for a deployment whose accounts live
// in PostgreSQL too (accounts/pgstore; the tables share its database,
// named billing_* to keep apart). It passes the same contract suite as
// the store in the replicated state (billing/storetest).
//
// # Schema
//
//   - billing_subscriptions: the record whole as jsonb (doc), and beside
//     it the columns the store searches and checks: account, status,
//     version, created, and due_at, billing.DueAt of the record (NULL when
//     nothing is due), which DueSubscriptions compares with asOf. A
//     partial unique index on account WHERE status <> 'canceled' is the
//     rule of one live subscription per account.
//   - billing_invoices: the record as jsonb, with account, created and
//     number (unique, NULL for a draft).
//   - billing_invoice_numbers: per year, the last invoice number given.
//   - billing_entries: the ledger, a column per field, seq an identity
//     column, unique on (kind, invoice, idempotency_key).
//   - billing_requests: the answers of idempotent requests, keyed by
//     (account, key), the body kept byte for byte.
//
// Ids sort bytewise (COLLATE "C"), as in the replicated store. Times are
// kept to the microsecond, PostgreSQL's precision: Commit truncates them
// before writing, so the jsonb records and the columns agree and what
// Commit returns is what a read returns.
//
// # Across processes
//
// Commit checks the change (billing.CheckChange), then writes it in one
// READ COMMITTED transaction, so it is written whole or not at all, and
// its conditions hold against any number of writers:
//
//   - The subscriptions it writes are locked first (SELECT … FOR UPDATE,
//     in id order, so that two commits never wait on each other in a
//     circle), and their versions compared under the lock: a concurrent
//     compare-and-set on the same version waits for the first and then
//     finds the version moved (ErrConflict). A taken id is the primary
//     key's violation (ErrExists), a second live subscription of an
//     account the partial unique index's (ErrConflict), even against an
//     insert not yet committed.
//   - The invoice's row is locked (SELECT … FOR UPDATE) to read the
//     number it keeps; of two changes creating one invoice at once, the
//     second fails with ErrConflict.
//   - An invoice number is taken by incrementing its year's row of
//     billing_invoice_numbers inside the transaction: the row stays
//     locked until the commit, so numbers of one year are given in turn,
//     and a transaction that rolls back gives its number back. Numbers
//     have no gaps.
//   - A duplicate ledger entry is the unique index's violation
//     (ErrDuplicate), which aborts the whole change. Entries are appended
//     under a transaction-scoped advisory lock (key "fillledg" in ASCII),
//     so their Seq follow the order the changes commit in: a reader
//     paging by Seq never sees an entry while one of an earlier Seq is
//     still to commit. Seq may have gaps (a rolled back change used
//     some).
//   - A taken request key is the primary key's violation (ErrExists).
//
// The locks are taken in one order — subscriptions, invoice, number,
// ledger, request — so commits queue rather than deadlock; should the
// server detect a deadlock all the same, the change fails with
// ErrConflict, like any other that lost a race. Open creates or upgrades
// the schema under an advisory lock (key "fillbill", not the accounts
// store's "fillacct", so the two stores migrate independently), so that
// many nodes may start at once.
package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fillcast/fillcast/billing"
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

// Store is billing.Store on PostgreSQL. It is safe for concurrent use,
// and for use by many processes on one database.
type Store struct {
	pool *pgxpool.Pool
}

var _ billing.Store = (*Store)(nil)

// Open connects to the database of cfg.DSN, creates or upgrades the
// billing tables, and returns a Store; Close releases it.
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

// inTx runs fn in a READ COMMITTED transaction, committed when fn returns
// nil and rolled back otherwise. fn's errors are returned as they are;
// those of beginning and committing are wrapped.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return wrap(err, "begin")
	}
	defer tx.Rollback(ctx) // after Commit, it does nothing
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return wrap(err, "commit")
	}
	return nil
}

// wrap returns err prefixed with what failed; a deadlock the server broke
// becomes ErrConflict, since the change lost a race and may be retried.
func wrap(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if code, _ := pgdb.Code(err); code == pgdb.DeadlockDetected {
		return fmt.Errorf("pgstore: %s: %w: %w", what, billing.ErrConflict, err)
	}
	return fmt.Errorf("pgstore: %s: %w", what, err)
}

// notFound maps pgx.ErrNoRows to ErrNotFound.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("pgstore: %s: %w", fmt.Sprintf(format, args...), billing.ErrNotFound)
	}
	return wrap(err, format, args...)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("pgstore: %w: %s", billing.ErrInvalid, fmt.Sprintf(format, args...))
}
