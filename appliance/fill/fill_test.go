package fill

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
)

// Amsterdam is UTC+1 in November: 01:30 UTC is 02:30 local.
var (
	beforeWindow = time.Date(2026, 11, 26, 0, 30, 0, 0, time.UTC) // 01:30 local
	inWindow     = time.Date(2026, 11, 26, 1, 30, 0, 0, time.UTC) // 02:30 local
)

func TestFillsOnlyInsideTheWindowAndResumes(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.plan(t, 1, "02:00-14:00", "t1", "t2")
	clk := &clock{t: beforeWindow}
	dir := t.TempDir()
	e, c := w.appliance(t, dir, clk, 1e9)
	ctx := context.Background()

	e.pass(ctx)
	// The two titles' file lists are fetched outside the window: small,
	// and the pins need them.
	if s := e.Status(); s.WindowOpen || s.PresentFiles != 0 || w.gets.Load() != 2 || s.PlannedFiles != 6 || s.MissingLists != 0 {
		t.Fatalf("before the window: %+v, origin GETs %d, want the 2 lists'", s, w.gets.Load())
	}
	clk.set(inWindow)
	e.pass(ctx)
	s := e.Status()
	if !s.WindowOpen || s.PresentFiles != 6 || s.FilledBytes != 6*200_000 || s.Failures != 0 {
		t.Fatalf("in the window: %+v", s)
	}
	for k, b := range w.files {
		h, ok := c.Lookup(k)
		if !ok {
			t.Fatalf("%s not cached", k)
		}
		r, _ := h.Stream(ctx, 0, h.Meta.Size)
		got, _ := io.ReadAll(r)
		r.(io.Closer).Close()
		if string(got) != string(b) {
			t.Fatalf("%s: wrong bytes", k)
		}
	}

	// A restart resumes from the disk: nothing is fetched again.
	c.Close()
	before := w.gets.Load()
	e2, _ := w.appliance(t, dir, clk, 1e9)
	e2.pass(ctx)
	if s := e2.Status(); s.PresentFiles != 6 || w.gets.Load() != before {
		t.Errorf("after restart: %+v, %d new origin GETs", s, w.gets.Load()-before)
	}
}

func TestRateCap(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.plan(t, 1, "00:00-23:59", "t1")
	clk := &clock{t: inWindow}
	const rate = 8 * 400_000 // 400 kB/s: 600 kB take about a second beyond the first burst
	e, _ := w.appliance(t, t.TempDir(), clk, rate)
	start := time.Now()
	e.pass(context.Background())
	elapsed := time.Since(start)
	burst := float64(e.limiter.Burst())
	minimum := time.Duration((600_000 - burst) / (rate / 8) * float64(time.Second))
	if e.Status().PresentFiles != 3 {
		t.Fatalf("status %+v", e.Status())
	}
	if elapsed < minimum {
		t.Errorf("600 kB filled in %s at a %.0f bit/s cap: faster than the cap allows (%s)", elapsed, float64(rate), minimum)
	}
}

func TestPrefersPeer(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.plan(t, 1, "00:00-23:59", "t1")
	clk := &clock{t: inWindow}
	// The peer is an appliance that already holds t1: serve it from a
	// second cache filled the same way, behind the appliance protocol's
	// only-if-cached check.
	peerDir := t.TempDir()
	pe, pc := w.appliance(t, peerDir, clk, 1e9)
	pe.pass(context.Background())
	keys, _ := auth.ParseKeys(strings.NewReader(keyLine))
	verifier, err := auth.NewVerifier(auth.VerifierConfig{}, keys.Public())
	if err != nil {
		t.Fatal(err)
	}
	peer := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Cache-Control") != "only-if-cached" {
			http.Error(rw, "peer asked to fill", 400)
			return
		}
		if _, err := verifier.VerifyFillPass(auth.Bearer(r.Header.Get("Authorization")), time.Now()); err != nil {
			http.Error(rw, "forbidden", 403)
			return
		}
		key, ok := strings.CutPrefix(r.URL.Path, "/f/")
		if !ok {
			http.Error(rw, "want /f/{title}/{path}", 400)
			return
		}
		h, ok := pc.Lookup(key)
		if !ok {
			http.Error(rw, "not cached", http.StatusGatewayTimeout)
			return
		}
		rd, _ := h.Stream(r.Context(), 0, h.Meta.Size)
		defer rd.(io.Closer).Close()
		rw.Header().Set("Content-Length", fmt.Sprint(h.Meta.Size))
		io.Copy(rw, rd)
	}))
	defer peer.Close()
	before := w.gets.Load()
	e, _ := w.appliance(t, t.TempDir(), clk, 1e9, peer.URL, w.origin.URL)
	e.pass(context.Background())
	if s := e.Status(); s.PresentFiles != 3 || w.gets.Load() != before {
		t.Errorf("tier fill: %+v, %d origin GETs (want 0: the peer holds every file)", s, w.gets.Load()-before)
	}
}

