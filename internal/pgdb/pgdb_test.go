package pgdb_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/internal/leakcheck"
	"github.com/fillcast/fillcast/internal/pgdb"
	"github.com/fillcast/fillcast/internal/pgtest"
)

// One PostgreSQL for the package's tests, a database for each.
func TestMain(m *testing.M) { pgtest.Main(m) }

// notes is a schema of two versions, as a store's grows: a table, then
// a column.
var notes = pgdb.Schema{
	Name:         "notes schema",
	VersionTable: "notes_schema_version",
	LockKey:      0x66696c6c_6e6f7465, // "fillnote"
	Migrations: []string{
		`CREATE TABLE notes (id text PRIMARY KEY, body text NOT NULL)`,
		`ALTER TABLE notes ADD COLUMN author text`,
	},
}

// open opens schema on dsn as package "notes", and closes it in
// t.Cleanup.
func open(t *testing.T, dsn string, schema pgdb.Schema) *pgxpool.Pool {
	t.Helper()
	pool, err := pgdb.Open(context.Background(), "notes", pgdb.Config{DSN: dsn, MaxConns: 4}, schema)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// wantVersion checks that schema's version table holds one row, want.
func wantVersion(t *testing.T, pool *pgxpool.Pool, schema pgdb.Schema, want int) {
	t.Helper()
	rows, _ := pool.Query(context.Background(), `SELECT version FROM `+schema.VersionTable)
	got, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil || len(got) != 1 || got[0] != want {
		t.Errorf("versions in %s: got %v, %v; want [%d]", schema.VersionTable, got, err, want)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		name  string
		cfg   pgdb.Config
		field string // "" for valid
	}{
		{"url", pgdb.Config{DSN: "postgres://fillcast@db.example.com/fillcast"}, ""},
		{"key=value", pgdb.Config{DSN: "host=/run/postgresql dbname=fillcast", MaxConns: 20}, ""},
		{"no dsn", pgdb.DefaultConfig(), "DSN"},
		{"malformed dsn", pgdb.Config{DSN: "postgres://%zz"}, "DSN"},
		{"negative max conns", pgdb.Config{DSN: "dbname=x", MaxConns: -1}, "MaxConns"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate("notes")
			var ce *fillcast.ConfigError
			switch {
			case c.field == "" && err != nil:
				t.Errorf("Validate: got %v, want nil", err)
			case c.field != "" && (!errors.As(err, &ce) || ce.Field != c.field || ce.Pkg != "notes"):
				t.Errorf("Validate: got %v, want a ConfigError of notes's field %s", err, c.field)
			}
		})
	}
}

func TestOpenRefusesAnInvalidConfig(t *testing.T) {
	_, err := pgdb.Open(context.Background(), "notes", pgdb.Config{}, notes)
	var ce *fillcast.ConfigError
	if !errors.As(err, &ce) || ce.Pkg != "notes" || ce.Field != "DSN" {
		t.Errorf("Open with no DSN: got %v, want notes's ConfigError of DSN", err)
	}
}

