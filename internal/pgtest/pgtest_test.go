package pgtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestStartGivesEachTestItsOwnDatabase(t *testing.T) {
	ctx := context.Background()
	a, b := connect(t, Start(t)), connect(t, Start(t))
	if _, err := a.Exec(ctx, "CREATE TABLE only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("a table made in one test's database is in another's")
	}
	var super bool
	if err := a.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil || !super {
		t.Errorf("connected as a superuser: got %v, %v; want true", super, err)
	}
}

func TestDBName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"TestX", "testx"},
		{"TestStore/Streams/limit-2", "teststore_streams_limit_2"},
		{"TestA/Ünïcode name", "testa_n_code_name"},
		{"TestAVeryLongNameThatGoesOnAndOnAndOnBeyondTheLimit", "ngnamethatgoesonandonandonbeyondthelimit"},
		{"Test/__", "test"},
	} {
		if got := dbName(c.in); got != c.want {
			t.Errorf("dbName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// recorder is a test that records how it was ended.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()           {}
func (r *recorder) Skip(args ...any)  { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatal(args ...any) { r.failed = fmt.Sprint(args...) }

func TestUnavailableFailsUnlessOptional(t *testing.T) {
	for _, c := range []struct {
		env        string
		fail, skip bool
	}{{"", true, false}, {"0", true, false}, {"1", false, true}} {
		t.Run("FILLCAST_PG_OPTIONAL="+c.env, func(t *testing.T) {
			t.Setenv(OptionalEnv, c.env)
			r := &recorder{TB: t}
			unavailable(r, errors.New("pgtest: no server"))
			if (r.failed != "") != c.fail || (r.skipped != "") != c.skip {
				t.Fatalf("got failed %q, skipped %q; want fail %v, skip %v", r.failed, r.skipped, c.fail, c.skip)
			}
			msg := r.failed + r.skipped
			for _, want := range []string{"pgtest: no server", "install PostgreSQL", OptionalEnv + "=1"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
		})
	}
}
