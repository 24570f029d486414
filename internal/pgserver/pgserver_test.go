package pgserver

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestPrivateServerStopsAndLeavesNothing(t *testing.T) {
	srv, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(context.Background(), srv.DSN("postgres"))
	if err != nil {
		srv.Stop()
		t.Fatal(err)
	}
	conn.Close(context.Background())
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(srv.dir); !os.IsNotExist(err) {
		t.Errorf("after stop, %s: got %v, want it gone", srv.dir, err)
	}
}

func TestSweepStopsOrphans(t *testing.T) {
	srv, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := os.Stat(srv.dir); err == nil {
			srv.Stop()
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
	if _, err := pgx.Connect(context.Background(), srv.DSN("postgres")); err == nil {
		t.Errorf("after sweep, the orphan server still accepts connections")
	}
}

func TestSweepLeavesLiveOwnersAlone(t *testing.T) {
	srv, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	sweep(filepath.Dir(srv.dir), srv.bin, srv.asUser)
	conn, err := pgx.Connect(context.Background(), srv.DSN("postgres"))
	if err != nil {
		t.Fatalf("a server whose test binary lives was swept: %v", err)
	}
	conn.Close(context.Background())
}
