package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast/appliance/accesslog"
	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/fillcast/fillcast/appliance/latency"
	"github.com/fillcast/fillcast/internal/clocktest"
	"github.com/valyala/fasthttp"
)

// slowCache holds whole objects in memory, as the memory tier does,
// but its every Get takes delay on clock, fails as told for the keys in
// fail, and is remembered.
type slowCache struct {
	objects map[string][]byte
	clock   *clocktest.Clock
	delay   time.Duration
	fail    map[string]error

	mu   sync.Mutex
	keys []string
}

func (c *slowCache) Get(_ context.Context, key string) (cache.Hit, error) {
	c.clock.Advance(c.delay)
	c.mu.Lock()
	c.keys = append(c.keys, key)
	c.mu.Unlock()
	if err := c.fail[key]; err != nil {
		return cache.Hit{}, err
	}
	if h, ok := c.Lookup(key); ok {
		return h, nil
	}
	return cache.Hit{}, cache.ErrNotFound
}

func (c *slowCache) Lookup(key string) (cache.Hit, bool) {
	b, ok := c.objects[key]
	if !ok {
		return cache.Hit{}, false
	}
	return cache.Hit{Tier: cache.TierMemory, Meta: &cache.Meta{Size: int64(len(b)), ETag: `"e1"`, CacheControl: "max-age=60"}, Body: b}, true
}

func (c *slowCache) Purge(string) int { return 0 }

const masterPlaylist = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720,CODECS=\"avc1.64001f,mp4a.40.2\"\n720p/index.m3u8\n"

// logBuffer is an access log's writer that a test reads.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// lines returns the lines written, decoded.
func (b *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSuffix(b.b.String(), "\n"), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("access-log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

const (
	traceHex    = "4bf92f3577b34da6a3ce929d0e0e4736"
	traceparent = "00-" + traceHex + "-00f067aa0ba902b7-01"
	otherHex    = "0af7651916cd43dd8448eb211c80319c"
	otherParent = "00-" + otherHex + "-b7ad6b7169203331-01"
)

// newObservedServer is a server over a slowCache of the test segment,
// with a fake clock and an access log into the returned buffer.
func newObservedServer(t *testing.T, delay time.Duration) (*Server, *slowCache, *logBuffer, *accesslog.Log) {
	t.Helper()
	clk := clocktest.New(time.Now())
	c := &slowCache{clock: clk, delay: delay,
		objects: map[string][]byte{"t1/720p/seg-00001.m4s": make([]byte, 1000), "t1/master.m3u8": []byte(masterPlaylist)},
		fail:    map[string]error{"t1/720p/broken.m4s": errors.New("origin answered 500"), "t1/720p/closing.m4s": cache.ErrClosed}}
	var buf logBuffer
	al, err := accesslog.New(accesslog.Config{}, accesslog.Deps{W: &buf})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{}, Deps{Cache: c, Keys: testKeys(t).Public(), Now: clk.Now, AccessLog: al})
	if err != nil {
		t.Fatal(err)
	}
	return s, c, &buf, al
}

// TestObserve: every content answer, whatever its status, is timed from
// the handler's start to its return and counted, and the 5xx among them
// but a peer's 504 count as failures; admin paths are not counted.
func TestObserve(t *testing.T) {
	t.Parallel()
	const delay = 30 * time.Millisecond
	keys := testKeys(t)
	tok := keys.SignPath("t1", time.Now().Add(time.Hour), netip.Prefix{})
	pass, err := keys.SignFillPass("a2", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		path          string
		headers       []string
		status        int
		counted, fail bool
		took          time.Duration // with counted
	}{
		{name: "hit", path: tok + "/720p/seg-00001.m4s", status: 200, counted: true, took: delay},
		{name: "not found", path: tok + "/720p/seg-00009.m4s", status: 404, counted: true, took: delay},
		{name: "forbidden", path: "/c/forged/t1/720p/seg-00001.m4s", status: 403, counted: true},
		{name: "bad path", path: tok + "/../x", status: 400, counted: true},
		{name: "upstream failed", path: tok + "/720p/broken.m4s", status: 502, counted: true, fail: true, took: delay},
		{name: "shutting down", path: tok + "/720p/closing.m4s", status: 503, counted: true, fail: true, took: delay},
		{name: "peer probe, not cached", path: "/f/t1/720p/seg-00009.m4s", headers: []string{"Authorization", "Bearer " + pass,
			"Cache-Control", "only-if-cached"}, status: 504, counted: true},
		{name: "healthz", path: "/healthz", status: 200},
		{name: "metrics", path: "/metrics", status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _, _ := newObservedServer(t, delay)
			var ctx fasthttp.RequestCtx
			request(&ctx, tt.path)
			for i := 0; i+1 < len(tt.headers); i += 2 {
				ctx.Request.Header.Set(tt.headers[i], tt.headers[i+1])
			}
			s.Handle(&ctx)
			if got := ctx.Response.StatusCode(); got != tt.status {
				t.Fatalf("status %d, want %d", got, tt.status)
			}
			u := s.Usage()
			if got := u.Latency.Count(); got != map[bool]uint64{true: 1}[tt.counted] {
				t.Fatalf("%d answers counted, want counted %v", got, tt.counted)
			}
			if got := u.Failed; got != map[bool]uint64{true: 1}[tt.fail] {
				t.Errorf("%d failures counted, want failed %v", got, tt.fail)
			}
			if tt.counted && u.Latency.Counts[latency.Bucket(tt.took)] != 1 {
				t.Errorf("the answer is not in the bucket of %v: %v", tt.took, u.Latency.Counts)
			}
		})
	}
}

