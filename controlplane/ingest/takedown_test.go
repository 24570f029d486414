package ingest

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"strings"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/origin"
	"github.com/fillcast/fillcast/transcoder"
)

// TestTakedownWaitsForTheOrigin: the origin purge of a takedown stays
// pending while the origin is down (connections cut) or this node does
// not lead, and is done and recorded once both hold; the title can then
// be written again.
func TestTakedownWaitsForTheOrigin(t *testing.T) {
	t.Parallel()
	keys, err := auth.ParseKeys(strings.NewReader("k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"))
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	down.Store(true)
	root, url := flakyOrigin(t, origin.Deps{Keys: keys.Public()}, &down)
	seg := filepath.Join(root, "t1", "720p", "seg-00001.m4s")
	os.MkdirAll(filepath.Dir(seg), 0o755)
	if err := os.WriteFile(seg, []byte("segment"), 0o644); err != nil {
		t.Fatal(err)
	}

	st := &localState{f: fsm.New(nil)}
	ctx := context.Background()
	title := &fillcast.Title{ID: "t1", Name: "One", Status: fillcast.StatusNew}
	if err := st.Apply(ctx, fsm.Command{Op: fsm.OpPutTitle, Title: title}); err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(2 * time.Hour).Unix()
	td := &fsm.Takedown{Takedown: fillcast.Takedown{Title: "t1", At: time.Now(), TokensUntil: until}, Origin: true}
	if err := st.Apply(ctx, fsm.Command{Op: fsm.OpDeleteTitle, ID: "t1", Takedown: td}); err != nil {
		t.Fatal(err)
	}
	tc, err := transcoder.New(transcoder.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var leads atomic.Bool
	m, err := New(Config{Node: "n1", Dir: t.TempDir(), OriginURL: url},
		Deps{Transcoder: tc, State: st, AdminToken: "adm", Log: quiet(), Leader: leads.Load})
	if err != nil {
		t.Fatal(err)
	}
	pending := func() int {
		var n int
		st.Read(func(s *fsm.State) { n = len(s.Takedowns.Pending()) })
		return n
	}
	// The rounds of Run's purge loop, one at a time.
	for _, step := range []struct {
		name            string
		leads, originUp bool
		wantPending     int
	}{
		{"origin down, leading", true, false, 1},
		{"origin up, following", false, true, 1},
		{"origin up, leading", true, true, 0},
		{"nothing left", true, true, 0},
	} {
		leads.Store(step.leads)
		down.Store(!step.originUp)
		m.purgePending(ctx)
		if got := pending(); got != step.wantPending {
			t.Fatalf("%s: %d purges pending, want %d", step.name, got, step.wantPending)
		}
		if _, err := os.Stat(seg); (err == nil) != (step.wantPending == 1) {
			t.Fatalf("%s: t1's segment at the origin: %v", step.name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "t1")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("t1 at the origin after the purge: %v", err)
	}
	if err := st.Apply(ctx, fsm.Command{Op: fsm.OpPutTitle, Title: title}); err != nil {
		t.Errorf("t1 written again after the purge: %v", err)
	}
	// The origin took the token bound along.
	os.MkdirAll(filepath.Dir(seg), 0o755)
	os.WriteFile(seg, []byte("segment"), 0o644)
	path := keys.SignPath("t1", time.Now().Add(time.Hour), netip.Prefix{}) + "/720p/seg-00001.m4s"
	resp, err := http.Get(url + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("an old token at the origin: %d, want 403", resp.StatusCode)
	}
}