func TestRefusesBadManifestsAndChecksums(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	clk := &clock{t: inWindow}
	e, c := w.appliance(t, t.TempDir(), clk, 1e9)
	ctx := context.Background()
	tests := []struct {
		name   string
		mutate func(m *fillcast.Manifest)
	}{
		{"another appliance", func(m *fillcast.Manifest) { m.Appliance = "a2" }},
		{"digest no digest", func(m *fillcast.Manifest) { m.Titles[0].FilesDigest = "../../etc/passwd" }},
		{"digest in capitals", func(m *fillcast.Manifest) { m.Titles[0].FilesDigest = strings.ToUpper(m.Titles[0].FilesDigest) }},
		{"negative bytes", func(m *fillcast.Manifest) { m.Titles[0].Bytes = -1 }},
		{"path escape, previous release", func(m *fillcast.Manifest) {
			m.Titles[0] = w.legacyManifest(1, "", "t1").Titles[0]
			m.Titles[0].Files[0].Path = "../../etc/passwd"
		}},
		{"bad window", func(m *fillcast.Manifest) { m.FillWindow = "2-14" }},
		{"bad zone", func(m *fillcast.Manifest) { m.Timezone = "Mars/Olympus" }},
	}
	for _, tt := range tests {
		m := w.manifest(t, 1, "00:00-23:59", "t1")
		tt.mutate(m)
		w.cp.SetManifest("a1", m)
		if _, err := e.fetchManifest(ctx); err == nil {
			t.Errorf("%s: manifest accepted", tt.name)
		}
	}
	// A file whose bytes do not match the catalog's checksum is not kept,
	// and is fetched again at the next pass.
	m := w.manifest(t, 2, "00:00-23:59", "t1")
	files := w.titleFiles("t1")
	for i := range files {
		if files[i].Path == "720p/seg-00001.m4s" {
			files[i].SHA256 = strings.Repeat("0", 64)
		}
	}
	m.Titles[0] = w.publish(t, "t1", files)
	w.cp.SetManifest("a1", m)
	e.pass(ctx)
	if s := e.Status(); s.Failures != 1 || s.PresentFiles != 2 || c.Has("t1/720p/seg-00001.m4s") {
		t.Errorf("checksum mismatch: %+v", s)
	}
	before := w.gets.Load()
	e.pass(ctx)
	if w.gets.Load() == before {
		t.Error("the file that failed its checksum was not fetched again")
	}
	// An older manifest never replaces a newer one.
	w.plan(t, 1, "00:00-23:59", "t2")
	e.pass(ctx)
	if s := e.Status(); s.ManifestVersion != 2 {
		t.Errorf("older manifest adopted: %+v", s)
	}
}

// TestStopsWhenTheWindowClosesMidFile: the clock leaves the window
// in the middle of a file; the fill stops there without counting a failure
// or keeping a partial file, and the next window fills everything.
func TestStopsWhenTheWindowClosesMidFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		reads   int64 // clock readings inside the window before it closes
		present int   // files complete when it closes (200 kB each)
	}{
		{"before the first read", 1, 0},
		{"after a few reads", 6, 0},
		{"in the second file", 20, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.plan(t, 1, "02:00-14:00", "t1")
			var readings atomic.Int64
			closing := &clock{t: inWindow}
			e, c := w.appliance(t, t.TempDir(), closing, 1e9)
			e.cfg.Parallel = 1 // one file at a time: the readings count one fetch's reads
			e.cfg.Now = func() time.Time {
				if readings.Add(1) > tt.reads {
					return inWindow.Add(12 * time.Hour) // 14:30 local
				}
				return inWindow
			}
			e.pass(context.Background())
			s := e.Status()
			if s.Failures != 0 || s.PresentFiles != tt.present || s.WindowOpen || c.Has(fmt.Sprintf("t1/720p/seg-%05d.m4s", tt.present+1)) {
				t.Fatalf("after the window closed mid-file: %+v", s)
			}
			if got, max := s.OutsideWindowBytes, int64(e.limiter.Burst()); got > max {
				t.Errorf("%d bytes filled outside the window, want at most the one read under way (%d)", got, max)
			}
			e.cfg.Now = closing.now
			e.pass(context.Background())
			if s := e.Status(); s.PresentFiles != 3 || s.Failures != 0 {
				t.Errorf("next window: %+v, want every file", s)
			}
		})
	}
}

// TestCompleteTitles: the executor reports which planned titles it holds
// in full, for steering.
func TestCompleteTitles(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.plan(t, 4, "02:00-14:00", "t1", "t2")
	clk := &clock{t: beforeWindow}
	e, c := w.appliance(t, t.TempDir(), clk, 1e9)
	ctx := context.Background()
	if v, got := e.Complete(); v != 0 || got != nil {
		t.Errorf("before any manifest: Complete() = %d, %v", v, got)
	}
	tests := []struct {
		name string
		step func()
		want string
	}{
		{"before the window", func() {}, "[]"},
		{"filled", func() { clk.set(inWindow) }, "[t1 t2]"},
		{"a file of t2 gone", func() { c.Purge("t2/720p/seg-00002.m4s"); clk.set(beforeWindow) }, "[t1]"},
	}
	for _, tt := range tests {
		tt.step()
		e.pass(ctx)
		v, got := e.Complete()
		if v != 4 || fmt.Sprint(got) != tt.want {
			t.Errorf("%s: Complete() = %d, %v; want 4, %s", tt.name, v, got, tt.want)
		}
	}
}

