package origin

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/manifestfilter/manifestfiltertest"
	"github.com/fillcast/fillcast/transcoder/dash"
	"github.com/fillcast/fillcast/transcoder/hls"
)

// putTitle writes the test title's files under root/title.
func putTitle(t *testing.T, root, title string, skip ...string) {
	t.Helper()
	for path, b := range manifestfiltertest.Files() {
		if slices.Contains(skip, path) {
			continue
		}
		p := filepath.Join(root, title, path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLimits: what a token's limits let a player fetch from the origin,
// over HTTP on loopback. Heights come from the title's master playlist
// (t1 names its 720p rendition "hd"), or from rendition names for a title
// without one (t2); the master playlist and the MPD leave out the
// renditions above the limit; fill passes and the admin token see
// everything.
func TestLimits(t *testing.T) {
	t.Parallel()
	srv, root, keys := newOrigin(t, true)
	putTitle(t, root, "t1")
	putTitle(t, root, "t2", "master.m3u8")
	path := func(title string, l auth.Limits) string {
		return keys.SignPathLimited(title, time.Now().Add(time.Hour), netip.Prefix{}, l)
	}
	pass, err := keys.SignFillPass("a1", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var (
		basic    = auth.Limits{MaxHeight: 480, NoDownloads: true}
		hd720    = auth.Limits{MaxHeight: 720}
		standard = auth.Limits{MaxHeight: 1080}
	)
	all := []string{"1080p", "hd", "480p", "240p"}
	tests := []struct {
		name, path, authz string
		code              int
		variants          []string
	}{
		{"basic: master", path("t1", basic) + "/master.m3u8", "", 200, []string{"480p", "240p"}},
		{"basic: MPD", path("t1", basic) + "/manifest.mpd", "", 200, []string{"480p", "240p"}},
		{"basic: 480p segment", path("t1", basic) + "/480p/seg-00001.m4s", "", 200, nil},
		{"basic: audio", path("t1", basic) + "/audio-en/init.mp4", "", 200, nil},
		{"basic: poster", path("t1", basic) + "/poster.jpg", "", 200, nil},
		{"basic: 720p segment", path("t1", basic) + "/hd/seg-00001.m4s", "", 403, nil},
		{"basic: 720p init", path("t1", basic) + "/hd/init.mp4", "", 403, nil},
		{"basic: 720p playlist", path("t1", basic) + "/hd/playlist.m3u8", "", 403, nil},
		{"basic: 1080p segment", path("t1", basic) + "/1080p/seg-00001.m4s", "", 403, nil},
		{"basic: download", path("t1", basic) + "/download/240p.mp4", "", 403, nil},
		{"720: 720p segment", path("t1", hd720) + "/hd/seg-00001.m4s", "", 200, nil},
		{"720: 1080p download", path("t1", hd720) + "/download/1080p.mp4", "", 403, nil},
		{"720: 240p download", path("t1", hd720) + "/download/240p.mp4", "", 200, nil},
		{"standard: 1080p download", path("t1", standard) + "/download/1080p.mp4", "", 200, nil},
		{"standard: master", path("t1", standard) + "/master.m3u8", "", 200, all},
		{"too small: master", path("t1", auth.Limits{MaxHeight: 100}) + "/master.m3u8", "", 403, nil},
		{"unrestricted: 1080p segment", path("t1", auth.Limits{}) + "/1080p/seg-00001.m4s", "", 200, nil},
		{"unrestricted: MPD", path("t1", auth.Limits{}) + "/manifest.mpd", "", 200, all},
		{"no master, basic: 480p by its name", path("t2", basic) + "/480p/seg-00001.m4s", "", 200, nil},
		{"no master, 720: a name without a height", path("t2", hd720) + "/hd/seg-00001.m4s", "", 403, nil},
		{"no master, basic: MPD", path("t2", basic) + "/manifest.mpd", "", 200, []string{"480p", "240p"}},
		{"fill pass: 1080p segment", "/f/t1/1080p/seg-00001.m4s", "Bearer " + pass, 200, nil},
		{"fill pass: master", "/f/t1/master.m3u8", "Bearer " + pass, 200, all},
		{"admin: download", "/t1/download/1080p.mp4", "Bearer adm", 200, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.authz != "" {
				hdr = []string{"Authorization", tt.authz}
			}
			resp, b := call(t, "GET", srv.URL+tt.path, nil, hdr...)
			if resp.StatusCode != tt.code {
				t.Fatalf("GET %s = %d %q, want %d", tt.path, resp.StatusCode, b, tt.code)
			}
			if tt.code == 403 && string(b) != "forbidden\n" {
				t.Errorf("403 body %q, want forbidden alone", b)
			}
			if tt.variants != nil {
				if got := listed(t, tt.path, b); !slices.Equal(got, tt.variants) {
					t.Errorf("GET %s lists %q, want %q", tt.path, got, tt.variants)
				}
			}
		})
	}
}

// listed returns the video renditions a master playlist or MPD lists.
func listed(t *testing.T, path string, body []byte) []string {
	t.Helper()
	var out []string
	if strings.HasSuffix(path, ".mpd") {
		m, err := dash.Parse(body)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, r := range m.Periods[0].AdaptationSets[0].Representations {
			out = append(out, r.ID)
		}
		return out
	}
	m, err := hls.ParseMaster(body)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, v := range m.Variants {
		out = append(out, strings.TrimSuffix(v.URI, "/playlist.m3u8"))
	}
	return out
}

// TestFilteredManifestHTTP: the origin's filtered manifest has its own
// ETag, answers conditional requests for it, and a republished master
// playlist is filtered again, its heights learnt again.
func TestFilteredManifestHTTP(t *testing.T) {
	t.Parallel()
	srv, root, keys := newOrigin(t, true)
	putTitle(t, root, "t1")
	p := keys.SignPathLimited("t1", time.Now().Add(time.Hour), netip.Prefix{}, auth.Limits{MaxHeight: 720}) + "/master.m3u8"
	full, _ := call(t, "GET", srv.URL+"/t1/master.m3u8", nil, "Authorization", "Bearer adm")
	resp, b := call(t, "GET", srv.URL+p, nil)
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || etag == full.Header.Get("ETag") || !strings.HasSuffix(etag, `-h720"`) {
		t.Fatalf("filtered master: %d, ETag %s (full %s)", resp.StatusCode, etag, full.Header.Get("ETag"))
	}
	if resp.Header.Get("Content-Type") != "application/vnd.apple.mpegurl" || resp.Header.Get("Cache-Control") != "public, max-age=60" {
		t.Errorf("headers %v", resp.Header)
	}
	if resp, _ := call(t, "GET", srv.URL+p, nil, "If-None-Match", etag); resp.StatusCode != 304 {
		t.Errorf("If-None-Match of the variant's tag: %d, want 304", resp.StatusCode)
	}
	if resp, _ := call(t, "GET", srv.URL+p, nil, "If-None-Match", full.Header.Get("ETag")); resp.StatusCode != 200 {
		t.Errorf("If-None-Match of the full playlist's tag: %d, want 200", resp.StatusCode)
	}
	if got := listed(t, p, b); !slices.Equal(got, []string{"hd", "480p", "240p"}) {
		t.Errorf("lists %q", got)
	}
	// Republished with "hd" as a 1080p rendition: the playlist and the
	// heights are read again.
	republished := strings.Replace(string(manifestfiltertest.Master()), "RESOLUTION=1280x720", "RESOLUTION=1920x1080", 1)
	if resp, _ := call(t, "PUT", srv.URL+"/t1/master.m3u8", strings.NewReader(republished), "Authorization", "Bearer adm"); resp.StatusCode != 201 {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	if _, b := call(t, "GET", srv.URL+p, nil); !slices.Equal(listed(t, p, b), []string{"480p", "240p"}) {
		t.Errorf("after republishing, lists %q, want 480p and 240p", listed(t, p, b))
	}
	seg := strings.TrimSuffix(p, "master.m3u8") + "hd/seg-00001.m4s"
	if resp, _ := call(t, "GET", srv.URL+seg, nil); resp.StatusCode != 403 {
		t.Errorf("hd, now 1080p, under a 720 limit: %d, want 403", resp.StatusCode)
	}
}
