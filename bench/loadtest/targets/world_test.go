package targets

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/client"
	"github.com/fillcast/fillcast/transcoder/hls"
)

const testKeys = "k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"

// fakePage is the most titles the fake's listing answers per page, fewer
// than Generate asks for, so that it pages.
const fakePage = 4

// Bodies the fake appliance answers with something other than a body.
const (
	status500 = "\x00500"  // 500 Internal Server Error
	hang      = "\x00hang" // no answer until the request is abandoned
)

// world is a catalog: the listing the fake control plane answers and
// the objects the loopback appliance serves, title → object path → body.
// In a body, "{base}" stands for the title's base URL as requested
// (http://host/c/{token}/{title}/) and "{path}" for its path, so that
// playlists can list absolute and root-relative URIs under the token.
type world struct {
	titles  []fillcast.Title
	objects map[string]map[string]string
}

// calls counts what the fake control plane and appliance were asked.
type calls struct {
	// pages of the listing; refused ?files=1 reads; master playlists
	// asked of the appliance.
	pages, files, masters atomic.Int64
}

// testKeySet parses testKeys.
func testKeySet(t testing.TB) *auth.Keys {
	t.Helper()
	keys, err := auth.ParseKeys(strings.NewReader(testKeys))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// serve starts a loopback appliance serving w's objects under tokens of
// keys (403 for a token that does not verify for the title, 404 for an
// object it does not have), and a fake control plane serving
// GET /v1/titles and GET /v1/playback/{title} with the JSON shapes of
// docs/api.md, its playback URLs the appliance's, signed with keys. The
// listing is in pages of at most fakePage titles in id order, the
// cursor the last id of the page (opaque to Generate); GET
// /v1/titles/{id}?files=1 is refused (403), as the control plane
// refuses viewers. With a session, playback refuses other callers (401)
// and answers a stream lease, "st-1".
func serve(t *testing.T, w world, keys *auth.Keys, session string) (cp, app *httptest.Server, n *calls) {
	t.Helper()
	n = &calls{}
	amux := http.NewServeMux()
	amux.HandleFunc("GET /c/{token}/{title}/{object...}", func(rw http.ResponseWriter, r *http.Request) {
		token, id, object := r.PathValue("token"), r.PathValue("title"), r.PathValue("object")
		if _, err := keys.Verify(token, id, time.Now(), netip.Addr{}); err != nil {
			http.Error(rw, "bad token", http.StatusForbidden)
			return
		}
		if object == "master.m3u8" {
			n.masters.Add(1)
		}
		body, ok := w.objects[id][object]
		switch {
		case !ok:
			http.NotFound(rw, r)
		case body == status500:
			http.Error(rw, "broken", http.StatusInternalServerError)
		case body == hang:
			<-r.Context().Done()
		default:
			if strings.Contains(body, "{") {
				path := "/c/" + token + "/" + id + "/"
				body = strings.NewReplacer("{base}", "http://"+r.Host+path, "{path}", path).Replace(body)
			}
			rw.Write([]byte(body))
		}
	})
	app = httptest.NewServer(amux)
	t.Cleanup(app.Close)

	sorted := slices.SortedFunc(slices.Values(w.titles), func(a, b fillcast.Title) int { return strings.Compare(a.ID, b.ID) })
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/titles", func(rw http.ResponseWriter, r *http.Request) {
		n.pages.Add(1)
		q := r.URL.Query()
		limit, err := strconv.Atoi(q.Get("limit"))
		if err != nil || limit < 1 || limit > 200 {
			http.Error(rw, `{"error":"limit: want 1 to 200"}`, http.StatusBadRequest)
			return
		}
		var page struct {
			Titles     []fillcast.Title `json:"titles"`
			NextCursor string           `json:"next_cursor,omitempty"`
		}
		page.Titles = []fillcast.Title{}
		for _, tt := range sorted {
			if tt.ID <= q.Get("cursor") || (q.Get("status") != "" && q.Get("status") != tt.Status) {
				continue
			}
			if len(page.Titles) == min(limit, fakePage) {
				page.NextCursor = page.Titles[len(page.Titles)-1].ID
				break
			}
			page.Titles = append(page.Titles, tt)
		}
		json.NewEncoder(rw).Encode(page)
	})
	mux.HandleFunc("GET /v1/titles/{id}", func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("files") != "" {
			n.files.Add(1)
			http.Error(rw, `{"error":"files: only operators, ingest, nodes and appliances may read file lists"}`, http.StatusForbidden)
			return
		}
		http.Error(rw, `{"error":"not here"}`, http.StatusNotFound)
	})
	mux.HandleFunc("GET /v1/playback/{title}", func(rw http.ResponseWriter, r *http.Request) {
		id := r.PathValue("title")
		entry := map[string]string{"hls": "master.m3u8", "dash": "manifest.mpd"}[r.URL.Query().Get("protocol")]
		exp := time.Now().Add(time.Hour)
		var stream string
		if session != "" {
			if r.Header.Get("Authorization") != "Bearer "+session {
				http.Error(rw, `{"error":"sign in"}`, http.StatusUnauthorized)
				return
			}
			stream = "st-1"
		}
		json.NewEncoder(rw).Encode(fillcast.Playback{StreamID: stream,
			Title: id, Protocol: r.URL.Query().Get("protocol"),
			URLs:        []string{app.URL + keys.SignPath(id, exp, netip.Prefix{}) + "/" + entry, "http://edge2:8080/x"},
			SteeringURL: "http://cp/v1/steering/" + id, ExpiresAt: exp.UTC().Format(time.RFC3339),
		})
	})
	cp = httptest.NewServer(mux)
	t.Cleanup(cp.Close)
	return cp, app, n
}

