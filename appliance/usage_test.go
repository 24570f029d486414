package appliance

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance/h3/h3test"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/client/clienttest"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/fillcast/fillcast/origin"
	"github.com/quic-go/quic-go/http3"
)

// TestUsageReachesTheControlPlane: an appliance serving players over
// HTTP/1.1 and HTTP/3, with CMCD in the query and in the headers, sends
// the control plane its usage summaries with its own credential, and
// within a few intervals the control plane holds every response counted
// per title and rendition, with the players' CMCD summed.
func TestUsageReachesTheControlPlane(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 1)
	ks, err := auth.NewKeys(cl.Keys()) // the control plane's keys sign tokens, passes and the credential
	if err != nil {
		t.Fatal(err)
	}
	cred, err := ks.SignCredential("a1")
	if err != nil {
		t.Fatal(err)
	}
	o := startOriginKeys(t, ks)
	seg := make([]byte, 1000)
	o.put(t, "t1/720p/seg-00001.m4s", seg)
	o.put(t, "t1/720p/seg-00002.m4s", seg)
	o.put(t, "t1/master.m3u8", []byte("#EXTM3U\n"))
	base, h1, h3c := startH3WithControlPlane(t, o.srv.URL, cl, Deps{Keys: ks.Public(), Credential: cred, Log: quiet()})
	// Misses fill once the agent has its fill pass: a title of its own,
	// left out of the comparison, tells when.
	o.put(t, "w0/720p/seg-00001.m4s", seg)
	warm := ks.SignPath("w0", time.Now().Add(time.Hour), netip.Prefix{})
	poll.Until(t, 20*time.Second, "a miss filled", func() bool {
		resp, _ := fetch(t, h1, "GET", base+warm+"/720p/seg-00001.m4s")
		return resp.StatusCode == 200
	})

	tok := ks.SignPath("t1", time.Now().Add(time.Hour), netip.Prefix{})
	query := func(payload string) string { return "?CMCD=" + url.QueryEscape(payload) }
	var master int64
	for _, r := range []struct {
		c            *http.Client
		method, path string
		hdr          []string
		status       int
	}{
		{h1, "GET", tok + "/720p/seg-00001.m4s" + query(`br=3200,bl=21300,mtp=25400,ot=v,sid="s1"`), nil, 200},
		{h3c, "GET", tok + "/720p/seg-00002.m4s", []string{"CMCD-Object", "br=3200,ot=v", "CMCD-Request", "bl=400",
			"CMCD-Session", `sid="s2"`, "CMCD-Status", "bs"}, 200},
		{h3c, "GET", tok + "/720p/seg-00001.m4s" + query(`br=1600,sid="s1"`), []string{"Range", "bytes=0-99"}, 206},
		{h1, "HEAD", tok + "/720p/seg-00001.m4s", nil, 200},
		{h1, "GET", tok + "/720p/seg-00009.m4s" + query("br=x"), nil, 404},
		{h3c, "GET", "/c/forged/t1/720p/seg-00001.m4s", nil, 403},
		{h1, "GET", tok + "/master.m3u8" + query(`ot=m,sid="s1"`), nil, 200},
		{h1, "GET", "/c/" + "x/t1/../secret", nil, 400}, // no title: not counted
	} {
		resp, b := fetch(t, r.c, r.method, base+r.path, r.hdr...)
		if resp.StatusCode != r.status {
			t.Fatalf("%s %s: %d, want %d", r.method, r.path, resp.StatusCode, r.status)
		}
		if strings.Contains(r.path, "master.m3u8") {
			master = int64(len(b)) // what the appliance made of it (the steering tag added)
		}
	}

	want := map[[2]string]fillcast.UsageRow{
		{"t1", "720p"}: {Title: "t1", Rendition: "720p", Requests: 6, Bytes: 2100, Status2xx: 4, Status4xx: 2,
			CMCD: fillcast.UsageCMCD{Requests: 3, BitrateRequests: 3, BitrateKbpsSum: 8000, BufferRequests: 2, BufferMsSum: 21700,
				ThroughputRequests: 1, ThroughputKbpsSum: 25400, Starved: 1, Sessions: 2}},
		{"t1", ""}: {Title: "t1", Requests: 1, Bytes: master, Status2xx: 1, CMCD: fillcast.UsageCMCD{Requests: 1, Sessions: 1}},
	}
	var got map[[2]string]fillcast.UsageRow
	poll.Until(t, 10*time.Second, "the control plane to hold every response", func() bool {
		got = sumRows(t, cl.Usage())
		return got[[2]string{"t1", "720p"}].Requests >= 6 && got[[2]string{"t1", ""}].Requests >= 1
	})
	delete(got, [2]string{"w0", "720p"})
	for k, w := range want {
		g := got[k]
		// Sessions are estimated per summary: a session seen in two
		// intervals counts in both, and two ids share a bit 1 time in
		// 1024 (TestSessionsEstimate checks the estimate).
		if g.CMCD.Sessions >= 1 && w.CMCD.Sessions >= 1 {
			g.CMCD.Sessions = w.CMCD.Sessions
		}
		if g != w {
			t.Errorf("%v: the control plane holds\n%+v\nwant\n%+v", k, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("rows %v, want those of t1/720p and t1", got)
	}
	if _, b := fetch(t, h1, "GET", base+"/metrics"); !strings.Contains(string(b), "fillcast_appliance_usage_summaries_sent_total") {
		t.Error("/metrics lacks the usage summary counters")
	}
}

// sumRows adds up the rows of summaries by title and rendition, checking
// each summary on the way as the control plane would.
func sumRows(t *testing.T, us []fillcast.Usage) map[[2]string]fillcast.UsageRow {
	t.Helper()
	out := map[[2]string]fillcast.UsageRow{}
	ids := map[string]bool{}
	for _, u := range us {
		if err := u.Validate(); err != nil || u.Appliance != "a1" || u.Site != "s1" || ids[u.ID] {
			t.Fatalf("summary %+v: %v", u, err)
		}
		ids[u.ID] = true
		for _, r := range u.Titles {
			k := [2]string{r.Title, r.Rendition}
			s := out[k]
			s.Title, s.Rendition = r.Title, r.Rendition
			s.Requests += r.Requests
			s.Bytes += r.Bytes
			s.Status2xx, s.Status3xx, s.Status4xx, s.Status5xx = s.Status2xx+r.Status2xx, s.Status3xx+r.Status3xx, s.Status4xx+r.Status4xx, s.Status5xx+r.Status5xx
			c, rc := &s.CMCD, r.CMCD
			c.Requests += rc.Requests
			c.BitrateRequests += rc.BitrateRequests
			c.BitrateKbpsSum += rc.BitrateKbpsSum
			c.BufferRequests += rc.BufferRequests
			c.BufferMsSum += rc.BufferMsSum
			c.ThroughputRequests += rc.ThroughputRequests
			c.ThroughputKbpsSum += rc.ThroughputKbpsSum
			c.Starved += rc.Starved
			c.Sessions += rc.Sessions
			out[k] = s
		}
	}
	return out
}

// startOriginKeys is startOrigin with ks verifying fill passes.
func startOriginKeys(t *testing.T, ks *auth.Keys) *testOrigin {
	t.Helper()
	cfg := origin.DefaultConfig()
	cfg.Root = t.TempDir()
	o, err := origin.New(cfg, origin.Deps{AdminToken: "adm", Keys: ks, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(o)
	t.Cleanup(func() { srv.Close(); o.Close() })
	return &testOrigin{root: cfg.Root, srv: srv}
}

// startH3WithControlPlane is startH3 for an appliance with the control
// plane cl and d, summarising its usage every 50 ms.
func startH3WithControlPlane(t *testing.T, upstream string, cl *clienttest.Cluster, d Deps) (base string, h1, h3c *http.Client) {
	t.Helper()
	cert, err := h3test.WriteCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ln, pc, err := h3test.ListenPair()
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.ID, cfg.Site = "a1", "s1"
	cfg.Cache.Dir, cfg.Cache.DiskBytes, cfg.Cache.MemBytes = t.TempDir(), 256<<20, 16<<20
	cfg.Upstream.URLs = []string{upstream}
	cfg.HTTP = ln.Addr().String()
	cfg.H3, cfg.TLSCert, cfg.TLSKey = true, cert.CertFile, cert.KeyFile
	cfg.ControlPlanes, cfg.HeartbeatInterval, cfg.UsageInterval = cl.URLs(), 20*time.Millisecond, 50*time.Millisecond
	a, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.ServeListeners(ctx, Listeners{TCP: ln, UDP: pc}) }()
	tr := &http3.Transport{TLSClientConfig: cert.ClientTLS()}
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			tr.Close()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
			pc.Close()
		})
	})
	h1 = &http.Client{Transport: &http.Transport{TLSClientConfig: cert.ClientTLS(), ForceAttemptHTTP2: false,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	return "https://" + ln.Addr().String(), h1, &http.Client{Transport: tr}
}
