package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

func TestPrivateServerStopsAndLeavesNothing(t *testing.T) {
	srv, err := startServer()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(context.Background(), srv.dsn("postgres"))
	if err != nil {
		srv.stop()
		t.Fatal(err)
	}
	conn.Close(context.Background())
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(srv.dir); !os.IsNotExist(err) {
		t.Errorf("after stop, %s: got %v, want it gone", srv.dir, err)
	}
}

func TestSweepStopsOrphans(t *testing.T) {
	srv, err := startServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := os.Stat(srv.dir); err == nil {
			srv.stop()
		}
	})
	// A finished process's pid stands for a test binary that died.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(srv.dir, ownerFile), []byte(strconv.Itoa(dead.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	sweep(filepath.Dir(srv.dir), srv.bin, srv.asUser)
	if _, err := os.Stat(srv.dir); !os.IsNotExist(err) {
		t.Errorf("after sweep, orphan %s: got %v, want it gone", srv.dir, err)
	}
	if _, err := pgx.Connect(context.Background(), srv.dsn("postgres")); err == nil {
		t.Errorf("after sweep, the orphan server still accepts connections")
	}
}

func TestSweepLeavesLiveOwnersAlone(t *testing.T) {
	srv, err := startServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.stop() })
	sweep(filepath.Dir(srv.dir), srv.bin, srv.asUser)
	conn, err := pgx.Connect(context.Background(), srv.dsn("postgres"))
	if err != nil {
		t.Fatalf("a server whose test binary lives was swept: %v", err)
	}
	conn.Close(context.Background())
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
