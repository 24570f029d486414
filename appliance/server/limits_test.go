package server

import (
	"bytes"
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/manifestfilter/manifestfiltertest"
	"github.com/fillcast/fillcast/transcoder/dash"
	"github.com/fillcast/fillcast/transcoder/hls"
	dto "github.com/prometheus/client_model/go"
	"github.com/valyala/fasthttp"
)

// titleCache is an in-memory Cache of whole titles' files, as the memory
// tier holds them.
type titleCache map[string]cache.Hit

func newTitleCache(titles ...string) titleCache {
	c := titleCache{}
	for _, title := range titles {
		for path, b := range manifestfiltertest.Files() {
			c[title+"/"+path] = cache.Hit{Tier: cache.TierMemory, Body: b, Meta: &cache.Meta{
				Size: int64(len(b)), ETag: `"` + title + "-" + path + `"`, CacheControl: fillcast.CacheControl(path),
			}}
		}
	}
	return c
}

func (c titleCache) Get(_ context.Context, key string) (cache.Hit, error) {
	if h, ok := c.Lookup(key); ok {
		return h, nil
	}
	return cache.Hit{}, cache.ErrNotFound
}

func (c titleCache) Lookup(key string) (cache.Hit, bool) { h, ok := c[key]; return h, ok }
func (c titleCache) Purge(string) int                    { return 0 }

// catalog is what the control plane's fill manifest says of the test
// title's renditions.
func catalog(titles ...string) []fillcast.TitleRenditions {
	var out []fillcast.TitleRenditions
	for _, id := range titles {
		tr := fillcast.TitleRenditions{ID: id}
		for _, r := range manifestfiltertest.Renditions {
			tr.Renditions = append(tr.Renditions, fillcast.RenditionHeight{ID: r.ID, Height: r.Height})
		}
		out = append(out, tr)
	}
	return out
}

// Plans' limits, as the control plane signs them.
var (
	basic    = auth.Limits{MaxHeight: 480, NoDownloads: true}
	standard = auth.Limits{MaxHeight: 1080}
	hd720    = auth.Limits{MaxHeight: 720}
	tiny     = auth.Limits{MaxHeight: 100}
)

