package fill

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/fillcast/fillcast/appliance/upstream"
	"github.com/fillcast/fillcast/controlplane/client"
	"github.com/fillcast/fillcast/filelist"
)

// pinLog is the real cache, recording the keys pinned last.
type pinLog struct {
	*cache.Cache
	mu   sync.Mutex
	keys map[string]bool
}

func (p *pinLog) Pin(keys map[string]bool) {
	p.mu.Lock()
	p.keys = keys
	p.mu.Unlock()
	p.Cache.Pin(keys)
}

// pinned returns the keys pinned last, sorted.
func (p *pinLog) pinned() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Sorted(maps.Keys(p.keys))
}

// logPins makes e record its pins.
func logPins(e *Executor, c *cache.Cache) *pinLog {
	p := &pinLog{Cache: c}
	e.cache = p
	return p
}

// TestFillsFromTheLists: the manifest names each title's files by its
// list's digest; the executor fetches the lists (once: a second pass
// finds them on disk), pins them with the files, and fills every file,
// whether the lists are kept decoded in memory or streamed from the cache
// at each walk.
func TestFillsFromTheLists(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		listFiles int // Config.ListFiles
		decoded   int // lists kept in memory
	}{
		{"decoded in memory", 0, 2},
		{"room for one list", 4, 1},
		{"streamed", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			m := w.plan(t, 1, "00:00-23:59", "t1", "t2")
			e, c := w.appliance(t, t.TempDir(), &clock{t: inWindow}, 1e9)
			if tt.listFiles > 0 {
				e.cfg.ListFiles, e.decoded = tt.listFiles, newListLRU(tt.listFiles)
			}
			pins := logPins(e, c)
			ctx := context.Background()
			e.pass(ctx)
			if s := e.Status(); s.PresentFiles != 6 || s.PlannedFiles != 6 || s.PlannedBytes != 6*200_000 || s.MissingLists != 0 || s.Failures != 0 {
				t.Fatalf("after a pass: %+v", s)
			}
			want := slices.Sorted(maps.Keys(w.files))
			for _, mt := range m.Titles {
				want = append(want, filelist.Path(mt.ID, mt.FilesDigest))
			}
			slices.Sort(want)
			if got := pins.pinned(); !slices.Equal(got, want) {
				t.Errorf("pinned %v, want %v", got, want)
			}
			if v, got := e.Complete(); v != 1 || fmt.Sprint(got) != "[t1 t2]" {
				t.Errorf("Complete() = %d, %v", v, got)
			}
			if got := len(e.decoded.byKey); got != tt.decoded {
				t.Errorf("%d lists decoded in memory, want %d", got, tt.decoded)
			}
			before := w.gets.Load()
			e.pass(ctx)
			if s := e.Status(); w.gets.Load() != before || s.PresentFiles != 6 {
				t.Errorf("second pass: %+v, %d origin GETs, want none", s, w.gets.Load()-before)
			}
		})
	}
}

// TestChangedDigestRefetched: a planned title whose files change (a new
// digest in the manifest, so a new ETag) gets its new list fetched and
// its new files filled; the files only the old list had, and the old
// list, are unpinned.
func TestChangedDigestRefetched(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	old := w.plan(t, 1, "00:00-23:59", "t1").Titles[0]
	e, c := w.appliance(t, t.TempDir(), &clock{t: inWindow}, 1e9)
	pins := logPins(e, c)
	ctx := context.Background()
	e.pass(ctx)
	if s := e.Status(); s.PresentFiles != 3 {
		t.Fatalf("first list: %+v", s)
	}

	// seg-00003 leaves the title, seg-00004 joins it.
	seg4 := make([]byte, 100_000)
	rand.Read(seg4)
	w.put(t, "t1/720p/seg-00004.m4s", seg4)
	files := slices.DeleteFunc(w.titleFiles("t1"), func(f fillcast.File) bool { return f.Path == "720p/seg-00003.m4s" })
	m := w.manifest(t, 1, "00:00-23:59")
	m.Titles = []fillcast.ManifestTitle{w.publish(t, "t1", files)}
	w.cp.SetManifest("a1", m) // same version, other contents
	fresh := m.Titles[0]
	if fresh.FilesDigest == old.FilesDigest {
		t.Fatal("the new list has the old digest")
	}
	before := w.gets.Load()
	e.pass(ctx)
	if s := e.Status(); s.PresentFiles != 3 || s.PlannedFiles != 3 || s.PlannedBytes != 500_000 || w.gets.Load()-before != 2 {
		t.Errorf("after the change: %+v, %d origin GETs; want the new list and seg-00004", s, w.gets.Load()-before)
	}
	if !c.Has("t1/720p/seg-00004.m4s") {
		t.Error("the new file is not filled")
	}
	want := []string{filelist.Path("t1", fresh.FilesDigest), "t1/720p/seg-00001.m4s", "t1/720p/seg-00002.m4s", "t1/720p/seg-00004.m4s"}
	slices.Sort(want)
	if got := pins.pinned(); !slices.Equal(got, want) {
		t.Errorf("pinned %v, want %v (the old list and seg-00003 unpinned)", got, want)
	}
	if v, got := e.Complete(); v != 1 || fmt.Sprint(got) != "[t1]" {
		t.Errorf("Complete() = %d, %v", v, got)
	}
}

