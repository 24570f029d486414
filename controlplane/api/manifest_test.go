package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/filelist"
)

func TestManifestRoutes(t *testing.T) {
	a := newTestAPI(t)
	call := func(method, path, body string, admin bool) (int, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if admin {
			req.Header.Set("Authorization", "Bearer adm")
		}
		w := httptest.NewRecorder()
		a.ServeHTTP(w, req)
		return w.Code, w.Body.String()
	}
	tests := []struct {
		name, method, body string
		admin              bool
		want               int
		wantText           string
	}{
		{"none yet", "GET", "", true, 404, "no fill manifest"},
		{"needs admin", "PUT", `{"version":1,"titles":["t1"]}`, false, 401, ""},
		{"unknown title", "PUT", `{"version":1,"titles":["t1","nope"]}`, true, 400, "nope"},
		{"first", "PUT", `{"version":1,"titles":["t1"]}`, true, 200, ""},
		{"not newer", "PUT", `{"version":1,"titles":[]}`, true, 400, "not newer"},
		{"get", "GET", "", true, 200, `"id":"t1"`},
	}
	for _, tt := range tests {
		code, body := call(tt.method, "/v1/appliances/aa/manifest", tt.body, tt.admin)
		if code != tt.want || !strings.Contains(body, tt.wantText) {
			t.Errorf("%s: %d %s; want %d mentioning %q", tt.name, code, body, tt.want, tt.wantText)
		}
	}
	_, body := call("GET", "/v1/appliances/aa/manifest", "", true)
	var v fillcast.Manifest
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.Version != 1 || len(v.Titles) != 1 {
		t.Errorf("manifest view = %+v (%v)", v, err)
	}

	// A poll with the last ETag costs a 304 until the manifest changes.
	get := func(etag string) (int, string) {
		req := httptest.NewRequest("GET", "/v1/appliances/aa/manifest", nil)
		req.Header.Set("Authorization", "Bearer adm")
		req.Header.Set("If-None-Match", etag)
		w := httptest.NewRecorder()
		a.ServeHTTP(w, req)
		return w.Code, w.Header().Get("ETag")
	}
	_, etag := get("")
	if code, again := get(etag); code != 304 || again != etag {
		t.Errorf("unchanged manifest with its ETag: %d, ETag %q then %q", code, etag, again)
	}
	call("PUT", "/v1/appliances/aa/manifest", `{"version":2,"titles":["t1"]}`, true)
	if code, next := get(etag); code != 200 || next == etag {
		t.Errorf("changed manifest with the old ETag: %d, ETag %q then %q", code, etag, next)
	}
}

func TestReplicatedKeysSignPlayback(t *testing.T) {
	a := newTestAPI(t)
	session := signIn(t, a, "replicated@example.com", "premium") // playback is for viewers
	do := func(method, path, body string) (int, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.RemoteAddr = "192.0.2.7:5555"
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer adm")
		if strings.HasPrefix(path, "/v1/playback/") {
			req.Header.Set("Authorization", "Bearer "+session)
		}
		w := httptest.NewRecorder()
		a.ServeHTTP(w, req)
		return w.Code, w.Body.String()
	}
	if code, body := do("GET", "/v1/playback/t1", ""); code != 200 || !strings.Contains(body, "/c/k1.") {
		t.Fatalf("before: %d %s", code, body)
	}
	if code, body := do("PUT", "/v1/keys", `{"keys":[{"id":"k2","secret":"00"}]}`); code != 400 || !strings.Contains(body, "secret") {
		t.Errorf("short secret: %d %s", code, body)
	}
	secret := strings.Repeat("ab", 32)
	if code, body := do("PUT", "/v1/keys", `{"keys":[{"id":"k2","secret":"`+secret+`"}]}`); code != 204 {
		t.Fatalf("put keys: %d %s", code, body)
	}
	if code, body := do("GET", "/v1/playback/t1", ""); code != 200 || !strings.Contains(body, "/c/k2.") {
		t.Errorf("after rotation: %d %s", code, body)
	}
	// The public half only: a seed never leaves the replicated state.
	if code, body := do("GET", "/v1/keys", ""); code != 200 || strings.Contains(body, secret) || !strings.Contains(body, `"public":`) {
		t.Errorf("get keys: %d %s", code, body)
	}
}

