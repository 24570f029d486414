package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/filelist"
	"github.com/hashicorp/raft"
)

// filesOf returns n files of a title: a poster, a download and
// segments, in no particular order.
func filesOf(n int, seed byte) []fillcast.File {
	files := []fillcast.File{
		{Path: "download/720p.mp4", Size: 3_000_000, SHA256: strings.Repeat("d", 64)},
		{Path: filelist.PosterPath, Size: 40_000, SHA256: strings.Repeat("e", 64)},
	}
	for i := len(files); i < n; i++ {
		files = append(files, fillcast.File{Path: fmt.Sprintf("720p/seg-%05d.m4s", n-i), Size: 1_000_000 + int64(i) + int64(seed)})
	}
	return files
}

func withFiles(id string, files []fillcast.File) *fillcast.Title {
	t := readyTitle(id)
	t.Files = files
	return t
}

func encoded(t *testing.T, files []fillcast.File) ([]byte, filelist.Summary) {
	t.Helper()
	body, sum, err := filelist.Encode(files)
	if err != nil {
		t.Fatal(err)
	}
	return body, sum
}

// TestTitleFileLists: a title given with files is stored with its
// list's summary and without them, the list pending until published;
// digests given with files must match them; a metadata edit keeps the
// summary; a takedown drops the title's pending lists.
func TestTitleFileLists(t *testing.T) {
	t.Parallel()
	f1, f2 := filesOf(6, 1), filesOf(9, 2)
	body1, sum1 := encoded(t, f1)
	body2, sum2 := encoded(t, f2)
	var seen []*fillcast.Title
	f := New(func(c Command) {
		if c.Title != nil {
			seen = append(seen, c.Title)
		}
	})
	shared := withFiles("t1", f1)
	edited := readyTitle("t1")
	edited.Name, edited.Files = "Edited", nil
	given := readyTitle("t2")
	given.Files, given.FilesDigest, given.Bytes, given.FileCount = nil, sum2.Digest, 7, 3
	mismatch := withFiles("t1", f2)
	mismatch.FilesDigest = sum1.Digest
	matching := withFiles("t1", f1)
	matching.FilesDigest = sum1.Digest
	badDigest := readyTitle("t1")
	badDigest.Files, badDigest.FilesDigest = nil, strings.ToUpper(sum1.Digest)
	unlisted := readyTitle("t3")
	unlisted.Files, unlisted.Bytes = nil, 5
	badPoster := withFiles("t3", nil)
	badPoster.FilesDigest, badPoster.Poster = sum1.Digest, "cover.png"
	takedown := &Takedown{Takedown: fillcast.Takedown{Title: "t1", At: time.Unix(1, 0), TokensUntil: 10}}

	want1 := func(s *State) *fillcast.Title {
		tt := s.Titles["t1"]
		if tt == nil || tt.Files != nil || tt.FilesDigest != sum1.Digest || tt.Bytes != sum1.Bytes || tt.FileCount != 6 ||
			tt.Poster != filelist.PosterPath || !slices.Equal(tt.Downloads, []string{"download/720p.mp4"}) {
			t.Errorf("t1 = %+v, want the summary of its files (%s, %d bytes, 6 files, poster, one download) without them", tt, sum1.Digest, sum1.Bytes)
		}
		return tt
	}
	steps := []struct {
		name  string
		cmd   Command
		err   error
		check func(s *State)
	}{
		{"put with files", Command{Op: OpPutTitle, Title: shared}, nil, func(s *State) {
			want1(s)
			if b, ok := s.PendingList("t1", sum1.Digest); !ok || !bytes.Equal(b, body1) {
				t.Errorf("pending list of t1 = %q, %v; want its encoded files", b, ok)
			}
			if len(shared.Files) != 6 || shared.FilesDigest != "" {
				t.Error("Apply changed the command's title")
			}
		}},
		{"metadata edit keeps the summary", Command{Op: OpPutTitle, Title: edited}, nil, func(s *State) {
			if want1(s).Name != "Edited" {
				t.Errorf("t1's name = %q after the edit", s.Titles["t1"].Name)
			}
		}},
		{"files with their digest", Command{Op: OpPutTitle, Title: matching}, nil, func(s *State) { want1(s) }},
		{"files with another digest", Command{Op: OpPutTitle, Title: mismatch}, ErrInvalid, nil},
		{"bad digest", Command{Op: OpPutTitle, Title: badDigest}, ErrInvalid, nil},
		{"summary without a list", Command{Op: OpCreateTitle, Title: unlisted}, ErrInvalid, nil},
		{"bad poster", Command{Op: OpCreateTitle, Title: badPoster}, ErrInvalid, nil},
		{"digest without files", Command{Op: OpCreateTitle, Title: given}, nil, func(s *State) {
			if tt := s.Titles["t2"]; tt.FilesDigest != sum2.Digest || tt.Bytes != 7 || tt.FileCount != 3 {
				t.Errorf("t2 = %+v, want the summary as given", tt)
			}
			if _, ok := s.PendingList("t2", sum2.Digest); ok || len(s.FileLists) != 1 {
				t.Errorf("pending lists %v, want t1's alone", s.PendingLists())
			}
		}},
		{"stale publish", Command{Op: OpFilesPublished, ID: "t1", Digest: sum1.Digest, ListIndex: 2}, nil, func(s *State) {
			if l := s.FileLists[filelist.Path("t1", sum1.Digest)]; l == nil || l.Index != 3 {
				t.Errorf("t1's list %+v after publishing it as of index 2, want it kept, added at 3", l)
			}
		}},
		{"published", Command{Op: OpFilesPublished, ID: "t1", Digest: sum1.Digest, ListIndex: 3}, nil, func(s *State) {
			if len(s.FileLists) != 0 {
				t.Errorf("pending lists %v after publishing the only one", s.PendingLists())
			}
			want1(s)
		}},
		{"published again", Command{Op: OpFilesPublished, ID: "t1", Digest: sum1.Digest, ListIndex: 3}, nil, nil},
		{"published without a digest", Command{Op: OpFilesPublished, ID: "t1", ListIndex: 3}, ErrInvalid, nil},
		{"published without an index", Command{Op: OpFilesPublished, ID: "t1", Digest: sum1.Digest}, ErrInvalid, nil},
		{"new files", Command{Op: OpPutTitle, Title: withFiles("t1", f2)}, nil, nil},
		{"old files again", Command{Op: OpPutTitle, Title: withFiles("t1", f1)}, nil, nil},
		{"other title's files", Command{Op: OpPutTitle, Title: withFiles("t2", f2)}, nil, func(s *State) {
			var got []string
			for _, l := range s.PendingLists() {
				got = append(got, l.Title+"/"+l.Digest)
			}
			// t1's list of f2 was superseded before it was published.
			want := []string{"t1/" + sum1.Digest, "t2/" + sum2.Digest}
			if !slices.Equal(got, want) {
				t.Errorf("PendingLists = %v, want %v", got, want)
			}
			if b, _ := s.PendingList("t2", sum2.Digest); !bytes.Equal(b, body2) {
				t.Errorf("t2's list = %q", b)
			}
		}},
		{"takedown", Command{Op: OpDeleteTitle, ID: "t1", Takedown: takedown}, nil, func(s *State) {
			if ls := s.PendingLists(); len(ls) != 1 || ls[0].Title != "t2" {
				t.Errorf("pending lists %v after t1's takedown, want t2's alone", ls)
			}
		}},
		{"created again", Command{Op: OpCreateTitle, Title: withFiles("t1", f1)}, nil, nil},
		{"publish from before the takedown", Command{Op: OpFilesPublished, ID: "t1", Digest: sum1.Digest, ListIndex: 15}, nil, func(s *State) {
			if _, ok := s.PendingList("t1", sum1.Digest); !ok {
				t.Error("a publish read before the takedown deleted the list added again after it")
			}
		}},
		{"published after", Command{Op: OpFilesPublished, ID: "t1", Digest: sum1.Digest, ListIndex: 18}, nil, func(s *State) {
			if _, ok := s.PendingList("t1", sum1.Digest); ok {
				t.Error("t1's list pending after its publish")
			}
		}},
	}
	for i, st := range steps {
		before, gen := stateOf(t, f), f.Generation()
		r := f.Apply(logOf(t, uint64(i+1), st.cmd))
		err, _ := r.(error)
		if (err == nil) != (st.err == nil) || !errors.Is(err, st.err) {
			t.Fatalf("%s: Apply = %v, want %v", st.name, r, st.err)
		}
		if err != nil && !reflect.DeepEqual(stateOf(t, f), before) {
			t.Errorf("%s: refused, but the state changed", st.name)
		}
		if want := gen + map[bool]uint64{true: 1}[err == nil]; f.Generation() != want {
			t.Errorf("%s: Generation %d, want %d", st.name, f.Generation(), want)
		}
		if st.check != nil {
			f.Read(st.check)
		}
	}
	for _, tt := range seen {
		if tt.Files != nil || tt.FilesDigest == "" {
			t.Errorf("onChange saw title %+v, want it as stored", tt)
		}
	}
	if got := f.ListsMoved(); got != 6 {
		t.Errorf("ListsMoved = %d, want 6", got)
	}
}

