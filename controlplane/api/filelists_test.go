package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/liststore"
	"github.com/fillcast/fillcast/filelist"
	"github.com/fillcast/fillcast/origin"
)

// withOrigin gives the API a list store over a real origin on
// loopback, whose GETs of a title named "down" answer 503, as an
// overloaded origin does. It returns the origin's URL.
func withOrigin(t *testing.T, d *Deps) string {
	t.Helper()
	cfg := origin.DefaultConfig()
	cfg.Root = t.TempDir()
	o, err := origin.New(cfg, origin.Deps{AdminToken: "adm", Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/down/") {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		o.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s, err := liststore.New(liststore.Config{Origin: srv.URL}, liststore.Deps{State: d.Node.FSM(), AdminToken: "adm"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	d.FileLists = s
	return srv.URL
}

// publishList PUTs a list at the origin, at its digest's path, as ingest
// does.
func publishList(t *testing.T, originURL, title string, body []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, originURL+"/"+filelist.Path(title, filelist.Digest(body)), bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer adm")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("PUT list of %s: %s", title, resp.Status)
	}
}

// segments are n files of a rendition, and a poster.
func segments(n int) []fillcast.File {
	fs := []fillcast.File{{Path: "poster.jpg", Size: 2000, SHA256: strings.Repeat("cd", 32)}}
	for i := range n {
		fs = append(fs, fillcast.File{Path: fmt.Sprintf("720p/seg-%05d.m4s", i+1), Size: 16000, SHA256: strings.Repeat("ab", 32)})
	}
	return fs
}

// TestTitleFileList: GET /v1/titles/{id}/filelist/{digest} answers a
// title's list (pending in the state, or published at the origin) as
// immutable text under its digest, 304 for its ETag; any other digest
// is 404, a list the origin has wrong or cannot give 502 or 503.
func TestTitleFileList(t *testing.T) {
	t.Parallel()
	var originURL string
	a := newTestAPIWith(t, func(d *Deps) { originURL = withOrigin(t, d) })
	pending, _, _ := filelist.Encode([]fillcast.File{{Path: "poster.jpg", Size: 1000}}) // t1's, from newTestAPI
	published, sum, err := filelist.Encode(segments(50))
	if err != nil {
		t.Fatal(err)
	}
	publishList(t, originURL, "pub", published)
	putTitle(t, a, &fillcast.Title{ID: "pub", Name: "Published", FilesDigest: sum.Digest, Bytes: sum.Bytes, FileCount: sum.Count, Poster: sum.Poster})
	wrong := filelist.Digest([]byte("another list"))
	publishList(t, originURL, "damaged", published) // under its own digest, not the title's
	putTitle(t, a, &fillcast.Title{ID: "damaged", Name: "Damaged", FilesDigest: wrong})
	putTitle(t, a, &fillcast.Title{ID: "down", Name: "Down", FilesDigest: wrong})
	putTitle(t, a, &fillcast.Title{ID: "nofiles", Name: "No files"})

	tests := []struct {
		name, path string
		code       int
		body       []byte
		message    string
	}{
		{"pending in the state", "/v1/titles/t1/filelist/" + filelist.Digest(pending), 200, pending, ""},
		{"published at the origin", "/v1/titles/pub/filelist/" + sum.Digest, 200, published, ""},
		{"not the title's digest", "/v1/titles/pub/filelist/" + filelist.Digest(pending), 404, nil, "its files_digest is " + sum.Digest},
		{"a title without files", "/v1/titles/nofiles/filelist/" + sum.Digest, 404, nil, "has no file list"},
		{"an unknown title", "/v1/titles/nope/filelist/" + sum.Digest, 404, nil, "not found"},
		{"not a digest", "/v1/titles/pub/filelist/ABC", 400, nil, "64 lower-case hex"},
		{"damaged at the origin", "/v1/titles/damaged/filelist/" + wrong, 502, nil, "missing or damaged"},
		{"the origin failing", "/v1/titles/down/filelist/" + wrong, 503, nil, "try again shortly"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := call{method: "GET", path: tt.path, bearer: "adm"}.do(t, a)
			if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.message) {
				t.Fatalf("%d %s, want %d saying %q", w.Code, w.Body, tt.code, tt.message)
			}
			if tt.code != 200 {
				return
			}
			h := w.Header()
			digest := tt.path[strings.LastIndex(tt.path, "/")+1:]
			if !bytes.Equal(w.Body.Bytes(), tt.body) || h.Get("Content-Type") != "text/plain; charset=utf-8" ||
				h.Get("ETag") != `"`+digest+`"` || !strings.Contains(h.Get("Cache-Control"), "immutable") {
				t.Errorf("%d bytes with %v, want the list's %d as immutable text under its digest", w.Body.Len(), h, len(tt.body))
			}
			again := call{method: "GET", path: tt.path, bearer: "adm", header: http.Header{"If-None-Match": {`"` + digest + `"`}}}.do(t, a)
			if again.Code != http.StatusNotModified || again.Body.Len() != 0 {
				t.Errorf("with its ETag: %d, %d bytes; want 304", again.Code, again.Body.Len())
			}
		})
	}
}

// countedLists counts the calls to the API's list store.
type countedLists struct {
	FileLists
	calls atomic.Int64
}

func (c *countedLists) Get(ctx context.Context, title, digest string) ([]byte, error) {
	c.calls.Add(1)
	return c.FileLists.Get(ctx, title, digest)
}

