// Package pgdb is what Fillcast's PostgreSQL stores (accounts/pgstore,
// billing/pgstore) share: their Config, opening a pool of connections,
// bringing a store's schema to its newest version, and reading the
// SQLSTATE of a server's error. The stores keep their tables, queries
// and the meaning of their errors; pgdb knows nothing of records.
//
// Several schemas may share one database: each keeps its version in a
// table of its own and migrates under an advisory lock of its own, so
// that the stores upgrade independently, and many nodes may start at
// once.
//
// Errors are prefixed with the package of the caller, which passes its
// name (pkg), so that a store's errors read as its own.
package pgdb

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fillcast/fillcast"
)

// Config configures the connections to a database. Zero values mean the
// defaults named.
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

// Validate reports the first problem of c as a *fillcast.ConfigError of
// pkg, the package whose Config c is.
func (c Config) Validate(pkg string) error {
	if c.DSN == "" {
		return fillcast.ConfigErrorf(pkg, "DSN", "required: a PostgreSQL connection string such as postgres://fillcast@db.example.com/fillcast")
	}
	if _, err := pgxpool.ParseConfig(c.DSN); err != nil {
		return fillcast.ConfigErrorf(pkg, "DSN", "%v", err)
	}
	if c.MaxConns < 0 {
		return fillcast.ConfigErrorf(pkg, "MaxConns", "%d is negative", c.MaxConns)
	}
	return nil
}

// Schema is a store's tables as the versions that make them. Its
// VersionTable and LockKey name what databases already hold: once
// shipped, they never change.
type Schema struct {
	// Name is what errors call the schema: "migrate the <Name>".
	Name string
	// VersionTable is the table that keeps the schema's version, one row
	// of one column, made by the first Open.
	VersionTable string
	// LockKey is the key of the transaction-scoped advisory lock under
	// which migrations of the schema take turns: two nodes starting at
	// once would otherwise both create the tables, and one fail. Schemas
	// on one database have different keys, so that their migrations need
	// not wait for each other.
	LockKey int64
	// Migrations are the schema's versions: Migrations[i] takes a
	// database from version i to i+1. Append; never edit one that has
	// shipped.
	Migrations []string
}

// Open connects to the database of cfg.DSN, brings schema to its newest
// version, and returns the pool; closing it is the caller's. pkg is the
// caller's package: it names the Config in a *fillcast.ConfigError and
// prefixes the other errors. On failure nothing is left open.
func Open(ctx context.Context, pkg string, cfg Config, schema Schema) (*pgxpool.Pool, error) {
	if err := cfg.Validate(pkg); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkg, err)
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkg, err)
	}
	if err := migrate(ctx, pool, schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("%s: migrate the %s: %w", pkg, schema.Name, err)
	}
	return pool, nil
}

// migrate brings the schema to the newest version, in one transaction:
// a migration that fails leaves the database as it was.
func migrate(ctx context.Context, pool *pgxpool.Pool, s Schema) error {
	table := pgx.Identifier{s.VersionTable}.Sanitize()
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, s.LockKey); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (version integer NOT NULL)`); err != nil {
			return err
		}
		var v int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+table).Scan(&v); err != nil {
			return err
		}
		switch {
		case v > len(s.Migrations):
			return fmt.Errorf("the database's %s is version %d, newer than this program's %d: upgrade fillcast", s.Name, v, len(s.Migrations))
		case v == len(s.Migrations):
			return nil
		}
		for ; v < len(s.Migrations); v++ {
			if _, err := tx.Exec(ctx, s.Migrations[v]); err != nil {
				return fmt.Errorf("to version %d: %w", v+1, err)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM `+table); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+table+` (version) VALUES ($1)`, v)
		return err
	})
}

// SQLSTATEs the stores branch on.
const (
	UniqueViolation     = "23505"
	ForeignKeyViolation = "23503"
	DeadlockDetected    = "40P01"
)

// Code returns the SQLSTATE and the constraint of a server's error in
// err's chain, or empty strings if there is none.
func Code(err error) (code, constraint string) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code, pe.ConstraintName
	}
	return "", ""
}