// TestTitlesAfter: the id index follows puts and deletes, and a restore.
func TestTitlesAfter(t *testing.T) {
	t.Parallel()
	f := New(nil)
	rng := rand.New(rand.NewPCG(1, 2))
	ids := map[string]bool{}
	for i := range 600 {
		id := fmt.Sprintf("t%d", rng.IntN(300))
		c := Command{Op: OpPutTitle, Title: readyTitle(id)}
		if rng.IntN(3) == 0 {
			c = Command{Op: OpDeleteTitle, ID: id}
			delete(ids, id)
		} else {
			ids[id] = true
		}
		if r := f.Apply(logOf(t, uint64(i+1), c)); r != nil {
			t.Fatal(r)
		}
	}
	want := make([]string, 0, len(ids))
	for id := range ids {
		want = append(want, id)
	}
	slices.Sort(want)
	walk := func(f *FSM, after string, limit int) []string {
		var got []string
		f.Read(func(s *State) {
			s.TitlesAfter(after, func(tt *fillcast.Title) bool {
				got = append(got, tt.ID)
				return len(got) < limit
			})
		})
		return got
	}
	g := New(nil)
	if err := g.Restore(io.NopCloser(bytes.NewReader(persisted(t, f)))); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]*FSM{"applied": f, "restored": g} {
		if got := walk(m, "", len(want)+1); !slices.Equal(got, want) {
			t.Errorf("%s: TitlesAfter(\"\") = %v, want %v", name, got, want)
		}
		mid := want[len(want)/2]
		if got := walk(m, mid, 5); !slices.Equal(got, want[len(want)/2+1:len(want)/2+6]) {
			t.Errorf("%s: TitlesAfter(%q) first 5 = %v", name, mid, got)
		}
		if got := walk(m, mid+"0", 2); !slices.Equal(got, want[len(want)/2+1:len(want)/2+3]) {
			t.Errorf("%s: TitlesAfter(%q), an absent id, first 2 = %v", name, mid+"0", got)
		}
		if got := walk(m, "z", 5); got != nil {
			t.Errorf("%s: TitlesAfter past the end = %v", name, got)
		}
	}
}