// TestTitleFiles: GET /v1/titles/{id} answers no files but with
// ?files=1, which decodes them from the list; the title's file route
// finds any path of the list for an operator, not only its poster, and
// for a viewer only the poster and the downloads, without reading the
// list.
func TestTitleFiles(t *testing.T) {
	t.Parallel()
	var originURL string
	var lists *countedLists
	a := newTestAPIWith(t, func(d *Deps) {
		originURL = withOrigin(t, d)
		lists = &countedLists{FileLists: d.FileLists}
		d.FileLists = lists
	})
	files := segments(20)
	body, sum, _ := filelist.Encode(files)
	publishList(t, originURL, "pub", body)
	putTitle(t, a, &fillcast.Title{ID: "pub", Name: "Published", FilesDigest: sum.Digest, Bytes: sum.Bytes, FileCount: sum.Count, Poster: sum.Poster})
	// Given with its files, as operators and the previous release do: the
	// list waits in the state, and the answer has its summary instead.
	given, _ := json.Marshal(fillcast.Title{Name: "Given", Status: fillcast.StatusReady, Files: files[:5],
		Renditions: []fillcast.Rendition{{ID: "720p", Kind: "video", Height: 720, Bandwidth: 3e6, Codecs: "avc1"}}})
	var put titleView
	if b := (call{method: "PUT", path: "/v1/titles/given", body: string(given), bearer: "adm"}).want(t, a, 200, &put); strings.Contains(b, `"files"`) ||
		put.FileCount != 5 || !filelist.ValidDigest(put.FilesDigest) {
		t.Errorf("PUT with files answered %s; want the list's summary, not the files", b)
	}
	// A metadata edit keeps the stored summary, and the answer shows it.
	edit, _ := json.Marshal(fillcast.Title{Name: "Given again", Status: fillcast.StatusReady, Renditions: []fillcast.Rendition{{ID: "720p", Kind: "video", Height: 720, Bandwidth: 3e6, Codecs: "avc1"}}})
	var edited titleView
	if b := (call{method: "PUT", path: "/v1/titles/given", body: string(edit), bearer: "adm"}).want(t, a, 200, &edited); edited.Name != "Given again" ||
		edited.FilesDigest != put.FilesDigest || edited.FileCount != 5 || edited.Bytes != put.Bytes || edited.Poster != filelist.PosterPath || edited.PosterURL == "" {
		t.Errorf("metadata-only PUT answered %s; want the new name with the stored summary %+v", b, put.Title)
	}

	for _, tt := range []struct {
		id   string
		want []fillcast.File
	}{{"pub", files}, {"given", files[:5]}} {
		var plain, full titleView
		if b := (call{method: "GET", path: "/v1/titles/" + tt.id, bearer: "adm"}).want(t, a, 200, &plain); strings.Contains(b, `"files"`) {
			t.Errorf("%s without ?files=1: %s", tt.id, b)
		}
		call{method: "GET", path: "/v1/titles/" + tt.id + "?files=1", bearer: "adm"}.want(t, a, 200, &full)
		want := slices.Clone(tt.want)
		slices.SortFunc(want, func(a, b fillcast.File) int { return strings.Compare(a.Path, b.Path) })
		if !slices.Equal(full.Files, want) || full.FileCount != len(want) || full.PosterURL != "/v1/titles/"+tt.id+"/files/poster.jpg" {
			t.Errorf("%s?files=1: %d files, count %d, poster %q; want its %d files", tt.id, len(full.Files), full.FileCount, full.PosterURL, len(want))
		}
	}
	viewer := signIn(t, a, "files@example.com", "wall")
	before := lists.calls.Load()
	for _, tt := range []struct {
		path string
		code int
	}{
		{"/v1/titles/pub/files/poster.jpg", 302},
		{"/v1/titles/pub/files/720p/seg-00007.m4s", 404},
		{"/v1/titles/given/files/720p/seg-00004.m4s", 404},
		{"/v1/titles/pub?files=1", 403},
	} {
		if w := (call{method: "GET", path: tt.path, bearer: viewer}).do(t, a); w.Code != tt.code {
			t.Errorf("GET %s as a viewer: %d %s, want %d", tt.path, w.Code, w.Body, tt.code)
		}
	}
	if n := lists.calls.Load() - before; n != 0 {
		t.Errorf("a viewer's requests read %d file lists, want none", n)
	}
	for _, tt := range []struct {
		path string
		code int
	}{
		{"/v1/titles/pub/files/poster.jpg", 302},
		{"/v1/titles/pub/files/720p/seg-00007.m4s", 302},
		{"/v1/titles/given/files/720p/seg-00004.m4s", 302},
		{"/v1/titles/given/files/720p/seg-00007.m4s", 404}, // in pub's list only
		{"/v1/titles/pub/files/720p/seg-00007.m4s%0916000", 404},
		{"/v1/titles/pub/files/720p", 404},
	} {
		w := call{method: "GET", path: tt.path, bearer: "adm"}.do(t, a)
		if w.Code != tt.code {
			t.Errorf("GET %s: %d %s, want %d", tt.path, w.Code, w.Body, tt.code)
		}
		_, file, _ := strings.Cut(tt.path, "/files/")
		if loc := w.Header().Get("Location"); tt.code == 302 && !strings.HasSuffix(loc, "/"+file) {
			t.Errorf("GET %s: to %s", tt.path, loc)
		}
	}
}