// TestLimits: what a token's limits let a player fetch from the
// appliance, for a title the catalog lists (t1, whose 720p rendition is
// named "hd") and one it does not list yet (t2): the master playlist and
// the MPD leave out the renditions above the limit, those renditions'
// files and the downloads above it are refused, and tokens without
// limits and fill passes see everything.
func TestLimits(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	s, err := New(Config{}, Deps{Cache: newTitleCache("t1", "t2"), Keys: keys.Public()})
	if err != nil {
		t.Fatal(err)
	}
	s.SetRenditions(NewRenditions(catalog("t1")))
	path := func(title string, l auth.Limits) string {
		return keys.SignPathLimited(title, time.Now().Add(time.Hour), netip.Prefix{}, l)
	}
	pass, err := keys.SignFillPass("a2", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	all := []string{"1080p", "hd", "480p", "240p"}
	tests := []struct {
		name, path string
		code       int
		variants   []string // of a master playlist or MPD answered 200
	}{
		{"basic: master", path("t1", basic) + "/master.m3u8", 200, []string{"480p", "240p"}},
		{"basic: MPD", path("t1", basic) + "/manifest.mpd", 200, []string{"480p", "240p"}},
		{"basic: 480p segment", path("t1", basic) + "/480p/seg-00001.m4s", 200, nil},
		{"basic: 480p init", path("t1", basic) + "/480p/init.mp4", 200, nil},
		{"basic: 480p playlist", path("t1", basic) + "/480p/playlist.m3u8", 200, nil},
		{"basic: audio", path("t1", basic) + "/audio-en/seg-00001.m4s", 200, nil},
		{"basic: poster", path("t1", basic) + "/poster.jpg", 200, nil},
		{"basic: 720p segment", path("t1", basic) + "/hd/seg-00001.m4s", 403, nil},
		{"basic: 720p init", path("t1", basic) + "/hd/init.mp4", 403, nil},
		{"basic: 720p playlist", path("t1", basic) + "/hd/playlist.m3u8", 403, nil},
		{"basic: 1080p segment", path("t1", basic) + "/1080p/seg-00001.m4s", 403, nil},
		{"basic: a directory the catalog does not list", path("t1", basic) + "/360p/seg-00001.m4s", 403, nil},
		{"basic: 240p download", path("t1", basic) + "/download/240p.mp4", 403, nil},
		{"720: 720p segment", path("t1", hd720) + "/hd/seg-00001.m4s", 200, nil},
		{"720: master", path("t1", hd720) + "/master.m3u8", 200, []string{"hd", "480p", "240p"}},
		{"720: 240p download", path("t1", hd720) + "/download/240p.mp4", 200, nil},
		{"720: 1080p download", path("t1", hd720) + "/download/1080p.mp4", 403, nil},
		{"standard: 1080p download", path("t1", standard) + "/download/1080p.mp4", 200, nil},
		{"standard: master", path("t1", standard) + "/master.m3u8", 200, all},
		{"too small for any rendition: master", path("t1", tiny) + "/master.m3u8", 403, nil},
		{"too small for any rendition: MPD", path("t1", tiny) + "/manifest.mpd", 403, nil},
		{"unrestricted: master", path("t1", auth.Limits{}) + "/master.m3u8", 200, all},
		{"unrestricted: MPD", path("t1", auth.Limits{}) + "/manifest.mpd", 200, all},
		{"unrestricted: 1080p segment", path("t1", auth.Limits{}) + "/1080p/seg-00001.m4s", 200, nil},
		{"unrestricted: download", path("t1", auth.Limits{}) + "/download/1080p.mp4", 200, nil},
		{"no downloads alone: 1080p segment", path("t1", auth.Limits{NoDownloads: true}) + "/1080p/seg-00001.m4s", 200, nil},
		{"no downloads alone: download", path("t1", auth.Limits{NoDownloads: true}) + "/download/240p.mp4", 403, nil},
		{"unlisted title, basic: 480p by its name", path("t2", basic) + "/480p/seg-00001.m4s", 200, nil},
		{"unlisted title, basic: 1080p by its name", path("t2", basic) + "/1080p/seg-00001.m4s", 403, nil},
		{"unlisted title, 720: a name without a height", path("t2", hd720) + "/hd/seg-00001.m4s", 403, nil},
		{"unlisted title, basic: master", path("t2", basic) + "/master.m3u8", 200, []string{"480p", "240p"}},
		{"unlisted title, unrestricted: any name", path("t2", auth.Limits{}) + "/hd/seg-00001.m4s", 200, nil},
		{"fill pass: 1080p segment", "/f/t1/1080p/seg-00001.m4s", 200, nil},
		{"fill pass: master", "/f/t1/master.m3u8", 200, all},
		{"fill pass: download", "/f/t1/download/1080p.mp4", 200, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			request(&ctx, tt.path)
			if strings.HasPrefix(tt.path, "/f/") {
				ctx.Request.Header.Set("Authorization", "Bearer "+pass)
			}
			s.Handle(&ctx)
			body := ctx.Response.Body()
			if got := ctx.Response.StatusCode(); got != tt.code {
				t.Fatalf("GET %s = %d %q, want %d", tt.path, got, body, tt.code)
			}
			if tt.code == 403 && string(body) != "forbidden\n" {
				t.Errorf("403 body %q, want forbidden alone", body)
			}
			if tt.variants != nil {
				if got := variants(t, tt.path, body); !slices.Equal(got, tt.variants) {
					t.Errorf("GET %s lists %q, want %q", tt.path, got, tt.variants)
				}
			}
		})
	}
	for reason, want := range map[string]float64{"rendition": 9, "download": 3} {
		var m dto.Metric
		if err := s.metrics.forbidden.WithLabelValues(reason).Write(&m); err != nil {
			t.Fatal(err)
		}
		if got := m.GetCounter().GetValue(); got != want {
			t.Errorf("forbidden{reason=%q} = %v, want %v", reason, got, want)
		}
	}
}