// TestBadListsRefused: a list whose bytes are not its digest's, or that
// does not decode, is never used: the title is not filled, the error is
// in the status, and the list is fetched again at the next pass; the
// control plane's copy is used when Source's is bad.
func TestBadListsRefused(t *testing.T) {
	t.Parallel()
	garbage := []byte("not a file list\n")
	tests := []struct {
		name string
		// spoil breaks what the origin and the control plane hold of
		// the list mt names (the control plane has the good one), or
		// names another list in mt.
		spoil func(t *testing.T, w *world, mt *fillcast.ManifestTitle)
		err   string // in the status after the first pass; empty: filled
	}{
		{"corrupt at the origin, the control plane's used", func(t *testing.T, w *world, mt *fillcast.ManifestTitle) {
			w.put(t, filelist.Path(mt.ID, mt.FilesDigest), []byte("fillcast-files 1\n"))
		}, ""},
		{"missing at the origin, the control plane's used", func(t *testing.T, w *world, mt *fillcast.ManifestTitle) {
			os.Remove(filepath.Join(w.root, filelist.Path(mt.ID, mt.FilesDigest)))
		}, ""},
		{"corrupt at the origin, none at the control plane", func(t *testing.T, w *world, mt *fillcast.ManifestTitle) {
			w.put(t, filelist.Path(mt.ID, mt.FilesDigest), []byte("fillcast-files 1\n"))
			w.cp.SetFileList(mt.ID, mt.FilesDigest, nil)
		}, "checksum mismatch"},
		{"corrupt at the origin and the control plane", func(t *testing.T, w *world, mt *fillcast.ManifestTitle) {
			w.put(t, filelist.Path(mt.ID, mt.FilesDigest), []byte("fillcast-files 1\n"))
			w.cp.SetFileList(mt.ID, mt.FilesDigest, garbage)
		}, "does not match its digest"},
		{"its digest's, but no list", func(t *testing.T, w *world, mt *fillcast.ManifestTitle) {
			mt.FilesDigest = filelist.Digest(garbage)
			w.put(t, filelist.Path(mt.ID, mt.FilesDigest), garbage)
			w.cp.SetFileList(mt.ID, mt.FilesDigest, garbage)
		}, "bad list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			m := w.manifest(t, 1, "00:00-23:59", "t1")
			mt := &m.Titles[0]
			body, err := os.ReadFile(filepath.Join(w.root, filelist.Path(mt.ID, mt.FilesDigest)))
			if err != nil {
				t.Fatal(err)
			}
			w.cp.SetFileList(mt.ID, mt.FilesDigest, body)
			tt.spoil(t, w, mt)
			w.cp.SetManifest("a1", m)
			e, c := w.appliance(t, t.TempDir(), &clock{t: inWindow}, 1e9)
			ctx := context.Background()
			e.pass(ctx)
			s := e.Status()
			key := filelist.Path(mt.ID, mt.FilesDigest)
			if tt.err == "" {
				if s.PresentFiles != 3 || s.MissingLists != 0 || s.Failures != 0 || !c.Has(key) {
					t.Errorf("%+v; want t1 filled from the control plane's list", s)
				}
				return
			}
			if s.PresentFiles != 0 || s.MissingLists != 1 || s.Failures != 1 || !strings.Contains(s.LastError, tt.err) || c.Has(key) {
				t.Errorf("%+v, list on disk %v; want nothing filled, the list refused with %q", s, c.Has(key), tt.err)
			}
			if v, got := e.Complete(); v != 1 || len(got) != 0 {
				t.Errorf("Complete() = %d, %v; want 1, []", v, got)
			}
			before := w.gets.Load()
			e.pass(ctx)
			if w.gets.Load() == before || e.Status().Failures != 2 {
				t.Errorf("next pass: %+v, %d origin GETs; want the list fetched again", e.Status(), w.gets.Load()-before)
			}
		})
	}
}

// TestPreviousReleaseManifest: a manifest from a control plane of the
// previous release, every file inline and no digest, is filled as it was.
func TestPreviousReleaseManifest(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.cp.SetManifest("a1", w.legacyManifest(1, "00:00-23:59", "t1", "t2"))
	e, c := w.appliance(t, t.TempDir(), &clock{t: inWindow}, 1e9)
	pins := logPins(e, c)
	e.pass(context.Background())
	if s := e.Status(); s.PresentFiles != 6 || s.PlannedFiles != 6 || s.MissingLists != 0 || s.Failures != 0 || w.gets.Load() != 6 {
		t.Errorf("%+v, %d origin GETs; want the 6 files and no list", s, w.gets.Load())
	}
	if got, want := pins.pinned(), slices.Sorted(maps.Keys(w.files)); !slices.Equal(got, want) {
		t.Errorf("pinned %v, want %v", got, want)
	}
	if v, got := e.Complete(); v != 1 || fmt.Sprint(got) != "[t1 t2]" {
		t.Errorf("Complete() = %d, %v", v, got)
	}
}