// TestObserveP99: the p99 of a server's answers follows a cache that
// slows down, interval by interval.
func TestObserveP99(t *testing.T) {
	t.Parallel()
	s, c, _, _ := newObservedServer(t, 200*time.Microsecond)
	path := testKeys(t).SignPath("t1", time.Now().Add(time.Hour), netip.Prefix{}) + "/720p/seg-00001.m4s"
	serve := func(n int) {
		var ctx fasthttp.RequestCtx
		for range n {
			request(&ctx, path)
			s.Handle(&ctx)
		}
	}
	serve(1000)
	first := s.Usage().Latency
	c.delay = 80 * time.Millisecond
	serve(1000)
	second := s.Usage().Latency.Sub(first)
	tests := []struct {
		name string
		s    latency.Snapshot
		want time.Duration
	}{
		{"fast interval", first, 200 * time.Microsecond},
		{"slow interval", second, 80 * time.Millisecond},
	}
	for _, tt := range tests {
		lo, hi := latency.Bounds(latency.Bucket(tt.want))
		if got := tt.s.Quantile(0.99); got < lo || got > hi || tt.s.Count() != 1000 {
			t.Errorf("%s: %d answers, p99 %v, want 1000 and p99 in [%v, %v]", tt.name, tt.s.Count(), got, lo, hi)
		}
	}
}

