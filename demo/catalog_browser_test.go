package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/cluster"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/filelist"
	"github.com/hashicorp/raft"
)

// catalogSize is how many titles TestBrowserCatalog registers: the
// issue's 5,000, of which catalogNew wait for their video (status new)
// and the rest are ready.
const (
	catalogSize = 5000
	catalogNew  = 250
)

// Words of the synthetic titles' names: every name is an adjective and a
// noun and a number, so that a noun matches a few hundred titles.
var (
	catalogAdjectives = []string{"Silent", "Crimson", "Hidden", "Distant", "Broken", "Golden", "Frozen", "Electric", "Wandering", "Midnight", "Paper", "Iron"}
	catalogNouns      = []string{"Harbour", "Lighthouse", "Orchard", "Engine", "Garden", "Signal", "Canyon", "Library", "Comet", "Bridge",
		"Island", "Theatre", "Carousel", "Glacier", "Market", "Observatory", "Tunnel"}
	catalogGenres = []string{"drama", "comedy", "crime", "documentary", "animation", "thriller", "romance", "science-fiction"}
)

// catalogTitle is the i-th title of the synthetic catalog: ready titles
// "cat-00000"… with five video renditions and a stereo track, a poster
// and a 720p download, their file list's summary (digest, bytes, count,
// poster, downloads) given in place of the files, as ingest writes a
// title once its list object is published; and after them titles
// "new-000"… with status new.
func catalogTitle(i int) (fillcast.Title, error) {
	ready := catalogSize - catalogNew
	if i >= ready {
		n := i - ready
		return fillcast.Title{ID: fmt.Sprintf("new-%03d", n), Name: fmt.Sprintf("Waiting Title %03d", n), Status: fillcast.StatusNew}, nil
	}
	adj, noun, genre := catalogAdjectives[i%len(catalogAdjectives)], catalogNouns[i%len(catalogNouns)], catalogGenres[i%len(catalogGenres)]
	t := fillcast.Title{
		ID:          fmt.Sprintf("cat-%05d", i),
		Name:        fmt.Sprintf("%s %s %d", adj, noun, i),
		Description: fmt.Sprintf("A %s about a %s %s, and the people who find it one winter.", genre, strings.ToLower(adj), strings.ToLower(noun)),
		Genres:      []string{genre},
		Year:        1960 + i%65,
		Cast:        []string{"Ada Pattern", fmt.Sprintf("Rex Tone %d", i%40)},
		Status:      fillcast.StatusReady,
		Maturity:    fillcast.MaturityAll,
	}
	files := []fillcast.File{{Path: "master.m3u8", Size: 900}, {Path: "manifest.mpd", Size: 3000}, {Path: filelist.PosterPath, Size: 40_000},
		{Path: filelist.DownloadDir + "720p.mp4", Size: 600 << 20}}
	for _, h := range []int{240, 360, 480, 720, 1080} {
		r := fmt.Sprintf("%dp", h)
		t.Renditions = append(t.Renditions, fillcast.Rendition{ID: r, Kind: "video", Width: h * 16 / 9, Height: h, Bandwidth: h * 6000, Codecs: "avc1.64001f"})
		files = append(files, fillcast.File{Path: r + "/init.mp4", Size: 800}, fillcast.File{Path: r + "/playlist.m3u8", Size: 60_000})
		for s := 1; s <= 3; s++ {
			files = append(files, fillcast.File{Path: fmt.Sprintf("%s/seg-%05d.m4s", r, s), Size: int64(h) * 3000})
		}
	}
	t.Renditions = append(t.Renditions, fillcast.Rendition{ID: "audio-eng", Kind: "audio", Bandwidth: 128_000, Codecs: "mp4a.40.2", Language: "eng"})
	for j := range files {
		files[j].SHA256 = fmt.Sprintf("%064x", j+1)
	}
	_, sum, err := filelist.Encode(files)
	if err != nil {
		return t, err
	}
	sum.SetOn(&t)
	return t, nil
}

