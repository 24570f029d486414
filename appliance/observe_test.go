package appliance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/client/clienttest"
	"github.com/fillcast/fillcast/internal/poll"
)

// slowOrigin is an origin whose /f/{title}/slow-* objects take delay to
// start answering and whose /f/{title}/fail-* answer 500; the rest are
// 1000 bytes at once.
func slowOrigin(t *testing.T, delay time.Duration) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := filepath.Base(r.URL.Path)
		switch {
		case strings.HasPrefix(name, "fail-"):
			http.Error(w, "origin broke", http.StatusInternalServerError)
			return
		case strings.HasPrefix(name, "slow-"):
			time.Sleep(delay) // the injected slowness, not a wait for anything
		}
		w.Header().Set("Content-Length", "1000")
		w.Write(make([]byte, 1000))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// beatTotals sums what the accepted heartbeats say of the requests.
type beatTotals struct {
	requests, failed uint64
	maxP99           float64
}

func sumBeats(t *testing.T, beats []fillcast.Heartbeat) beatTotals {
	t.Helper()
	var s beatTotals
	for _, hb := range beats {
		if hb.ErrorRatio < 0 || hb.ErrorRatio > 1 || hb.P99Millis < 0 || (hb.Requests == 0 && (hb.P99Millis != 0 || hb.ErrorRatio != 0)) {
			t.Fatalf("heartbeat with requests %d, p99 %v ms, error ratio %v", hb.Requests, hb.P99Millis, hb.ErrorRatio)
		}
		s.requests += hb.Requests
		s.failed += uint64(math.Round(hb.ErrorRatio * float64(hb.Requests)))
		s.maxP99 = max(s.maxP99, hb.P99Millis)
	}
	return s
}

// TestHeartbeatP99AndErrorRatio: the heartbeats' p99 and error ratio
// follow what players meet, over HTTP/1.1 and HTTP/3 alike: misses to an
// origin that takes 40 ms to answer raise the p99 over 30 ms, and misses
// it answers 500 (502 to the player) raise the error ratio; every
// content request counts in an accepted heartbeat (a request the client
// sends again on a connection that broke under it counts again).
func TestHeartbeatP99AndErrorRatio(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 1)
	ks, err := auth.NewKeys(cl.Keys())
	if err != nil {
		t.Fatal(err)
	}
	cred, err := ks.SignCredential("a1")
	if err != nil {
		t.Fatal(err)
	}
	o := slowOrigin(t, 40*time.Millisecond)
	base, h1, h3c := startH3WithControlPlane(t, o.URL, cl, Deps{Keys: ks.Public(), Credential: cred, Log: quiet()})
	tok := ks.SignPath("t1", time.Now().Add(time.Hour), netip.Prefix{})
	node := cl.Nodes()[0]
	clients := []*http.Client{h1, h3c}
	sent := uint64(0)
	get := func(i int, object string, want int) {
		t.Helper()
		resp, _ := fetch(t, clients[i%2], "GET", base+tok+"/"+object)
		if resp.StatusCode != want {
			t.Fatalf("GET %s: %d, want %d", object, resp.StatusCode, want)
		}
		sent++
	}

	for i := range 6 {
		get(i, "720p/fast-"+fmt.Sprint(i)+".m4s", 200)
	}
	poll.Until(t, 30*time.Second, "the fast requests in the heartbeats", func() bool { return sumBeats(t, node.Heartbeats()).requests >= sent })
	if s := sumBeats(t, node.Heartbeats()); s.failed != 0 {
		t.Fatalf("fast misses only: heartbeats say %d failed", s.failed)
	}

	seen := len(node.Heartbeats())
	for i := range 6 {
		get(i, "720p/slow-"+fmt.Sprint(i)+".m4s", 200)
	}
	poll.Until(t, 30*time.Second, "the slow requests in the heartbeats", func() bool { return sumBeats(t, node.Heartbeats()[seen:]).requests >= 6 })
	slow := sumBeats(t, node.Heartbeats()[seen:])
	if slow.maxP99 < 30 || slow.failed != 0 {
		t.Errorf("40 ms misses: heartbeats say p99 up to %v ms and %d failed, want at least 30 ms and none", slow.maxP99, slow.failed)
	}

	seen = len(node.Heartbeats())
	for i := range 4 {
		get(i, "720p/fail-"+fmt.Sprint(i)+".m4s", 502)
	}
	for i := range 4 { // hits, now: the error ratio is a share
		get(i, "720p/fast-"+fmt.Sprint(i)+".m4s", 200)
	}
	// Counted since seen, until the 4 failures and the 4 hits are all in
	// (a request the client sent again counts again, so the totals can
	// run ahead of what was sent; the hits never count as failures).
	var failing beatTotals
	ok := poll.Wait(30*time.Second, func() bool {
		failing = sumBeats(t, node.Heartbeats()[seen:])
		return failing.failed >= 4 && failing.requests-failing.failed >= 4
	})
	if !ok {
		t.Errorf("4 failures in 8 requests: heartbeats say %d in %d", failing.failed, failing.requests)
	}
}