// variants returns the video renditions a master playlist or MPD lists.
func variants(t *testing.T, path string, body []byte) []string {
	t.Helper()
	var out []string
	if strings.HasSuffix(path, ".mpd") {
		m, err := dash.Parse(body)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, as := range m.Periods[0].AdaptationSets {
			for _, r := range as.Representations {
				if as.ContentType == "video" {
					out = append(out, r.ID)
				}
			}
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

// TestFilteredManifestHTTP: a filtered manifest is its own
// representation: its own ETag (so a conditional request of the full
// one's tag does not match), a 304 for its own, ranges over its bytes,
// and it is filtered once for any number of requests.
func TestFilteredManifestHTTP(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	c := newTitleCache("t1")
	s, err := New(Config{}, Deps{Cache: c, Keys: keys.Public()})
	if err != nil {
		t.Fatal(err)
	}
	p := keys.SignPathLimited("t1", time.Now().Add(time.Hour), netip.Prefix{}, basic) + "/master.m3u8"
	var ctx fasthttp.RequestCtx
	request(&ctx, p)
	s.Handle(&ctx)
	full := c["t1/master.m3u8"]
	filtered := slices.Clone(ctx.Response.Body())
	etag := string(ctx.Response.Header.Peek("ETag"))
	if ctx.Response.StatusCode() != 200 || etag != `"t1-master.m3u8-h480"` || len(filtered) >= len(full.Body) {
		t.Fatalf("GET = %d, ETag %s, %d bytes of %d; want 200, the variant's tag and fewer bytes", ctx.Response.StatusCode(), etag, len(filtered), len(full.Body))
	}
	if cc := string(ctx.Response.Header.Peek("Cache-Control")); cc != "public, max-age=60" {
		t.Errorf("Cache-Control %q, the original's", cc)
	}
	steps := []struct {
		name, header, value string
		code                int
		body                []byte
	}{
		{"its own tag", "If-None-Match", etag, 304, nil},
		{"the full manifest's tag", "If-None-Match", full.Meta.ETag, 200, filtered},
		{"a range", "Range", "bytes=0-6", 206, filtered[:7]},
		{"again", "", "", 200, filtered},
	}
	for _, st := range steps {
		request(&ctx, p)
		if st.header != "" {
			ctx.Request.Header.Set(st.header, st.value)
		}
		s.Handle(&ctx)
		if ctx.Response.StatusCode() != st.code || st.body != nil && !bytes.Equal(ctx.Response.Body(), st.body) {
			t.Errorf("%s: %d %q, want %d %q", st.name, ctx.Response.StatusCode(), ctx.Response.Body(), st.code, st.body)
		}
	}
	if n := s.variants.Len(); n != 1 {
		t.Errorf("%d filtered variants held after five requests, want 1", n)
	}
}

// BenchmarkMemoryHitLimited is BenchmarkMemoryHit with a token limited
// to 1080p: the limits check on the segment hit path.
func BenchmarkMemoryHitLimited(b *testing.B) {
	s, _ := newTestServer(b)
	s.SetRenditions(NewRenditions([]fillcast.TitleRenditions{{ID: "t1", Renditions: []fillcast.RenditionHeight{{ID: "720p", Height: 720}}}}))
	path := testKeys(b).SignPathLimited("t1", time.Now().Add(time.Hour), netip.Prefix{}, standard) + "/720p/seg-00001.m4s"
	var ctx fasthttp.RequestCtx
	request(&ctx, path)
	if s.Handle(&ctx); ctx.Response.StatusCode() != 200 {
		b.Fatalf("status %d", ctx.Response.StatusCode())
	}
	b.ReportAllocs()
	for b.Loop() {
		request(&ctx, path)
		s.Handle(&ctx)
	}
}