// seedCatalog writes the synthetic catalog into dir (a control plane's
// data directory) as `fillcast controlplane restore` would from a backup
// of a control plane that held it: the titles applied to a state machine
// as put_title commands (validated as any write is), the state written as
// a backup file and restored for node id at raftAddr. 5,000 writes
// through the API take a minute on two busy cores under -race; this
// takes a second or two, and the control plane then starts on the
// restored state (rebuilding its search index from it).
func seedCatalog(t *testing.T, dir, id, raftAddr string) {
	t.Helper()
	start := time.Now()
	f := fsm.New(nil)
	for i := range catalogSize {
		ti, err := catalogTitle(i)
		if err != nil {
			t.Fatalf("title %d: %v", i, err)
		}
		data, err := json.Marshal(fsm.Command{Op: fsm.OpPutTitle, Title: &ti})
		if err != nil {
			t.Fatal(err)
		}
		if err, _ := f.Apply(&raft.Log{Index: uint64(i + 1), Data: data}).(error); err != nil {
			t.Fatalf("put %s: %v", ti.ID, err)
		}
	}
	index, write := f.Backup()
	var state bytes.Buffer
	if err := write(&state); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "catalog.backup")
	if _, err := cluster.WriteBackupFile(backup, &state, index, id); err != nil {
		t.Fatal(err)
	}
	b, err := os.Open(backup)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := cluster.Restore(b, dir, id, raftAddr); err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %d titles (a %d kB backup) in %v", catalogSize, state.Cap()>>10, time.Since(start).Round(time.Millisecond))
}

// TestBrowserCatalog drives headless Chromium through the viewer pages
// and the operator page over a catalog of 5,000 titles
// (web/test/catalog.mjs; seedCatalog), with a control plane and an
// origin and no appliance (nothing here plays), and checks in the
// browser's own
// network log (DevTools) that no response was larger than 1 MB and that
// every listing call asked for a page or for ids: the pages never
// download the catalog. The premium viewer of the demo's accounts has
// part-watched the last title, which continue watching must find by id.
func TestBrowserCatalog(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test in -short mode")
	}
	webDir := needBrowser(t)
	d, err := newDemo(Config{Dir: t.TempDir(), HTTP: "127.0.0.1:0"}, Deps{Out: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	// The raft address the catalog is restored for, and the control
	// plane (StartSystem's node "demo") then listens on: held open from
	// here, so that no other test takes the port in between.
	rl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	raftAddr := rl.Addr().String()
	seedCatalog(t, filepath.Join(d.dir, "controlplane"), "demo", raftAddr)
	sys, err := StartSystem(ctx, SystemConfig{Dir: d.dir}, SystemDeps{Keys: d.keys, Token: d.token,
		Listen: func(name string) (net.Listener, error) {
			if name == "raft" && rl != nil {
				l := rl
				rl = nil
				return l, nil
			}
			return net.Listen("tcp", "127.0.0.1:0")
		}})
	if rl != nil {
		rl.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := sys.Stop(); err != nil {
			t.Errorf("stopping the system: %v", err)
		}
	}()
	d.sys = sys
	if err := d.ensurePlans(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.ensureViewers(ctx); err != nil {
		t.Fatal(err)
	}
	last := fmt.Sprintf("cat-%05d", catalogSize-catalogNew-1)

	var premium viewer
	for _, v := range d.viewers {
		if v.Plan == "premium" {
			premium = v
		}
	}
	c, done, err := d.signIn(ctx, premium)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Do(ctx, http.MethodPost, "/v1/events", []map[string]any{{"id": "catalog-progress", "title": last, "type": "progress",
		"position_s": 600.0, "duration_s": 1800.0, "ts": time.Now().Add(-time.Minute)}}, nil)
	done()
	if err != nil {
		t.Fatalf("the premium viewer's progress on %s: %v", last, err)
	}
	var key struct {
		Key string `json:"key"`
	}
	if err := sys.API.Do(ctx, http.MethodPost, "/v1/apikeys", map[string]string{"name": "catalog-ingest", "scope": "ingest"}, &key); err != nil {
		t.Fatalf("an ingest key: %v", err)
	}

	want, _ := json.Marshal(map[string]any{"ready": catalogSize - catalogNew, "new": catalogNew, "last": last, "word": catalogNouns[1]})
	out := filepath.Join(webDir, "test-output")
	cmd := exec.CommandContext(ctx, "node", filepath.Join(webDir, "test", "catalog.mjs"))
	cmd.Dir = webDir
	cmd.Env = append(os.Environ(), "FILLCAST_URL="+sys.ControlPlaneURL, "FILLCAST_OUT="+out, "FILLCAST_INGEST_KEY="+key.Key,
		"FILLCAST_VIEWER="+premium.Email+" "+premium.Password, "FILLCAST_CATALOG="+string(want))
	cmd.Stdout, cmd.Stderr = testWriter{t}, testWriter{t}
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("catalog browser test failed (%v); screenshots in %s", err, out)
	}
	t.Logf("the browser's walk took %v", time.Since(start).Round(time.Millisecond))
}
