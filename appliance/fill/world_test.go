package fill

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/fillcast/fillcast/appliance/upstream"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/client"
	"github.com/fillcast/fillcast/controlplane/client/clienttest"
	"github.com/fillcast/fillcast/filelist"
	"github.com/fillcast/fillcast/origin"
)

const keyLine = "k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"

// world is a real origin on loopback (counting GETs) with two titles of
// files and their file lists, and a control plane that serves whatever
// manifest the test sets.
type world struct {
	files  map[string][]byte // "t1/720p/seg-00001.m4s" -> bytes
	root   string            // the origin's directory
	origin *httptest.Server
	gets   atomic.Int64
	cp     *clienttest.Cluster // one node
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{files: map[string][]byte{}, root: t.TempDir()}
	for _, title := range []string{"t1", "t2"} {
		for i := 1; i <= 3; i++ {
			b := make([]byte, 200_000)
			rand.Read(b)
			w.put(t, fmt.Sprintf("%s/720p/seg-%05d.m4s", title, i), b)
		}
	}
	ocfg := origin.DefaultConfig()
	ocfg.Root = w.root
	o, err := origin.New(ocfg, origin.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	w.origin = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.gets.Add(1)
		o.ServeHTTP(rw, r)
	}))
	t.Cleanup(w.origin.Close)
	w.cp = clienttest.New(t, 1)
	return w
}

// put writes an object into the origin's directory and, unless it is a
// file list, w.files.
func (w *world) put(t *testing.T, key string, b []byte) {
	t.Helper()
	if !strings.Contains(key, "/"+filelist.Dir+"/") {
		w.files[key] = b
	}
	p := filepath.Join(w.root, key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// titleFiles returns title's files in w.files, with their checksums.
func (w *world) titleFiles(title string) []fillcast.File {
	var files []fillcast.File
	for k, b := range w.files {
		if p, ok := strings.CutPrefix(k, title+"/"); ok {
			sum := sha256.Sum256(b)
			files = append(files, fillcast.File{Path: p, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
		}
	}
	return files
}

// publish writes title's list of files to the origin, as ingest does,
// and returns the manifest's entry for it.
func (w *world) publish(t *testing.T, title string, files []fillcast.File) fillcast.ManifestTitle {
	t.Helper()
	body, s, err := filelist.Encode(files)
	if err != nil {
		t.Fatal(err)
	}
	w.put(t, filelist.Path(title, s.Digest), body)
	return fillcast.ManifestTitle{ID: title, FilesDigest: s.Digest, Bytes: s.Bytes, FileCount: s.Count}
}

// plan sets a manifest for appliance a1 with the given titles and
// returns it.
func (w *world) plan(t *testing.T, version uint64, window string, titles ...string) *fillcast.Manifest {
	m := w.manifest(t, version, window, titles...)
	w.cp.SetManifest("a1", m)
	return m
}

// manifest returns a manifest for appliance a1 with the given titles,
// their lists published at the origin.
func (w *world) manifest(t *testing.T, version uint64, window string, titles ...string) *fillcast.Manifest {
	m := &fillcast.Manifest{Appliance: "a1", Version: version, FillWindow: window, Timezone: "Europe/Amsterdam"}
	for _, id := range titles {
		m.Titles = append(m.Titles, w.publish(t, id, w.titleFiles(id)))
	}
	return m
}

// legacyManifest is manifest as a control plane of the previous release
// sends it: every file in it, no digest.
func (w *world) legacyManifest(version uint64, window string, titles ...string) *fillcast.Manifest {
	m := &fillcast.Manifest{Appliance: "a1", Version: version, FillWindow: window, Timezone: "Europe/Amsterdam"}
	for _, id := range titles {
		files := w.titleFiles(id)
		slices.SortFunc(files, func(a, b fillcast.File) int { return strings.Compare(a.Path, b.Path) })
		m.Titles = append(m.Titles, fillcast.ManifestTitle{ID: id, Files: files})
	}
	return m
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// appliance builds a real cache over dir and an executor for a1.
func (w *world) appliance(t *testing.T, dir string, clk *clock, rateBits float64, upstreams ...string) (*Executor, *cache.Cache) {
	t.Helper()
	ccfg := cache.DefaultConfig()
	ccfg.Dir, ccfg.DiskBytes = dir, 64<<20
	return w.applianceWith(t, ccfg, clk, rateBits, upstreams...)
}

// smallAppliance is appliance with one directory of diskBytes, in its
// fill window.
func (w *world) smallAppliance(t *testing.T, diskBytes int64) (*Executor, *cache.Cache) {
	t.Helper()
	ccfg := cache.DefaultConfig()
	ccfg.Dir, ccfg.DiskBytes = t.TempDir(), diskBytes
	return w.applianceWith(t, ccfg, &clock{t: inWindow}, 1e9)
}

// applianceWith is appliance with a cache of ccfg.
func (w *world) applianceWith(t *testing.T, ccfg cache.Config, clk *clock, rateBits float64, upstreams ...string) (*Executor, *cache.Cache) {
	t.Helper()
	keys, _ := auth.ParseKeys(strings.NewReader(keyLine))
	pass, err := keys.SignFillPass("a1", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(upstreams) == 0 {
		upstreams = []string{w.origin.URL}
	}
	up, err := upstream.New(upstream.Config{URLs: upstreams}, upstream.Deps{Pass: func() string { return "Bearer " + pass }})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(ccfg, up, slog.New(slog.DiscardHandler)) // the cache needs a logger
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cp, err := client.New(client.Config{URLs: w.cp.URLs()}, client.Deps{Token: clienttest.Token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cp.Close() })
	e, err := New(Config{ID: "a1", RateBits: rateBits, Now: clk.now}, Deps{ControlPlane: cp, FileLists: cp, Cache: c, Source: up})
	if err != nil {
		t.Fatal(err)
	}
	return e, c
}
