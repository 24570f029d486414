// Package pgtest gives tests a real PostgreSQL: a throwaway server made
// with initdb in a temporary directory and started with pg_ctl, listening
// only on a Unix socket in that directory, and a fresh database for each
// test. Tests of code that speaks to PostgreSQL (accounts/pgstore) run
// against it rather than against a mock.
//
// A package whose TestMain calls Main shares one server among all its
// tests (a database each, made with CREATE DATABASE, about 0.15 s) and
// stops it when they end; without Main, every Start starts and stops a
// server of its own (about 2 s).
//
// The binaries come from /usr/lib/postgresql/*/bin (the newest version),
// else from PATH. When they are missing or the server cannot start, Start
// fails the test saying to install PostgreSQL (make test does), unless
// FILLCAST_PG_OPTIONAL=1 is set, when it skips it.
//
// A server outlives its test binary only when that binary dies without
// running its cleanups (a panic, a timeout); the next Start stops such
// orphans and removes their directories.
package pgtest

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fillcast/fillcast/internal/pgserver"
	"github.com/jackc/pgx/v5"
)

// OptionalEnv is the environment variable that, set to 1, makes Start
// skip rather than fail a test when PostgreSQL is unavailable.
const OptionalEnv = "FILLCAST_PG_OPTIONAL"

// shared is the server of a test binary whose TestMain calls Main. It is
// the package's only mutable state: a test binary's, set up once by Main
// before any test runs.
var shared struct {
	enabled bool
	once    sync.Once
	srv     *pgserver.Server
	err     error
	dbs     atomic.Int64
}

// Main runs a package's tests with one PostgreSQL server for all of them,
// started by the first Start, and stops it when they end; call it from
// TestMain. It exits the process with the tests' status.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	shared.enabled = true
	defer func() {
		if shared.srv != nil {
			if err := shared.srv.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		}
	}()
	return m.Run()
}

// Start returns the connection string (key=value form) of a fresh, empty
// database on a running PostgreSQL server, owned by the superuser it
// connects as. The database, and a server started for this test alone,
// are dropped in t.Cleanup.
func Start(t testing.TB) string {
	t.Helper()
	if !shared.enabled {
		srv, err := pgserver.Start()
		if err != nil {
			unavailable(t, err)
		}
		t.Cleanup(func() {
			if err := srv.Stop(); err != nil {
				t.Error(err)
			}
		})
		return srv.DSN("postgres")
	}
	shared.once.Do(func() { shared.srv, shared.err = pgserver.Start() })
	if shared.err != nil {
		unavailable(t, shared.err)
	}
	name := fmt.Sprintf("t%d_%s", shared.dbs.Add(1), dbName(t.Name()))
	if err := shared.srv.Exec("CREATE DATABASE " + pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		// FORCE ends the connections the test left open, which would
		// otherwise make the drop fail.
		if err := shared.srv.Exec("DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return shared.srv.DSN(name)
}

// unavailable fails, or skips under OptionalEnv, a test that cannot have
// a server.
func unavailable(t testing.TB, err error) {
	t.Helper()
	msg := fmt.Sprintf("%v\nThis test needs a PostgreSQL server: install PostgreSQL "+
		"(apt-get install postgresql; make test does it), or set %s=1 to skip such tests.", err, OptionalEnv)
	if os.Getenv(OptionalEnv) == "1" {
		t.Skip(msg)
		return
	}
	t.Fatal(msg)
}

var unsafeName = regexp.MustCompile(`[^a-z0-9_]+`)

// dbName turns a test's name into part of a database name: lower case,
// letters, digits and underscores, short enough for PostgreSQL's 63 bytes.
func dbName(test string) string {
	n := unsafeName.ReplaceAllString(strings.ToLower(test), "_")
	if len(n) > 40 {
		n = n[len(n)-40:]
	}
	return strings.Trim(n, "_")
}