// TestUnchangedManifestCostsA304: polls send the last ETag; the control
// plane answers 304 while the manifest is unchanged, and the one in force
// stays; a new version or new contents are fetched and adopted.
func TestUnchangedManifestCostsA304(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.plan(t, 1, "02:00-14:00", "t1")
	e, _ := w.appliance(t, t.TempDir(), &clock{t: beforeWindow}, 1e9)
	ctx := context.Background()
	e.pass(ctx)
	e.pass(ctx)
	e.pass(ctx)
	if n := w.cp.Nodes()[0].NotModified(); n != 2 {
		t.Errorf("3 polls of an unchanged manifest: %d answered 304, want 2", n)
	}
	if s := e.Status(); s.ManifestVersion != 1 || s.PlannedFiles != 3 || s.LastError != "" {
		t.Errorf("after the 304s: %+v", s)
	}
	w.plan(t, 1, "02:00-14:00", "t1", "t2") // same version, other contents
	e.pass(ctx)
	if s := e.Status(); s.PlannedFiles != 6 || w.cp.Nodes()[0].NotModified() != 2 {
		t.Errorf("changed contents: %+v after %d 304s", s, w.cp.Nodes()[0].NotModified())
	}
	w.plan(t, 2, "02:00-14:00", "t2")
	e.pass(ctx)
	if s := e.Status(); s.ManifestVersion != 2 || s.PlannedFiles != 3 {
		t.Errorf("new version: %+v", s)
	}
}

// TestNoManifestIsNoError: nothing planned yet (the control plane's 404)
// is a quiet poll; a control plane that cannot be reached is an error in
// the status, and the manifest in force stays.
func TestNoManifestIsNoError(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	e, _ := w.appliance(t, t.TempDir(), &clock{t: beforeWindow}, 1e9)
	ctx := context.Background()
	e.pass(ctx)
	if s := e.Status(); s.LastError != "" || s.ManifestVersion != 0 {
		t.Errorf("nothing planned: %+v", s)
	}
	w.plan(t, 1, "02:00-14:00", "t1")
	e.pass(ctx)
	w.cp.Nodes()[0].Kill()
	e.pass(ctx)
	if s := e.Status(); !strings.Contains(s.LastError, "fill: fetch manifest") || s.ManifestVersion != 1 || s.PlannedFiles != 3 {
		t.Errorf("control plane down: %+v", s)
	}
}

// TestCatalogHandedOn: the catalog's renditions of the first manifest,
// and of every later one whose catalog changed, go to Deps.OnCatalog; a
// manifest with a malformed catalog is refused whole.
func TestCatalogHandedOn(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	e, _ := w.appliance(t, t.TempDir(), &clock{t: beforeWindow}, 1e9)
	var got [][]fillcast.TitleRenditions
	e.onCatalog = func(c []fillcast.TitleRenditions) { got = append(got, c) }
	one := []fillcast.TitleRenditions{{ID: "t1", Renditions: []fillcast.RenditionHeight{{ID: "720p", Height: 720}, {ID: "audio-en"}}}}
	two := append(slices.Clone(one), fillcast.TitleRenditions{ID: "t9", Renditions: []fillcast.RenditionHeight{{ID: "hd", Height: 1080}}})
	ctx := context.Background()
	steps := []struct {
		name    string
		version uint64
		catalog []fillcast.TitleRenditions
		handed  int // calls of OnCatalog so far
		err     string
	}{
		{"first manifest", 1, one, 1, ""},
		{"unchanged: a 304", 1, one, 1, ""},
		{"new plan, same catalog", 2, one, 1, ""},
		{"new title in the catalog", 2, two, 2, ""},
		{"a rendition that is no directory", 3, []fillcast.TitleRenditions{{ID: "t1", Renditions: []fillcast.RenditionHeight{{ID: "../x", Height: 1}}}}, 2, "catalog"},
		{"a negative height", 3, []fillcast.TitleRenditions{{ID: "t1", Renditions: []fillcast.RenditionHeight{{ID: "x", Height: -1}}}}, 2, "catalog"},
	}
	for _, s := range steps {
		m := w.manifest(t, s.version, "02:00-14:00", "t1")
		m.Catalog = s.catalog
		w.cp.SetManifest("a1", m)
		e.pass(ctx)
		if len(got) != s.handed {
			t.Fatalf("%s: OnCatalog called %d times, want %d", s.name, len(got), s.handed)
		}
		if st := e.Status(); !strings.Contains(st.LastError, s.err) || (s.err == "") != (st.LastError == "") {
			t.Errorf("%s: last error %q, want one mentioning %q", s.name, st.LastError, s.err)
		}
		e.mu.Lock() // clear the error for the next step
		e.status.LastError = ""
		e.mu.Unlock()
	}
	if !slices.EqualFunc(got[1], two, sameTitleRenditions) {
		t.Errorf("handed %+v, want %+v", got[1], two)
	}
}
