package appliance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/fillcast/fillcast/origin"
)

const testKeys = "k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"

func keys(t testing.TB) *auth.Keys {
	k, err := auth.ParseKeys(strings.NewReader(testKeys))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testOrigin is a real origin server on loopback over a temp directory.
type testOrigin struct {
	root string
	srv  *httptest.Server
}

func startOrigin(t *testing.T) *testOrigin {
	t.Helper()
	root := t.TempDir()
	cfg := origin.DefaultConfig()
	cfg.Root = root
	o, err := origin.New(cfg, origin.Deps{AdminToken: "adm", Keys: keys(t), Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(o)
	t.Cleanup(func() { srv.Close(); o.Close() })
	return &testOrigin{root: root, srv: srv}
}

func (o *testOrigin) put(t *testing.T, path string, b []byte) {
	t.Helper()
	p := filepath.Join(o.root, path)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// testAppliance is a real appliance serving on a loopback port.
type testAppliance struct {
	*Appliance
	url  string
	stop func()
}

func startAppliance(t *testing.T, dir string, mem int64, upstreams ...string) *testAppliance {
	return startApplianceWith(t, dir, mem, upstreams, nil)
}

func startApplianceWith(t *testing.T, dir string, mem int64, upstreams []string, tweak func(*Config)) *testAppliance {
	t.Helper()
	cfg := DefaultConfig()
	cfg.ID, cfg.Site = "a1", "s1"
	cfg.Cache.Dir, cfg.Cache.DiskBytes, cfg.Cache.MemBytes = dir, 256<<20, mem
	cfg.Upstream.URLs = upstreams
	cfg.Upstream.IdleTimeout = 2 * time.Second
	if tweak != nil {
		tweak(&cfg)
	}
	return startApplianceDeps(t, cfg, Deps{Keys: keys(t), AdminToken: "adm", Log: quiet()})
}

// startApplianceDeps serves an appliance of cfg and d on a loopback port
// until the test ends.
func startApplianceDeps(t *testing.T, cfg Config, d Deps) *testAppliance {
	t.Helper()
	a, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Serve(ctx, ln); close(done) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return &testAppliance{Appliance: a, url: "http://" + ln.Addr().String(), stop: stop}
}

func signed(t testing.TB, title string) string {
	return keys(t).SignPath(title, time.Now().Add(time.Hour), netip.Prefix{})
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	return do(t, http.MethodGet, url, nil, hdr...)
}

func do(t *testing.T, method, url string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, b
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestHTTPSemantics(t *testing.T) {
	t.Parallel()
	o := startOrigin(t)
	seg := randBytes(1_500_000)
	o.put(t, "t1/720p/seg-00001.m4s", seg)
	o.put(t, "t1/master.m3u8", []byte("#EXTM3U\n"))
	o.put(t, "t1/manifest.mpd", []byte("<MPD/>"))
	o.put(t, "t1/download/720p.mp4", []byte("mp4"))
	a := startAppliance(t, t.TempDir(), 64<<20, o.srv.URL)
	base := a.url + signed(t, "t1")

	// Fill once so the rest exercises hits; the ETag comes from the origin.
	resp, body := get(t, base+"/720p/seg-00001.m4s")
	if resp.StatusCode != 200 || !bytes.Equal(body, seg) {
		t.Fatalf("first GET: %d, %d bytes", resp.StatusCode, len(body))
	}
	etag := resp.Header.Get("ETag")
	lastMod := resp.Header.Get("Last-Modified")
	if etag == "" || lastMod == "" {
		t.Fatalf("missing validators: ETag %q Last-Modified %q", etag, lastMod)
	}

	tests := []struct {
		name       string
		method     string
		path       string
		hdr        []string
		wantCode   int
		wantBody   []byte
		wantHeader map[string]string
	}{
		{"full", "GET", "/720p/seg-00001.m4s", nil, 200, seg, map[string]string{
			"Content-Type": "video/iso.segment", "Accept-Ranges": "bytes", "Access-Control-Allow-Origin": "*",
			"Cache-Control": "public, max-age=31536000, immutable", "Content-Length": "1500000"}},
		{"cors expose", "GET", "/720p/seg-00001.m4s", nil, 200, nil, map[string]string{
			"Access-Control-Expose-Headers": "Content-Length, Content-Range, ETag"}},
		{"range", "GET", "/720p/seg-00001.m4s", []string{"Range", "bytes=100-199"}, 206, seg[100:200], map[string]string{
			"Content-Range": "bytes 100-199/1500000", "Content-Length": "100"}},
		{"suffix range", "GET", "/720p/seg-00001.m4s", []string{"Range", "bytes=-10"}, 206, seg[len(seg)-10:], nil},
		{"open range", "GET", "/720p/seg-00001.m4s", []string{"Range", "bytes=1499990-"}, 206, seg[1499990:], nil},
		{"unsatisfiable", "GET", "/720p/seg-00001.m4s", []string{"Range", "bytes=2000000-"}, 416, nil, map[string]string{
			"Content-Range": "bytes */1500000"}},
		{"malformed range", "GET", "/720p/seg-00001.m4s", []string{"Range", "bytes=x-y"}, 416, nil, nil},
		{"multi range served whole", "GET", "/720p/seg-00001.m4s", []string{"Range", "bytes=0-1,5-6"}, 200, seg, nil},
		{"if-range match", "GET", "/720p/seg-00001.m4s", []string{"Range", "bytes=0-9", "If-Range", etag}, 206, seg[:10], nil},
		{"if-range stale", "GET", "/720p/seg-00001.m4s", []string{"Range", "bytes=0-9", "If-Range", `"old"`}, 200, seg, nil},
		{"if-none-match", "GET", "/720p/seg-00001.m4s", []string{"If-None-Match", etag}, 304, []byte{}, map[string]string{"ETag": etag}},
		{"if-none-match list", "GET", "/720p/seg-00001.m4s", []string{"If-None-Match", `"a", ` + etag}, 304, []byte{}, nil},
		{"if-none-match star", "GET", "/720p/seg-00001.m4s", []string{"If-None-Match", "*"}, 304, []byte{}, nil},
		{"if-none-match other", "GET", "/720p/seg-00001.m4s", []string{"If-None-Match", `"other"`}, 200, seg, nil},
		{"if-modified-since", "GET", "/720p/seg-00001.m4s", []string{"If-Modified-Since", lastMod}, 304, []byte{}, nil},
		{"if-modified-since old", "GET", "/720p/seg-00001.m4s", []string{"If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT"}, 200, seg, nil},
		{"head", "HEAD", "/720p/seg-00001.m4s", nil, 200, []byte{}, map[string]string{"Content-Length": "1500000"}},
		{"playlist type", "GET", "/master.m3u8", nil, 200, []byte("#EXTM3U\n"), map[string]string{
			"Content-Type": "application/vnd.apple.mpegurl", "Cache-Control": "public, max-age=60"}},
		{"mpd type", "GET", "/manifest.mpd", nil, 200, nil, map[string]string{"Content-Type": "application/dash+xml"}},
		{"mp4 type", "GET", "/download/720p.mp4", nil, 200, nil, map[string]string{"Content-Type": "video/mp4"}},
		{"not found", "GET", "/720p/seg-09999.m4s", nil, 404, nil, nil},
		{"post refused", "POST", "/master.m3u8", nil, 405, nil, map[string]string{"Allow": "GET, HEAD, OPTIONS"}},
		{"preflight", "OPTIONS", "/master.m3u8", nil, 204, nil, map[string]string{"Access-Control-Allow-Origin": "*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := do(t, tt.method, base+tt.path, nil, tt.hdr...)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status = %d, want %d (body %q)", resp.StatusCode, tt.wantCode, trim(body))
			}
			if tt.wantBody != nil && !bytes.Equal(body, tt.wantBody) {
				t.Errorf("body: got %d bytes, want %d", len(body), len(tt.wantBody))
			}
			for k, v := range tt.wantHeader {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func trim(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

func TestPurge(t *testing.T) {
	t.Parallel()
	o := startOrigin(t)
	o.put(t, "t1/720p/seg-00001.m4s", []byte("one"))
	o.put(t, "t1/480p/seg-00001.m4s", []byte("two"))
	a := startAppliance(t, t.TempDir(), 0, o.srv.URL)
	base := a.url + signed(t, "t1")
	get(t, base+"/720p/seg-00001.m4s")
	get(t, base+"/480p/seg-00001.m4s")
	poll.Until(t, 10*time.Second, "2 objects on disk", func() bool { return a.Status().(Status).Disk.Objects == 2 })

	tests := []struct {
		name, auth, body string
		want             int
	}{
		{"no auth", "", `{"title":"t1"}`, 401},
		{"wrong auth", "Bearer nope", `{"title":"t1"}`, 401},
		{"bad json", "Bearer adm", `{`, 400},
		{"empty", "Bearer adm", `{}`, 400},
		{"bad title", "Bearer adm", `{"title":"../x"}`, 400},
		{"both", "Bearer adm", `{"title":"t1","prefix":"t1/720p/"}`, 400},
		{"prefix", "Bearer adm", `{"prefix":"t1/720p/"}`, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, "POST", a.url+"/admin/purge", strings.NewReader(tt.body), "Authorization", tt.auth)
			if resp.StatusCode != tt.want {
				t.Errorf("purge %s = %d, want %d (%s)", tt.body, resp.StatusCode, tt.want, body)
			}
		})
	}
	if s := a.Status().(Status); s.Disk.Objects != 1 {
		t.Errorf("objects after purging t1/720p/ = %d, want 1", s.Disk.Objects)
	}
	resp, body := do(t, "POST", a.url+"/admin/purge", strings.NewReader(`{"title":"t1"}`), "Authorization", "Bearer adm")
	var pr struct{ Purged int }
	json.Unmarshal(body, &pr)
	if resp.StatusCode != 200 || pr.Purged != 1 {
		t.Errorf("purge title: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, base+"/720p/seg-00001.m4s"); resp.Header.Get("X-Cache") != "MISS" {
		t.Errorf("after purge X-Cache = %q, want MISS", resp.Header.Get("X-Cache"))
	}
}

func TestRestartServesWhileOriginDown(t *testing.T) {
	t.Parallel()
	o := startOrigin(t)
	seg := randBytes(500_000)
	o.put(t, "t1/720p/seg-00001.m4s", seg)
	dir := t.TempDir()
	a := startAppliance(t, dir, 0, o.srv.URL)
	path := signed(t, "t1") + "/720p/seg-00001.m4s"
	if resp, _ := get(t, a.url+path); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	poll.Until(t, 10*time.Second, "the object on disk", func() bool { return a.Status().(Status).Disk.Objects == 1 })
	a.stop()
	o.srv.Close()

	b := startAppliance(t, dir, 0, o.srv.URL)
	resp, body := get(t, b.url+path)
	if resp.StatusCode != 200 || !bytes.Equal(body, seg) || resp.Header.Get("X-Cache") != "HIT-disk" {
		t.Errorf("after restart with origin down: %d, X-Cache %q, equal %v", resp.StatusCode, resp.Header.Get("X-Cache"), bytes.Equal(body, seg))
	}
	if resp, _ := get(t, b.url+signed(t, "t1")+"/720p/seg-00002.m4s"); resp.StatusCode != 502 {
		t.Errorf("uncached object with origin down = %d, want 502", resp.StatusCode)
	}
}

func TestMetricsAndStatus(t *testing.T) {
	t.Parallel()
	o := startOrigin(t)
	o.put(t, "t1/master.m3u8", []byte("#EXTM3U\n"))
	a := startAppliance(t, t.TempDir(), 16<<20, o.srv.URL)
	get(t, a.url+signed(t, "t1")+"/master.m3u8")
	get(t, a.url+"/c/bad/t1/master.m3u8")
	_, body := get(t, a.url+"/metrics")
	for _, want := range []string{
		`fillcast_appliance_requests_total{code="200"} 1`,
		`fillcast_appliance_requests_total{code="403"} 1`,
		`fillcast_appliance_misses_total 1`,
		`fillcast_appliance_upstream_fetches_total{upstream="` + o.srv.URL + `"} 1`,
		`fillcast_appliance_cache_capacity_bytes{tier="disk"}`,
		`fillcast_appliance_token_rejects_total 1`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	resp, body := get(t, a.url+"/v1/status", "Authorization", "Bearer adm")
	var st Status
	if err := json.Unmarshal(body, &st); err != nil || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("/v1/status: %v %s", err, body)
	}
	if st.ID != "a1" || st.Misses != 1 || st.Disk.CapacityBytes != 256<<20 || len(st.Upstreams) != 1 {
		t.Errorf("status = %+v", st)
	}
	if resp, body := get(t, a.url+"/healthz"); resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("/healthz = %d %q", resp.StatusCode, body)
	}
}

func TestTierFillFromPeerThenOrigin(t *testing.T) {
	t.Parallel()
	o := startOrigin(t)
	seg := randBytes(200_000)
	o.put(t, "t1/720p/seg-00001.m4s", seg)
	o.put(t, "t1/720p/seg-00002.m4s", seg[:1000])
	peer := startAppliance(t, t.TempDir(), 0, o.srv.URL)
	path := signed(t, "t1") + "/720p/seg-00001.m4s"
	get(t, peer.url+path) // the peer holds seg-00001 only

	a := startAppliance(t, t.TempDir(), 0, peer.url, o.srv.URL)
	resp, body := get(t, a.url+path)
	if resp.StatusCode != 200 || !bytes.Equal(body, seg) {
		t.Fatalf("tier fill: %d", resp.StatusCode)
	}
	resp, _ = get(t, a.url+signed(t, "t1")+"/720p/seg-00002.m4s")
	if resp.StatusCode != 200 {
		t.Fatalf("fill past a peer that lacks the object: %d", resp.StatusCode)
	}
	st := a.Status().(Status)
	if st.Upstreams[0].Fetches != 2 || st.Upstreams[1].Fetches != 1 {
		t.Errorf("fetches peer=%d origin=%d, want 2 and 1", st.Upstreams[0].Fetches, st.Upstreams[1].Fetches)
	}
	// The peer answered the second from cache only: it did not fill it.
	if ps := peer.Status().(Status); ps.Misses != 1 {
		t.Errorf("peer misses = %d, want 1 (only-if-cached must not fill)", ps.Misses)
	}
	// A dead peer is skipped.
	peer.stop()
	resp, _ = get(t, a.url+signed(t, "t1")+"/720p/seg-00002.m4s?x=1")
	if resp.StatusCode != 200 {
		t.Errorf("with the peer dead: %d", resp.StatusCode)
	}
}

// cuttingOrigin sends half of a body it declared whole, then drops the
// connection: an upstream dying mid-body.
func cuttingOrigin(t *testing.T, size int) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		w.Header().Set("ETag", `"x"`)
		w.WriteHeader(200)
		w.Write(make([]byte, size/2))
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestUpstreamDiesMidBody(t *testing.T) {
	t.Parallel()
	up := cuttingOrigin(t, 1_000_000)
	a := startAppliance(t, t.TempDir(), 16<<20, up.URL)
	req, _ := http.NewRequest("GET", a.url+signed(t, "t1")+"/720p/seg-00001.m4s", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || len(b) >= 1_000_000 {
		t.Errorf("client got %d bytes and err %v; want a short body and an error", len(b), err)
	}
	poll.Until(t, 10*time.Second, "the fill to end", func() bool { return a.Status().(Status).Fills.InFlight == 0 })
	if st := a.Status().(Status); st.Disk.Objects != 0 || st.Fills.Errors != 1 {
		t.Errorf("after a truncated fill: %d objects, %d fill errors; want 0 and 1", st.Disk.Objects, st.Fills.Errors)
	}
}
