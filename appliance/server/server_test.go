package server

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/fillcast/fillcast/auth"
	"github.com/valyala/fasthttp"
)

// memCache is an in-memory Cache holding whole objects, as the memory tier
// does.
type memCache map[string]*cache.Meta

var body = make([]byte, 1_500_000)

func (m memCache) Get(_ context.Context, key string) (cache.Hit, error) {
	if h, ok := m.Lookup(key); ok {
		return h, nil
	}
	return cache.Hit{}, cache.ErrNotFound
}

func (m memCache) Lookup(key string) (cache.Hit, bool) {
	meta, ok := m[key]
	if !ok {
		return cache.Hit{}, false
	}
	return cache.Hit{Tier: cache.TierMemory, Meta: meta, Body: body[:meta.Size]}, true
}

func (m memCache) Purge(string) int { return 0 }

// testKeys is the control plane's private key file; servers get its
// public keys.
func testKeys(tb testing.TB) *auth.Keys {
	tb.Helper()
	keys, err := auth.ParseKeys(strings.NewReader("k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"))
	if err != nil {
		tb.Fatal(err)
	}
	return keys
}

func newTestServer(tb testing.TB) (*Server, string) { return newTestServerWith(tb, Config{}) }

// newTestServerWith is newTestServer with cfg.
func newTestServerWith(tb testing.TB, cfg Config) (*Server, string) {
	keys := testKeys(tb)
	seg := &cache.Meta{Size: int64(len(body)), ETag: `"e1"`, CacheControl: "public, max-age=31536000, immutable", LastModified: "Thu, 26 Nov 2026 00:00:00 GMT"}
	c := memCache{"t1/720p/seg-00001.m4s": seg, "t2/720p/seg-00001.m4s": seg}
	s, err := New(cfg, Deps{Cache: c, Keys: keys.Public(), AdminToken: "adm"})
	if err != nil {
		tb.Fatal(err)
	}
	return s, keys.SignPath("t1", time.Now().Add(time.Hour), netip.Prefix{}) + "/720p/seg-00001.m4s"
}

func TestParseContentPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path                      string
		token, title, object, key string
		ok                        bool
	}{
		{"/c/tok/t1/720p/seg-00001.m4s", "tok", "t1", "720p/seg-00001.m4s", "t1/720p/seg-00001.m4s", true},
		{"/c/tok/t1/master.m3u8", "tok", "t1", "master.m3u8", "t1/master.m3u8", true},
		{"/c/tok/t1", "", "", "", "", false},
		{"/c/tok/t1/", "", "", "", "", false},
		{"/c//t1/a.m4s", "", "", "", "", false},
		{"/c/tok//a.m4s", "", "", "", "", false},
		{"/c/tok/t1/../a.m4s", "", "", "", "", false},
		{"/c/tok/t1/./a.m4s", "", "", "", "", false},
		{"/c/tok/t1/a%2f.m4s", "", "", "", "", false},
		{"/c/tok/t%31/a.m4s", "", "", "", "", false},
		{"/c/tok/-t1/a.m4s", "", "", "", "", false},
		{"/c/tok/t1/.tmp-a.m4s-123", "", "", "", "", false},
		{"/c/tok/t1/720p/.hidden/a.m4s", "", "", "", "", false},
		{"/f/t1/720p/seg-00001.m4s", "", "t1", "720p/seg-00001.m4s", "t1/720p/seg-00001.m4s", true},
		{"/f/t1/master.m3u8", "", "t1", "master.m3u8", "t1/master.m3u8", true},
		{"/f/t1", "", "", "", "", false},
		{"/f//a.m4s", "", "", "", "", false},
		{"/f/t1/.tmp-a.m4s-1", "", "", "", "", false},
		{"/f/t1/a/../b", "", "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			token, title, object, key, err := parseContentPath([]byte(tt.path))
			if (err == nil) != tt.ok || token != tt.token || title != tt.title || object != tt.object || key != tt.key {
				t.Errorf("parseContentPath(%q) = %q %q %q %q %v; want %q %q %q %q ok=%v",
					tt.path, token, title, object, key, err, tt.token, tt.title, tt.object, tt.key, tt.ok)
			}
		})
	}
}

func FuzzContentPath(f *testing.F) {
	for _, p := range []string{"/c/tok/t1/720p/seg-00001.m4s", "/c/a/b/../../x", "/c/t/t1/a//b", "/c/x", "/f/t1/a.m4s", "/f/t1/.x/a"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !strings.HasPrefix(p, "/c/") && !strings.HasPrefix(p, "/f/") {
			return
		}
		_, title, object, key, err := parseContentPath([]byte(p))
		if err != nil {
			return
		}
		if key != title+"/"+object {
			t.Fatalf("key %q is not title/object", key)
		}
		for _, seg := range strings.Split(key, "/") {
			if seg == "" || seg[0] == '.' || strings.ContainsAny(seg, "\\%\x00") {
				t.Fatalf("accepted unsafe path %q", p)
			}
		}
	})
}

func request(ctx *fasthttp.RequestCtx, path string) {
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.Request.SetRequestURI(path)
	ctx.Request.Header.SetMethod(fasthttp.MethodGet)
}

// BenchmarkMemoryHit measures the handler for a 1.5 MB memory-tier hit
// (token check, lookup, headers; the body is not copied).
func BenchmarkMemoryHit(b *testing.B) {
	s, path := newTestServer(b)
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		request(&ctx, path)
		s.Handle(&ctx)
	}
}

func BenchmarkMemoryHitRange(b *testing.B) {
	s, path := newTestServer(b)
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		request(&ctx, path)
		ctx.Request.Header.Set("Range", "bytes=1000-65535")
		s.Handle(&ctx)
	}
}
