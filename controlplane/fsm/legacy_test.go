package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/filelist"
	"github.com/hashicorp/raft"
)

// withoutListIndexes drops the pending lists' indexes from a state as
// stateOf returns it: a restored list's differs from a replayed one's.
func withoutListIndexes(v any) any {
	if lists, ok := v.(map[string]any)["file_lists"].(map[string]any); ok {
		for _, l := range lists {
			delete(l.(map[string]any), "index")
		}
	}
	return v
}

// legacySnapshot returns testdata/legacy-snapshot.json with titles added
// to its state (a snapshot of the previous release, which kept them with
// their files as given).
func legacySnapshot(t *testing.T, titles ...*fillcast.Title) []byte {
	t.Helper()
	snap, err := os.ReadFile("testdata/legacy-snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(snap))
	var state map[string]any
	if err := dec.Decode(&state); err != nil {
		t.Fatal(err)
	}
	rest := snap[dec.InputOffset():]
	for _, tt := range titles {
		var v any
		b, _ := json.Marshal(tt)
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		state["titles"].(map[string]any)[tt.ID] = v
	}
	out, err := json.Marshal(state)
	if err != nil {
		t.Fatal(err)
	}
	return append(out, rest...)
}

// TestLegacyFileLists: the lists the previous release accepted and
// filelist.Encode refuses (an upper-case or non-hex sha256, a path given
// twice) are refused to new writes (Validate) but normalized where they
// come from that release: its log entries (Apply) and snapshots
// (Restore), the same way; a title whose list is no list even then is
// restored without it.
func TestLegacyFileLists(t *testing.T) {
	t.Parallel()
	upper := strings.Repeat("AB", 32)
	files := []fillcast.File{
		{Path: "720p/seg-00002.m4s", Size: 1, SHA256: upper},
		{Path: "720p/seg-00001.m4s", Size: 2, SHA256: strings.Repeat("z", 64)},
		{Path: "720p/seg-00002.m4s", Size: 3, SHA256: upper},
		{Path: filelist.PosterPath, Size: 4},
	}
	want, wantSum := encoded(t, []fillcast.File{
		{Path: "720p/seg-00001.m4s", Size: 2},
		{Path: "720p/seg-00002.m4s", Size: 3, SHA256: strings.ToLower(upper)}, // the last one
		{Path: filelist.PosterPath, Size: 4},
	})
	title := withFiles("legacy", files)
	for _, c := range []Command{{Op: OpPutTitle, Title: title}, {Op: OpCreateTitle, Title: title}} {
		if err := c.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%s of a legacy list) = %v, want ErrInvalid", c.Op, err)
		}
	}
	if err := ValidateTitle(title); !errors.Is(err, ErrInvalid) {
		t.Errorf("ValidateTitle(a legacy list) = %v, want ErrInvalid", err)
	}
	broken := withFiles("broken", []fillcast.File{{Path: "../escape", Size: 1}})

	log, err := os.ReadFile("testdata/legacy-log.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	replayed := New(nil)
	lines := bytes.Split(bytes.TrimSpace(log), []byte("\n"))
	lines = append(lines, logOf(t, 0, Command{Op: OpPutTitle, Title: title}).Data)
	for i, line := range lines {
		if r := replayed.Apply(&raft.Log{Index: uint64(i + 2), Data: line}); r != nil {
			t.Fatalf("replay entry %d: %v", i+1, r)
		}
	}
	restored := New(nil)
	if err := restored.Restore(io.NopCloser(bytes.NewReader(legacySnapshot(t, title, broken)))); err != nil {
		t.Fatalf("Restore of a legacy snapshot: %v", err)
	}
	if restored.Generation() != 1 || restored.ListsDropped() != 1 || restored.ListsMoved() != 3 {
		t.Errorf("restored: Generation %d, ListsDropped %d, ListsMoved %d; want 1, 1, 3",
			restored.Generation(), restored.ListsDropped(), restored.ListsMoved())
	}
	for name, m := range map[string]*FSM{"replayed": replayed, "restored": restored} {
		m.Read(func(s *State) {
			tt := s.Titles["legacy"]
			l := s.FileLists[filelist.Path("legacy", wantSum.Digest)]
			if tt == nil || tt.FilesDigest != wantSum.Digest || tt.FileCount != 3 || tt.Poster != filelist.PosterPath || l == nil || !bytes.Equal(l.Body, want) {
				t.Errorf("%s: legacy = %+v, list %+v; want the normalized list %q", name, tt, l, want)
			}
			if name == "restored" && (l == nil || l.Index != restoredListIndex) {
				t.Errorf("restored: list %+v, want index %d", l, restoredListIndex)
			}
		})
	}
	restored.Read(func(s *State) {
		if b := s.Titles["broken"]; b == nil || b.Files != nil || b.FilesDigest != "" || len(s.FileLists) != 3 {
			t.Errorf("broken = %+v with %d pending lists; want it kept without files or list, and 3 lists", b, len(s.FileLists))
		}
	})
	// A snapshot of the restored state restores the same, indexes kept.
	again := New(nil)
	if err := again.Restore(io.NopCloser(bytes.NewReader(persisted(t, restored)))); err != nil {
		t.Fatal(err)
	}
	var a, b []*PendingList
	restored.Read(func(s *State) { a = s.PendingLists() })
	again.Read(func(s *State) { b = s.PendingLists() })
	if !slices.EqualFunc(a, b, func(x, y *PendingList) bool { return x.Index == y.Index && bytes.Equal(x.Body, y.Body) }) {
		t.Errorf("pending lists restored again %v, want %v", b, a)
	}
}