// Open brings a database of any earlier version to the newest, running
// only the migrations it lacks, and keeps its rows: a database already
// current is left as it is (migrating again would fail to create the
// table that is there).
func TestOpenMigrates(t *testing.T) {
	older := notes
	older.Migrations = notes.Migrations[:1]
	for _, c := range []struct {
		name    string
		earlier *pgdb.Schema // nil for an empty database
	}{
		{"empty", nil},
		{"older", &older},
		{"current", &notes},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := pgtest.Start(t)
			if c.earlier != nil {
				first := open(t, dsn, *c.earlier)
				if _, err := first.Exec(ctx, `INSERT INTO notes (id, body) VALUES ('n1', 'hello')`); err != nil {
					t.Fatal(err)
				}
				first.Close()
			}
			pool := open(t, dsn, notes)
			if _, err := pool.Exec(ctx, `INSERT INTO notes (id, body, author) VALUES ('n2', 'hi', 'ann')`); err != nil {
				t.Errorf("insert into the newest schema: %v", err)
			}
			var n int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM notes`).Scan(&n); err != nil || (n == 2) != (c.earlier != nil) {
				t.Errorf("notes after Open: got %d, %v; want the earlier one kept", n, err)
			}
			wantVersion(t, pool, notes, 2)
		})
	}
}

// A migration that fails leaves the database at its version, and Open
// says which migration failed.
func TestOpenFailedMigrationChangesNothing(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	broken := notes
	broken.Migrations = append(notes.Migrations[:1:1], `ALTER TABLE no_such_table ADD COLUMN x text`)
	_, err := pgdb.Open(ctx, "notes", pgdb.Config{DSN: dsn}, broken)
	if want := "notes: migrate the notes schema: to version 2: "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Open with a failing migration: got %v, want an error starting %q", err, want)
	}
	// Had the failed Open kept version 1's table, this one would fail to
	// create it.
	pool := open(t, dsn, notes)
	wantVersion(t, pool, notes, 2)
}

func TestOpenRefusesANewerSchema(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	pool := open(t, dsn, notes)
	if _, err := pool.Exec(ctx, `UPDATE notes_schema_version SET version = version + 1`); err != nil {
		t.Fatal(err)
	}
	_, err := pgdb.Open(ctx, "notes", pgdb.Config{DSN: dsn}, notes)
	want := "notes: migrate the notes schema: the database's notes schema is version 3, newer than this program's 2: upgrade fillcast"
	if err == nil || err.Error() != want {
		t.Errorf("Open on a newer schema: got %v, want %q", err, want)
	}
}

func TestOpenConcurrently(t *testing.T) {
	dsn := pgtest.Start(t)
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			pool, err := pgdb.Open(context.Background(), "notes", pgdb.Config{DSN: dsn, MaxConns: 2}, notes)
			if err == nil {
				pool.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d of %d at once: %v", i+1, n, err)
		}
	}
}

// Two schemas on one database keep their versions apart and migrate
// under locks of their own: one's migration does not wait for the
// other's.
func TestSchemasMigrateIndependently(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	other := pgdb.Schema{
		Name:         "tags schema",
		VersionTable: "tags_schema_version",
		LockKey:      0x66696c6c_74616773, // "filltags"
		Migrations:   []string{`CREATE TABLE tags (id text PRIMARY KEY)`},
	}
	// Hold notes' lock, as a node migrating it would.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, notes.LockKey); err != nil {
		t.Fatal(err)
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tags, err := pgdb.Open(octx, "notes", pgdb.Config{DSN: dsn}, other)
	if err != nil {
		t.Fatalf("Open of tags while notes' lock is held: %v", err)
	}
	tags.Close()
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	pool := open(t, dsn, notes)
	wantVersion(t, pool, notes, 2)
	wantVersion(t, pool, other, 1)
}

func TestOpenFailsClearly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A socket directory where no server listens.
	_, err := pgdb.Open(ctx, "notes", pgdb.Config{DSN: "host=" + t.TempDir() + " dbname=x connect_timeout=5"}, notes)
	if err == nil || !strings.HasPrefix(err.Error(), "notes: ") {
		t.Errorf("Open without a server: got %v, want an error prefixed notes:", err)
	}
}

func TestCloseLeavesNoGoroutine(t *testing.T) {
	dsn := pgtest.Start(t)
	base := leakcheck.Baseline()
	pool, err := pgdb.Open(context.Background(), "notes", pgdb.Config{DSN: dsn}, notes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(context.Background(), `INSERT INTO notes (id, body) VALUES ('n1', 'hello')`); err != nil {
		t.Fatal(err)
	}
	pool.Close()
	pool.Close() // twice is safe
	leakcheck.VerifyNone(t, base)
}

func TestCode(t *testing.T) {
	ctx := context.Background()
	pool := open(t, pgtest.Start(t), notes)
	if _, err := pool.Exec(ctx, `CREATE TABLE tagged (note text REFERENCES notes (id))`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO notes (id, body) VALUES ('n1', 'hello')`); err != nil {
		t.Fatal(err)
	}
	exec := func(sql string) error { _, err := pool.Exec(ctx, sql); return err }
	for _, c := range []struct {
		name             string
		err              error
		code, constraint string
	}{
		{"unique", exec(`INSERT INTO notes (id, body) VALUES ('n1', 'again')`), pgdb.UniqueViolation, "notes_pkey"},
		{"foreign key", exec(`INSERT INTO tagged (note) VALUES ('n2')`), pgdb.ForeignKeyViolation, "tagged_note_fkey"},
		{"wrapped", fmt.Errorf("notes: add n1: %w", exec(`INSERT INTO notes (id, body) VALUES ('n1', 'again')`)), pgdb.UniqueViolation, "notes_pkey"},
		{"not the server's", errors.New("no"), "", ""},
		{"nil", nil, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, constraint := pgdb.Code(c.err)
			if code != c.code || constraint != c.constraint {
				t.Errorf("Code(%v): got %q, %q; want %q, %q", c.err, code, constraint, c.code, c.constraint)
			}
		})
	}
}