// TestLargeManifest: a title of 50,000 files is in the manifest by its
// list's digest and summary, a few hundred bytes; its list, far more
// than the gateway buffers for a route, is streamed whole from its own
// route, and decodes to the files given.
func TestLargeManifest(t *testing.T) {
	a := newTestAPI(t)
	files := make([]fillcast.File, 50_000)
	var size int64
	for i := range files {
		files[i] = fillcast.File{Path: fmt.Sprintf("720p/seg-%05d.m4s", i+1), Size: 16000, SHA256: strings.Repeat("ab", 32)}
		size += files[i].Size
	}
	node := a.d.Node.(*localNode)
	if err := node.Apply(context.Background(), fsm.Command{Op: fsm.OpPutTitle, Title: &fillcast.Title{ID: "big", Name: "Big", Status: "ready",
		Renditions: []fillcast.Rendition{{ID: "720p", Kind: "video", Bandwidth: 3e6}}, Files: files}}); err != nil {
		t.Fatal(err)
	}
	if err := node.Apply(context.Background(), fsm.Command{Op: fsm.OpPutManifest, Manifest: &fsm.Manifest{Appliance: "s1", Version: 1, Titles: []string{"big"}}}); err != nil {
		t.Fatal(err)
	}
	var v fillcast.Manifest
	body := call{method: "GET", path: "/v1/appliances/s1/manifest", bearer: "adm"}.want(t, a, 200, &v)
	if len(v.Titles) != 1 || v.Titles[0].FileCount != len(files) || v.Titles[0].Bytes != size || !filelist.ValidDigest(v.Titles[0].FilesDigest) ||
		v.Titles[0].Files != nil || len(body) > 1000 {
		t.Fatalf("manifest of a %d-file title: %d bytes, %+v; want its list's digest, bytes and count, no files", len(files), len(body), v.Titles)
	}
	w := call{method: "GET", path: "/v1/titles/big/filelist/" + v.Titles[0].FilesDigest, bearer: "adm"}.do(t, a)
	got, sum, err := filelist.DecodeAll(w.Body.Bytes())
	if w.Code != 200 || err != nil || sum.Digest != v.Titles[0].FilesDigest || len(got) != len(files) {
		t.Errorf("its list: %d, %d bytes, %d files (%v)", w.Code, w.Body.Len(), len(got), err)
	}
	if w.Body.Len() < 4<<20 {
		t.Errorf("list is %d bytes: the test wants one larger than the gateway's 4 MiB buffer", w.Body.Len())
	}
}

