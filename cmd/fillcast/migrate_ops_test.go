package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/client"
	"github.com/fillcast/fillcast/filelist"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/fillcast/fillcast/origin"
)

// TestMigratePreviousRelease: the data directory of a control plane of
// the previous release (testdata/prev-release-data.tar.gz, written by
// scripts/prev-release-data), whose titles carried every file in the
// replicated state (two in its snapshot, one in its log after it), starts
// on this release in place. The titles keep their metadata and gain their
// file lists' summaries; each list is published to the origin
// byte-for-byte as filelist encodes the old files; `?files=1` gives the
// old files back; a snapshot taken after the migration holds no file
// list; and the node starts again from it.
func TestMigratePreviousRelease(t *testing.T) {
	bin := fillcastBinary(t)
	e := newOpsEnv(t, 1000)
	untar(t, "testdata/prev-release-data.tar.gz", e.dir)
	if err := os.Rename(filepath.Join(e.dir, "data"), filepath.Join(e.dir, "n1")); err != nil {
		t.Fatal(err)
	}
	oldSnaps := snapshotDirs(t, filepath.Join(e.dir, "n1"))
	if len(oldSnaps) != 1 {
		t.Fatalf("the previous release's directory has %d snapshots, want 1", len(oldSnaps))
	}

	// An origin the control plane publishes to, as ingest does.
	root := filepath.Join(e.dir, "published")
	ocfg := origin.DefaultConfig()
	ocfg.Root = root
	o, err := origin.New(ocfg, origin.Deps{AdminToken: "adm", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	osrv := httptest.NewServer(o)
	t.Cleanup(func() { osrv.Close(); o.Close() })

	addrs := cpAddrs{freeLoopback(t), freeLoopback(t), freeLoopback(t)}
	n1 := startControlPlaneProcAt(t, bin, e, "n1", "", addrs, "--origin", osrv.URL)
	ops, err := client.New(client.Config{URLs: []string{n1.url}, Timeout: 5 * time.Second}, client.Deps{Token: "adm"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want := map[string]struct {
		count  int
		poster bool
	}{"old1": {304, true}, "old2": {42, false}, "old3": {302, false}}

	var page struct {
		Titles     []fillcast.Title `json:"titles"`
		NextCursor string           `json:"next_cursor"`
	}
	poll.Until(t, 60*time.Second, "the migrated titles listed", func() bool {
		return ops.Do(ctx, "GET", "/v1/titles?limit=10", nil, &page) == nil && len(page.Titles) == 3
	})
	if page.NextCursor != "" {
		t.Errorf("three titles on one page of ten, but a next cursor %q", page.NextCursor)
	}
	for _, ti := range page.Titles {
		w, ok := want[ti.ID]
		switch {
		case !ok:
			t.Fatalf("unexpected title %q", ti.ID)
		case len(ti.Files) != 0:
			t.Errorf("%s: the listing carries %d files", ti.ID, len(ti.Files))
		case ti.FileCount != w.count || !filelist.ValidDigest(ti.FilesDigest) || ti.Bytes <= 0:
			t.Errorf("%s: summary %d files, %d bytes, digest %q; want %d files", ti.ID, ti.FileCount, ti.Bytes, ti.FilesDigest, w.count)
		case (ti.Poster != "") != w.poster || (len(ti.Downloads) == 1) != w.poster:
			t.Errorf("%s: poster %q downloads %v", ti.ID, ti.Poster, ti.Downloads)
		case ti.Name == "" || ti.Status != fillcast.StatusReady || len(ti.Renditions) != 1:
			t.Errorf("%s: metadata lost: %+v", ti.ID, ti)
		}

		// The old files, whole, through ?files=1; their list at the
		// origin once the leader published it.
		var full fillcast.Title
		if err := ops.Do(ctx, "GET", "/v1/titles/"+ti.ID+"?files=1", nil, &full); err != nil {
			t.Fatal(err)
		}
		body, s, err := filelist.Encode(full.Files)
		if err != nil || s.Digest != ti.FilesDigest || len(full.Files) != w.count || s.Bytes != ti.Bytes {
			t.Fatalf("%s: ?files=1 gave %d files (digest %s, %v), want %d of digest %s", ti.ID, len(full.Files), s.Digest, err, w.count, ti.FilesDigest)
		}
		published := filepath.Join(root, filepath.FromSlash(filelist.Path(ti.ID, ti.FilesDigest)))
		poll.Until(t, 60*time.Second, ti.ID+"'s list at the origin", func() bool {
			b, err := os.ReadFile(published)
			return err == nil && string(b) == string(body)
		})
	}

	// Once every list is published, the node snapshots: the new snapshot
	// holds summaries, not lists.
	var newSnap string
	poll.Until(t, 60*time.Second, "a snapshot after the migration", func() bool {
		for _, d := range snapshotDirs(t, filepath.Join(e.dir, "n1")) {
			if d != oldSnaps[0] {
				newSnap = d
			}
		}
		return newSnap != ""
	})
	oldTitles, _ := snapshotParts(t, oldSnaps[0])
	newTitles, newLists := snapshotParts(t, newSnap)
	if newLists != 0 || newTitles*4 > oldTitles || strings.Contains(string(readFile(t, filepath.Join(newSnap, "state.bin"))), "seg-00001.m4s") {
		t.Errorf("the snapshot after the migration: titles %d bytes (the old ones with two titles' files %d), pending lists %d bytes; want a summary a title and no list",
			newTitles, oldTitles, newLists)
	}

	// The migrated directory starts again, from its new snapshot.
	n1.cmd.Process.Signal(os.Interrupt)
	<-n1.exited
	n1 = startControlPlaneProcAt(t, bin, e, "n1", "", addrs, "--origin", osrv.URL)
	ops, _ = client.New(client.Config{URLs: []string{n1.url}, Timeout: 5 * time.Second}, client.Deps{Token: "adm"})
	poll.Until(t, 60*time.Second, "the titles after a restart", func() bool {
		var again fillcast.Title
		return ops.Do(ctx, "GET", "/v1/titles/old3?files=1", nil, &again) == nil && len(again.Files) == 302
	})
}

// untar extracts the gzipped tar file name into dir, refusing any path
// that leaves it.
func untar(t *testing.T, name, dir string) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if !filepath.IsLocal(h.Name) {
			t.Fatalf("%s: %q leaves the directory", name, h.Name)
		}
		p := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			err = writeFrom(p, tr, os.FileMode(h.Mode).Perm())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func writeFrom(p string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// snapshotDirs lists the raft snapshots of a node's data directory.
func snapshotDirs(t *testing.T, data string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(data, "raft", "snapshots", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, d := range m {
		if st, err := os.Stat(d); err == nil && st.IsDir() && !strings.HasSuffix(d, ".tmp") {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// snapshotParts is the size of the titles and of the pending file lists
// in a snapshot's state (the first JSON value of state.bin).
func snapshotParts(t *testing.T, dir string) (titles, lists int) {
	t.Helper()
	var st map[string]json.RawMessage
	if err := json.NewDecoder(bytes.NewReader(readFile(t, filepath.Join(dir, "state.bin")))).Decode(&st); err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	return len(st["titles"]), len(st["file_lists"])
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