// deps returns Deps with a client of the control plane at u (none when
// u is empty) and the default HTTP client.
func deps(t *testing.T, u string) Deps {
	t.Helper()
	if u == "" {
		return Deps{}
	}
	c, err := client.New(client.Config{URLs: []string{u}}, client.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return Deps{ControlPlane: c}
}

// segs are the names of a rendition's segments in the catalog.
func segs(dir string, n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Sprintf("%s/seg-%05d.m4s", dir, i))
	}
	return out
}

// catalogSegments is the number of segments of each rendition of the
// catalog.
const catalogSegments = 40

// catalog is n ready titles t00… as the packager writes them: a master
// playlist with an audio rendition (audio-en, whose playlist lists
// root-relative URIs and ones with dot segments) and two variants (360p,
// whose playlist lists relative URIs, and 720p, listed by an absolute
// URI and listing absolute ones), and an I-frame playlist a player of
// the list does not fetch. Besides: t00-bare, ready with a download
// only (no master playlist: 404); t00-empty, whose playlist lists no
// segment; and a title not ready.
func catalog(n int) world {
	w := world{objects: map[string]map[string]string{}}
	master := string(hls.Master{
		Independent: true,
		Audio:       []hls.Audio{{GroupID: "aud", Language: "en", Name: "English", Default: true, AutoSelect: true, Channels: 2, URI: "audio-en/playlist.m3u8"}},
		Variants: []hls.Variant{
			{URI: "360p/playlist.m3u8", Bandwidth: 800_000, Width: 640, Height: 360, Codecs: "avc1.64001e,mp4a.40.2", Audio: "aud"},
			{URI: "{base}720p/playlist.m3u8", Bandwidth: 3_000_000, Width: 1280, Height: 720, Codecs: "avc1.64001f,mp4a.40.2", Audio: "aud"},
		},
	}.Encode()) + "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100000,URI=\"360p/iframes.m3u8\"\n"
	for i := range n {
		id := fmt.Sprintf("t%02d", i)
		w.titles = append(w.titles, fillcast.Title{ID: id, Status: fillcast.StatusReady})
		objects := map[string]string{"master.m3u8": master, "manifest.mpd": "<MPD/>", "download/720p.mp4": "x"}
		// The prefix of the URI of a rendition's i-th object (0: init).
		for dir, prefix := range map[string]func(i int) string{
			"360p":     func(int) string { return "" },
			"720p":     func(int) string { return "{base}720p/" },
			"audio-en": func(i int) string { return []string{"{path}audio-en/", "../audio-en/"}[i%2] },
		} {
			m := hls.Media{MapURI: prefix(0) + "init.mp4"}
			objects[dir+"/init.mp4"] = "x"
			for s, name := range segs(dir, catalogSegments) {
				m.Segments = append(m.Segments, hls.Segment{URI: prefix(s+1) + strings.TrimPrefix(name, dir+"/"), Duration: 4})
				objects[name] = "x"
			}
			objects[dir+"/playlist.m3u8"] = string(m.Encode())
		}
		w.objects[id] = objects
	}
	w.titles = append(w.titles,
		fillcast.Title{ID: "t00-bare", Status: fillcast.StatusReady},
		fillcast.Title{ID: "t00-empty", Status: fillcast.StatusReady},
		fillcast.Title{ID: "pending", Status: fillcast.StatusIngesting})
	w.objects["t00-bare"] = map[string]string{"download/720p.mp4": "x"}
	w.objects["t00-empty"] = map[string]string{
		"master.m3u8":        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\n360p/playlist.m3u8\n",
		"360p/playlist.m3u8": string(hls.Media{MapURI: "init.mp4"}.Encode()),
		"360p/init.mp4":      "x",
	}
	return w
}