// TestManifestCatalog: the manifest carries the renditions of every
// ready title, planned or not, sorted by id, with heights (0 for audio);
// a video rendition of unknown height and a title not ready are left
// out, and a new title changes the ETag.
func TestManifestCatalog(t *testing.T) {
	a := newTestAPI(t)
	ctx := context.Background()
	put := func(title *fillcast.Title) {
		t.Helper()
		if err := a.apply(ctx, fsm.Command{Op: fsm.OpPutTitle, Title: title}); err != nil {
			t.Fatal(err)
		}
	}
	put(&fillcast.Title{ID: "t2", Name: "Two", Status: fillcast.StatusReady, Renditions: []fillcast.Rendition{
		{ID: "1080p", Kind: "video", Width: 1920, Height: 1080, Bandwidth: 5e6, Codecs: "avc1"},
		{ID: "hd", Kind: "video", Width: 1280, Height: 720, Bandwidth: 3e6, Codecs: "avc1"},
		{ID: "audio-en", Kind: "audio", Bandwidth: 128e3, Codecs: "mp4a.40.2"},
	}})
	put(&fillcast.Title{ID: "t0", Name: "Zero", Status: fillcast.StatusIngesting})
	if err := a.apply(ctx, fsm.Command{Op: fsm.OpPutManifest, Manifest: &fsm.Manifest{Appliance: "aa", Version: 1, Titles: []string{"t1"}}}); err != nil {
		t.Fatal(err)
	}
	get := func(etag string) (int, string, fillcast.Manifest) {
		req := httptest.NewRequest("GET", "/v1/appliances/aa/manifest", nil)
		req.Header.Set("Authorization", "Bearer adm")
		req.Header.Set("If-None-Match", etag)
		w := httptest.NewRecorder()
		a.ServeHTTP(w, req)
		var m fillcast.Manifest
		if w.Code == 200 {
			if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
		}
		return w.Code, w.Header().Get("ETag"), m
	}
	_, etag, m := get("")
	want := []fillcast.TitleRenditions{
		{ID: "t1", Renditions: []fillcast.RenditionHeight{}}, // its 720p has no height
		{ID: "t2", Renditions: []fillcast.RenditionHeight{{ID: "1080p", Height: 1080}, {ID: "hd", Height: 720}, {ID: "audio-en", Height: 0}}},
	}
	if got, _ := json.Marshal(m.Catalog); string(got) != mustJSON(t, want) {
		t.Errorf("catalog = %s\nwant %s", got, mustJSON(t, want))
	}
	if len(m.Titles) != 1 || m.Titles[0].ID != "t1" {
		t.Errorf("planned titles %+v, want t1 alone: the catalog plans nothing", m.Titles)
	}
	if code, _, _ := get(etag); code != 304 {
		t.Errorf("unchanged catalog: %d, want 304", code)
	}
	put(&fillcast.Title{ID: "t3", Name: "Three", Status: fillcast.StatusReady, Renditions: []fillcast.Rendition{
		{ID: "480p", Kind: "video", Width: 854, Height: 480, Bandwidth: 1e6, Codecs: "avc1"},
	}})
	code, next, m := get(etag)
	if code != 200 || next == etag || len(m.Catalog) != 3 || m.Catalog[2].ID != "t3" {
		t.Errorf("after a new title: %d, ETag %q then %q, catalog %+v; want 200, a new ETag and t3 last", code, etag, next, m.Catalog)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// memSink is a snapshot sink in memory.
type memSink struct{ bytes.Buffer }

func (*memSink) ID() string    { return "mem" }
func (*memSink) Cancel() error { return nil }
func (*memSink) Close() error  { return nil }

// TestManifestCatalogRestored: a snapshot restored, which may leave the
// applied index where it was, is a new catalog for the manifest.
func TestManifestCatalogRestored(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	ctx := context.Background()
	manifest := fsm.Command{Op: fsm.OpPutManifest, Manifest: &fsm.Manifest{Appliance: "aa", Version: 1, Titles: []string{"t1"}}}
	if err := a.apply(ctx, manifest); err != nil {
		t.Fatal(err)
	}
	catalog := func() []string {
		var m fillcast.Manifest
		call{method: "GET", path: "/v1/appliances/aa/manifest", bearer: "adm"}.want(t, a, 200, &m)
		var ids []string
		for _, tr := range m.Catalog {
			ids = append(ids, tr.ID)
		}
		return ids
	}
	if got := catalog(); !slices.Equal(got, []string{"t1"}) {
		t.Fatalf("catalog %v, want [t1]", got)
	}
	// Another node's state, with another catalog, as a snapshot.
	other := &localNode{f: fsm.New(nil)}
	for _, c := range []fsm.Command{{Op: fsm.OpPutTitle, Title: &fillcast.Title{ID: "r9", Name: "Restored", Status: fillcast.StatusReady,
		Renditions: []fillcast.Rendition{{ID: "720p", Kind: "video", Height: 720, Bandwidth: 3e6, Codecs: "avc1"}}}},
		{Op: fsm.OpPutManifest, Manifest: &fsm.Manifest{Appliance: "aa", Version: 1, Titles: []string{"r9"}}}} {
		if err := other.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := other.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	f := a.d.Node.FSM()
	index := f.AppliedIndex()
	if err := f.Restore(io.NopCloser(&sink.Buffer)); err != nil {
		t.Fatal(err)
	}
	if got := catalog(); !slices.Equal(got, []string{"r9"}) {
		t.Errorf("catalog after the restore %v (applied index %d, then %d), want the snapshot's [r9]", got, index, f.AppliedIndex())
	}
}