func TestTraceID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		query  string
		header string
		want   string
	}{
		{"none", "", "", ""},
		{"query", "?traceparent=" + traceparent, "", traceHex},
		{"query among others", "?CMCD=br%3D3200&traceparent=" + traceparent + "&x=1", "", traceHex},
		{"header", "", traceparent, traceHex},
		{"header before query", "?traceparent=" + otherParent, traceparent, traceHex},
		{"bad header, good query", "?traceparent=" + otherParent, "00-" + strings.ToUpper(traceHex) + "-00f067aa0ba902b7-01", otherHex},
		{"bad query", "?traceparent=00-00000000000000000000000000000000-00f067aa0ba902b7-01", "", ""},
		{"another parameter's value", "?x=traceparent=" + traceparent, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			request(&ctx, "/c/tok/t1/master.m3u8"+tt.query)
			if tt.header != "" {
				ctx.Request.Header.Set("traceparent", tt.header)
			}
			if got := traceID(&ctx); got != tt.want {
				t.Errorf("traceID = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestTraceparentChangesNothingServed: a playback URL with a traceparent
// query parameter is served from the same cache entry, past the same
// token check, as the URL without it, manifests included, and its
// access-log line carries its trace id; the token never reaches the log.
func TestTraceparentChangesNothingServed(t *testing.T) {
	t.Parallel()
	s, c, buf, al := newObservedServer(t, 0)
	s.cfg.SteeringURL = "https://cp.example" // master playlists are made for the player
	tok := testKeys(t).SignPath("t1", time.Now().Add(time.Hour), netip.Prefix{})
	client := &net.TCPAddr{IP: net.IPv4(203, 0, 113, 9), Port: 5000}
	type answer struct {
		status       int
		body, etag   string
		cacheControl string
	}
	get := func(path string, hdr ...string) answer {
		var ctx fasthttp.RequestCtx
		ctx.SetRemoteAddr(client)
		request(&ctx, path)
		for i := 0; i+1 < len(hdr); i += 2 {
			ctx.Request.Header.Set(hdr[i], hdr[i+1])
		}
		s.Handle(&ctx)
		return answer{ctx.Response.StatusCode(), string(ctx.Response.Body()), string(ctx.Response.Header.Peek("ETag")),
			string(ctx.Response.Header.Peek("Cache-Control"))}
	}
	for _, object := range []string{"/720p/seg-00001.m4s", "/master.m3u8"} {
		plain := get(tok + object)
		if plain.status != 200 {
			t.Fatalf("%s: status %d", object, plain.status)
		}
		if object == "/master.m3u8" && !strings.Contains(plain.body, "#EXT-X-CONTENT-STEERING") {
			t.Fatalf("the master playlist was not made for the player:\n%s", plain.body)
		}
		for _, tt := range []struct {
			name, query string
			hdr         []string
		}{
			{"query", "?traceparent=" + traceparent, nil},
			{"query after CMCD", "?CMCD=br%3D3200&traceparent=" + traceparent, nil},
			{"header", "", []string{"traceparent", traceparent}},
		} {
			if got := get(tok+object+tt.query, tt.hdr...); got != plain {
				t.Errorf("%s with traceparent in the %s: %+v, want as without %+v", object, tt.name, got, plain)
			}
		}
	}
	want := []string{"t1/720p/seg-00001.m4s", "t1/master.m3u8"}
	c.mu.Lock()
	for i, k := range c.keys {
		if k != want[i/4] {
			t.Errorf("cache asked for %q, want %q", k, want[i/4])
		}
	}
	c.mu.Unlock()

	if err := al.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := buf.lines(t)
	if len(lines) != 8 {
		t.Fatalf("%d access-log lines, want 8", len(lines))
	}
	for i, l := range lines {
		wantTrace := traceHex
		if i%4 == 0 {
			wantTrace = ""
		}
		if got, _ := l["trace_id"].(string); got != wantTrace {
			t.Errorf("line %d: trace_id %q, want %q", i, got, wantTrace)
		}
		if p, _ := l["path"].(string); !strings.HasPrefix(p, "/c/-/t1/") || l["status"] != 200.0 || l["client"] != "203.0.113.9" || l["method"] != "GET" {
			t.Errorf("line %d: %v", i, l)
		}
	}
	if strings.Contains(buf.String(), strings.Split(tok, "/")[2]) {
		t.Error("the token is in the access log")
	}
}

// BenchmarkMemoryHitAccessLog is BenchmarkMemoryHit with the access log
// on and a traceparent in the query, as the control plane's playback
// URLs carry it: the cost of --access-log per request (a discarding
// writer, flushed in line every 256 lines).
func BenchmarkMemoryHitAccessLog(b *testing.B) {
	s, path := newTestServer(b)
	al, err := accesslog.New(accesslog.Config{}, accesslog.Deps{W: discardWriter{}})
	if err != nil {
		b.Fatal(err)
	}
	s.d.AccessLog = al
	path += "?traceparent=" + traceparent
	var ctx fasthttp.RequestCtx
	ctx.SetRemoteAddr(&net.TCPAddr{IP: net.IPv4(203, 0, 113, 9), Port: 5000})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		request(&ctx, path)
		s.Handle(&ctx)
		if i%256 == 255 {
			al.Flush()
		}
	}
}

// BenchmarkMemoryHitServed is BenchmarkMemoryHit as fasthttp and the h3
// adapter run the handler: with the request's time already read
// (RequestCtx.Time), so that timing the answer costs the handler one
// read of the monotonic clock, where BenchmarkMemoryHit pays two of
// the wall clock and one of the monotonic.
func BenchmarkMemoryHitServed(b *testing.B) {
	s, path := newTestServer(b)
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, nil, nil) // as fasthttp does for each request
	b.ReportAllocs()
	for b.Loop() {
		request(&ctx, path)
		s.Handle(&ctx)
	}
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