// BenchmarkWalkList: walking a title of 10,000 files (a two-hour film's
// ladder) from its list kept decoded in memory, and streamed from the
// cache, as a list is when the decoded ones outgrow Config.ListFiles. The
// streamed walk's B/op over 10,000 is about what a file costs decoded.
func BenchmarkWalkList(b *testing.B) {
	files := make([]fillcast.File, 10_000)
	for i := range files {
		files[i] = fillcast.File{Path: fmt.Sprintf("%dp/seg-%05d.m4s", 240*(1+i%5), i), Size: 1_500_000, SHA256: strings.Repeat("ab", 32)}
	}
	body, s, err := filelist.Encode(files)
	if err != nil {
		b.Fatal(err)
	}
	up, err := upstream.New(upstream.Config{URLs: []string{"http://127.0.0.1:9"}}, upstream.Deps{Pass: func() string { return "" }})
	if err != nil {
		b.Fatal(err)
	}
	ccfg := cache.DefaultConfig()
	ccfg.Dir, ccfg.DiskBytes = b.TempDir(), 64<<20
	c, err := cache.New(ccfg, up, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	key := filelist.Path("t1", s.Digest)
	f := &cache.Fetched{Meta: cache.Meta{Size: int64(len(body))}, Body: io.NopCloser(bytes.NewReader(body))}
	if _, err := c.Store(context.Background(), key, f, s.Digest); err != nil {
		b.Fatal(err)
	}
	cp, err := client.New(client.Config{URLs: []string{"http://127.0.0.1:9"}}, client.Deps{})
	if err != nil {
		b.Fatal(err)
	}
	defer cp.Close()
	mt := fillcast.ManifestTitle{ID: "t1", FilesDigest: s.Digest, Bytes: s.Bytes, FileCount: s.Count}
	for _, bc := range []struct {
		name      string
		listFiles int
	}{{"decoded", 0}, {"streamed", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			e, err := New(Config{ID: "a1", ListFiles: bc.listFiles}, Deps{ControlPlane: cp, Cache: c, Source: up})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				n := 0
				if !e.eachFile(&mt, nil, func(fillcast.File) bool { n++; return true }) || n != len(files) {
					b.Fatalf("walked %d files of %d", n, len(files))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(files)), "ns/file")
		})
	}
}

// TestListCountedWhileDecoding: whether a list is kept decoded in memory
// goes by the files it holds, counted while decoding, not by the
// manifest's count (absent here): a list longer than Config.ListFiles is
// streamed, so a walk stopped early decodes little, and is never kept.
func TestListCountedWhileDecoding(t *testing.T) { // not parallel: AllocsPerRun
	files := make([]fillcast.File, 5_000)
	for i := range files {
		files[i] = fillcast.File{Path: fmt.Sprintf("720p/seg-%05d.m4s", i), Size: 1000, SHA256: strings.Repeat("ab", 32)}
	}
	body, s, err := filelist.Encode(files)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t)
	for _, tt := range []struct {
		listFiles int
		kept      int // lists decoded in memory after a walk
	}{{100, 0}, {5_000, 1}} {
		t.Run(fmt.Sprint(tt.listFiles), func(t *testing.T) {
			e, c := w.appliance(t, t.TempDir(), &clock{t: inWindow}, 1e9)
			e.cfg.ListFiles, e.decoded = tt.listFiles, newListLRU(tt.listFiles)
			f := &cache.Fetched{Meta: cache.Meta{Size: int64(len(body))}, Body: io.NopCloser(bytes.NewReader(body))}
			if _, err := c.Store(context.Background(), filelist.Path("t1", s.Digest), f, s.Digest); err != nil {
				t.Fatal(err)
			}
			mt := fillcast.ManifestTitle{ID: "t1", FilesDigest: s.Digest, Bytes: s.Bytes} // no FileCount
			var walked []fillcast.File
			var size int64
			if !e.eachFile(&mt, func(n int64) { size = n }, func(f fillcast.File) bool { walked = append(walked, f); return true }) ||
				!slices.Equal(walked, files) || size != int64(len(body)) {
				t.Fatalf("walked %d files of a %d-byte list, want %d of %d", len(walked), size, len(files), len(body))
			}
			if got := len(e.decoded.byKey); got != tt.kept {
				t.Errorf("%d lists kept decoded, want %d", got, tt.kept)
			}
			if tt.kept > 0 {
				return
			}
			allocs := testing.AllocsPerRun(5, func() {
				e.eachFile(&mt, nil, func(fillcast.File) bool { return false })
			})
			if allocs > 1000 {
				t.Errorf("a walk stopped at the first file allocates %.0f times: the list of %d files was decoded whole", allocs, len(files))
			}
		})
	}
}
