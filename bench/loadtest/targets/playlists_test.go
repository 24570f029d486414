package targets

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/transcoder/hls"
)

// TestTargetsRenditions: what a title's playlists list, as paths under its
// base, whether they list their URIs relative to the playlist, relative
// to the host, with dot segments, or absolute.
func TestTargetsRenditions(t *testing.T) {
	t.Parallel()
	keys := testKeySet(t)
	w := catalog(1)
	w.objects["q"] = map[string]string{
		"master.m3u8":     "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nv/playlist.m3u8?x=1#top\n#EXT-X-STREAM-INF:BANDWIDTH=900000\nv/playlist.m3u8?x=1\n",
		"v/playlist.m3u8": "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4?k=v\"\n#EXTINF:4,\nseg%201.m4s?v=2#frag\n#EXTINF:4,\n./seg-2.m4s\n#EXT-X-ENDLIST\n",
		"v/init.mp4":      "x", "v/seg 1.m4s": "x", "v/seg-2.m4s": "x",
	}
	_, app, _ := serve(t, w, keys, "")
	p := playlists{hc: &http.Client{}, timeout: 10 * time.Second}
	tests := []struct {
		title string
		want  []rendition
	}{
		{"t00", []rendition{
			{"360p/playlist.m3u8", "360p/init.mp4", segs("360p", catalogSegments)},
			{"720p/playlist.m3u8", "720p/init.mp4", segs("720p", catalogSegments)},
			{"audio-en/playlist.m3u8", "audio-en/init.mp4", segs("audio-en", catalogSegments)},
		}},
		// Queries are kept, fragments dropped, a playlist listed twice
		// read once.
		{"q", []rendition{{"v/playlist.m3u8?x=1", "v/init.mp4?k=v", []string{"v/seg%201.m4s?v=2", "v/seg-2.m4s"}}}},
		{"t00-bare", nil},  // no master playlist
		{"t00-empty", nil}, // no segment
	}
	for _, tc := range tests {
		t.Run(tc.title, func(t *testing.T) {
			base := app.URL + keys.SignPath(tc.title, time.Now().Add(time.Hour), netip.Prefix{}) + "/"
			got, err := p.renditions(context.Background(), base)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("renditions\n got %+v\nwant %+v", got, tc.want)
			}
			for _, r := range got {
				for _, rel := range append([]string{r.playlist, r.init}, r.segments...) {
					if code := get(t, base+rel); code != http.StatusOK {
						t.Errorf("%s: the appliance answers %d", base+rel, code)
					}
				}
			}
		})
	}
}