// TestAccessLogTraceID: with an access log, a playback URL carrying a
// traceparent query parameter (or header) is served from the cache
// entry the URL without it filled, and its line carries the trace id.
func TestAccessLogTraceID(t *testing.T) {
	t.Parallel()
	o := startOrigin(t)
	seg := bytes.Repeat([]byte("s"), 5000)
	o.put(t, "t1/720p/seg-00001.m4s", seg)
	logFile := filepath.Join(t.TempDir(), "access.log")
	a := startApplianceWith(t, t.TempDir(), 16<<20, []string{o.srv.URL}, func(c *Config) { c.AccessLog = logFile })
	const (
		traceHex    = "4bf92f3577b34da6a3ce929d0e0e4736"
		traceparent = "00-" + traceHex + "-00f067aa0ba902b7-01"
	)
	url := a.url + signed(t, "t1") + "/720p/seg-00001.m4s"
	tests := []struct {
		name, query string
		hdr         []string
		cache       string
		trace       string
	}{
		{"first, without", "", nil, "MISS", ""},
		{"traceparent in the query", "?traceparent=" + traceparent, nil, "HIT-memory", traceHex},
		{"traceparent header", "", []string{"traceparent", traceparent}, "HIT-memory", traceHex},
		{"without", "", nil, "HIT-memory", ""},
	}
	for i, tt := range tests {
		resp, b := get(t, url+tt.query, tt.hdr...)
		if resp.StatusCode != 200 || !bytes.Equal(b, seg) || resp.Header.Get("X-Cache") != tt.cache {
			t.Fatalf("%s: %d, %d bytes, X-Cache %q; want 200, the segment, %s", tt.name, resp.StatusCode, len(b), resp.Header.Get("X-Cache"), tt.cache)
		}
		if i == 0 {
			// The miss's fill is stored after its answer went out: wait
			// for both tiers to hold it.
			poll.Until(t, 30*time.Second, "the segment stored in memory and on disk", func() bool {
				st := a.cache.Stats()
				return st.DiskObjects == 1 && st.MemUsed >= int64(len(seg))
			})
		}
	}
	var lines []string
	poll.Until(t, 30*time.Second, "the access log's lines in the file", func() bool {
		b, _ := os.ReadFile(logFile)
		lines = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		return len(lines) == len(tests)
	})
	for i, tt := range tests {
		var l struct {
			Path    string `json:"path"`
			Status  int    `json:"status"`
			Bytes   int    `json:"bytes"`
			Cache   string `json:"cache"`
			TraceID string `json:"trace_id"`
			Client  string `json:"client"`
		}
		if err := json.Unmarshal([]byte(lines[i]), &l); err != nil {
			t.Fatalf("line %q: %v", lines[i], err)
		}
		if l.Path != "/c/-/t1/720p/seg-00001.m4s" || l.Status != 200 || l.Bytes != len(seg) || l.Cache != tt.cache || l.TraceID != tt.trace || l.Client != "127.0.0.1" {
			t.Errorf("%s: line %q", tt.name, lines[i])
		}
	}
	if _, b := get(t, a.url+"/metrics"); !bytes.Contains(b, []byte("fillcast_appliance_access_log_lines_total 4")) {
		t.Error("/metrics lacks the access log's line count")
	}
}
