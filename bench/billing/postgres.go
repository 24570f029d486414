package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The throwaway PostgreSQL server is internal/pgserver's, durable
// (fsync and synchronous commit on, PostgreSQL's defaults), as a
// deployment would run it and as the raft log is; a -dsn server gets a
// database of the bench's own.

// createDatabase makes database name on the server of adminDSN and
// returns its connection string and a function that drops it.
func createDatabase(ctx context.Context, adminDSN, name string) (string, func() error, error) {
	exec := func(ctx context.Context, sql string) error {
		conn, err := pgx.Connect(ctx, adminDSN)
		if err != nil {
			return fmt.Errorf("postgres: connect: %w", err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("postgres: %s: %w", sql, err)
		}
		return nil
	}
	id := pgx.Identifier{name}.Sanitize()
	if err := exec(ctx, "CREATE DATABASE "+id); err != nil {
		return "", nil, err
	}
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return exec(ctx, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)")
	}
	dsn, err := withDatabase(adminDSN, name)
	if err != nil {
		drop()
		return "", nil, err
	}
	return dsn, drop, nil
}

// withDatabase returns dsn naming database db instead of its own, in
// either form of connection string.
func withDatabase(dsn, db string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("postgres: -dsn: %w", err)
		}
		u.Path = "/" + db
		return u.String(), nil
	}
	return dsn + " dbname=" + db, nil // a later keyword wins
}