// legacyFiles returns the files of each title of a snapshot's first
// JSON value.
func legacyFiles(t *testing.T, snap []byte) map[string][]fillcast.File {
	var st struct {
		Titles map[string]struct {
			Files []fillcast.File `json:"files"`
		} `json:"titles"`
	}
	if err := json.NewDecoder(bytes.NewReader(snap)).Decode(&st); err != nil {
		t.Fatal(err)
	}
	out := map[string][]fillcast.File{}
	for id, tt := range st.Titles {
		out[id] = tt.Files
	}
	return out
}

// TestLegacyState: a snapshot of the previous release (titles with their
// files; testdata/legacy-snapshot.json, written by that release's FSM
// from the commands in testdata/legacy-log.jsonl) restores to titles
// with their lists' summaries and the lists pending, the same state as
// replaying its log; the state persists without any title's files.
func TestLegacyState(t *testing.T) {
	t.Parallel()
	snap, err := os.ReadFile("testdata/legacy-snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	restored := New(nil)
	if err := restored.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	log, err := os.ReadFile("testdata/legacy-log.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	replayed := New(nil)
	for i, line := range bytes.Split(bytes.TrimSpace(log), []byte("\n")) {
		if r := replayed.Apply(&raft.Log{Index: uint64(i + 1), Data: line}); r != nil {
			t.Fatalf("replay entry %d: %v", i+1, r)
		}
	}
	if !reflect.DeepEqual(withoutListIndexes(stateOf(t, restored)), withoutListIndexes(stateOf(t, replayed))) {
		t.Errorf("restored and replayed states differ:\n%v\n%v", stateOf(t, restored), stateOf(t, replayed))
	}
	old := legacyFiles(t, snap)
	want := map[string]struct {
		bytes     int64
		count     int
		poster    string
		downloads []string
	}{
		"alpha": {6_552_100, 8, filelist.PosterPath, []string{"download/720p.mp4"}},
		"beta":  {1_001_000, 3, "", nil},
		"gamma": {0, 0, "", nil},
	}
	for name, m := range map[string]*FSM{"restored": restored, "replayed": replayed} {
		if m.ListsMoved() != 2 {
			t.Errorf("%s: ListsMoved = %d, want 2", name, m.ListsMoved())
		}
		m.Read(func(s *State) {
			if len(s.Titles) != len(want) || len(s.FileLists) != 2 {
				t.Errorf("%s: %d titles, %d pending lists; want 3 and 2", name, len(s.Titles), len(s.FileLists))
			}
			for id, w := range want {
				tt := s.Titles[id]
				if tt == nil || tt.Files != nil || tt.Bytes != w.bytes || tt.FileCount != w.count || tt.Poster != w.poster || !slices.Equal(tt.Downloads, w.downloads) {
					t.Errorf("%s: %s = %+v, want %+v and no files", name, id, tt, w)
					continue
				}
				body, ok := s.PendingList(id, tt.FilesDigest)
				if w.count == 0 {
					if tt.FilesDigest != "" || ok {
						t.Errorf("%s: %s without files has digest %q", name, id, tt.FilesDigest)
					}
					continue
				}
				files, sum, err := filelist.DecodeAll(body)
				sorted := slices.Clone(old[id])
				slices.SortFunc(sorted, func(a, b fillcast.File) int { return strings.Compare(a.Path, b.Path) })
				if !ok || err != nil || sum.Digest != tt.FilesDigest || !slices.Equal(files, sorted) {
					t.Errorf("%s: %s's pending list (%v, %v) decodes to %v with digest %s; want the old files %v with digest %s",
						name, id, ok, err, files, sum.Digest, sorted, tt.FilesDigest)
				}
			}
		})
		_, write := m.Backup()
		var backup bytes.Buffer
		if err := write(&backup); err != nil {
			t.Fatal(err)
		}
		for _, out := range [][]byte{persisted(t, m), backup.Bytes()} {
			for id, files := range legacyFiles(t, out) {
				if files != nil {
					t.Errorf("%s: title %s persisted with its files", name, id)
				}
			}
		}
	}
	// Once published, the lists leave the state.
	var pending []*PendingList
	replayed.Read(func(s *State) { pending = s.PendingLists() })
	for i, l := range pending {
		if r := replayed.Apply(logOf(t, uint64(100+i), Command{Op: OpFilesPublished, ID: l.Title, Digest: l.Digest, ListIndex: l.Index})); r != nil {
			t.Errorf("publish %s: %v", l.Title, r)
		}
	}
	replayed.Read(func(s *State) {
		if len(s.FileLists) != 0 || s.Titles["alpha"].FilesDigest == "" {
			t.Errorf("after publishing: pending %v, alpha %+v", s.PendingLists(), s.Titles["alpha"])
		}
	})
}