// TestTargetsPlaylistErrors: a playlist that cannot be read or parsed, or that
// lists objects of another title or host, stops Generate with an error
// naming the playlist's URL: a list that silently lost titles would
// measure something else.
func TestTargetsPlaylistErrors(t *testing.T) {
	t.Parallel()
	keys := testKeySet(t)
	const master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\n360p/playlist.m3u8\n"
	tests := []struct {
		name    string
		objects map[string]string // of the title "x"
		timeout time.Duration     // Config.FetchTimeout
		want    []string          // in the error, besides the appliance's URL
	}{
		{"garbage master", map[string]string{"master.m3u8": "<html>oops</html>"}, 0,
			[]string{"/x/master.m3u8: hls: bad playlist: missing #EXTM3U"}},
		{"truncated master", map[string]string{"master.m3u8": "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\n"}, 0,
			[]string{"/x/master.m3u8: hls: bad playlist", "EXT-X-STREAM-INF without URI"}},
		{"truncated playlist", map[string]string{"master.m3u8": master, "360p/playlist.m3u8": "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4.0,\nseg-1.m4s\n#EXTINF:4.0,"}, 0,
			[]string{"/x/360p/playlist.m3u8: hls: bad playlist", "EXTINF without URI"}},
		{"unterminated attribute", map[string]string{"master.m3u8": master, "360p/playlist.m3u8": "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\n#EXTINF:4,\nseg-1.m4s\n"}, 0,
			[]string{"/x/360p/playlist.m3u8: hls: bad playlist", "unterminated quoted string"}},
		{"master for a rendition playlist", map[string]string{"master.m3u8": master, "360p/playlist.m3u8": master}, 0,
			[]string{"/x/360p/playlist.m3u8: hls: bad playlist", "multivariant tag in a media playlist"}},
		{"bad URI", map[string]string{"master.m3u8": master, "360p/playlist.m3u8": "#EXTM3U\n#EXTINF:4,\nseg%zz.m4s\n"}, 0,
			[]string{"/x/360p/playlist.m3u8: URI \"seg%zz.m4s\"", "invalid URL escape"}},
		{"playlist missing", map[string]string{"master.m3u8": master}, 0,
			[]string{"GET ", "/x/360p/playlist.m3u8: not found"}},
		{"variant on another host", map[string]string{"master.m3u8": "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nhttp://elsewhere.example/x/360p/playlist.m3u8\n"}, 0,
			[]string{"/x/master.m3u8 lists http://elsewhere.example/x/360p/playlist.m3u8, outside the title's directory"}},
		{"segment of another title", map[string]string{"master.m3u8": master, "360p/playlist.m3u8": "#EXTM3U\n#EXTINF:4,\n../../other/seg-1.m4s\n"}, 0,
			[]string{"/x/360p/playlist.m3u8 lists ", "/other/seg-1.m4s, outside the title's directory"}},
		{"init outside the title", map[string]string{"master.m3u8": master, "360p/playlist.m3u8": "#EXTM3U\n#EXT-X-MAP:URI=\"/init.mp4\"\n#EXTINF:4,\nseg-1.m4s\n"}, 0,
			[]string{"/x/360p/playlist.m3u8 lists ", "/init.mp4, outside the title's directory"}},
		{"appliance fails", map[string]string{"master.m3u8": status500}, 0,
			[]string{"/x/master.m3u8: 500 Internal Server Error"}},
		{"oversized", map[string]string{"master.m3u8": "#EXTM3U\n" + strings.Repeat("#\n", maxPlaylistBytes/2)}, 0,
			[]string{"/x/master.m3u8: more than 8388608 bytes"}},
		{"appliance hangs", map[string]string{"master.m3u8": hang}, 200 * time.Millisecond,
			[]string{"/x/master.m3u8", "exceeded"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := world{titles: []fillcast.Title{{ID: "x", Status: fillcast.StatusReady}}, objects: map[string]map[string]string{"x": tc.objects}}
			cp, app, _ := serve(t, w, keys, "")
			_, _, err := Generate(context.Background(), Config{ControlPlane: cp.URL, FetchTimeout: tc.timeout}, deps(t, cp.URL))
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range append(tc.want, app.URL, "targets: ") {
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("%v: want an error mentioning %q", err, want)
				}
			}
		})
	}
	var ce *fillcast.ConfigError
	if err := (Config{ControlPlane: "http://cp1", FetchTimeout: -time.Second}).Validate(); !errors.As(err, &ce) || ce.Field != "FetchTimeout" {
		t.Fatalf("a negative FetchTimeout: %v, want a FetchTimeout problem", err)
	}
}

// FuzzTargetsPlaylists: whatever an appliance answers, the parsers do not
// panic, and every object they find under the title's directory is
// base + its relative path again.
func FuzzTargetsPlaylists(f *testing.F) {
	for name, body := range catalog(1).objects["t00"] {
		if !strings.HasSuffix(name, ".m3u8") {
			continue
		}
		f.Add([]byte(strings.NewReplacer("{base}", "http://edge1:8080/c/tok/t00/", "{path}", "/c/tok/t00/").Replace(body)))
	}
	f.Add(hls.Media{MapURI: "../init.mp4?a=b", Segments: []hls.Segment{{URI: "seg%201.m4s#x", Duration: 4}, {URI: "//edge1:8080/c/tok/t00/s.m4s", Duration: 4}}}.Encode())
	f.Add([]byte("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nhttp://EDGE1:8080/c/tok/t00/%2e%2e/x\n"))
	f.Add([]byte("#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,URI=\"a\"\n#EXT-X-STREAM-INF:BANDWIDTH=1"))
	base, err := url.Parse("http://edge1:8080/c/tok/t00/")
	if err != nil {
		f.Fatal(err)
	}
	at := base.ResolveReference(&url.URL{Path: "720p/playlist.m3u8"})
	f.Fuzz(func(t *testing.T, data []byte) {
		lists, _ := masterURIs(data, at)
		init, found, _ := mediaURIs(data, at)
		found = append(found, lists...)
		if init != nil {
			found = append(found, init)
		}
		if u, err := resolve(at, string(data)); err == nil {
			found = append(found, u)
		}
		for _, u := range found {
			rel, ok := relative(base, u)
			if !ok {
				continue
			}
			back, err := url.Parse(base.String() + rel)
			if err != nil || back.EscapedPath() != u.EscapedPath() || back.RawQuery != u.RawQuery || !strings.HasPrefix(back.Path, base.Path) {
				t.Fatalf("%s: relative path %q reads back as %v (%v)", u, rel, back, err)
			}
		}
	})
}
