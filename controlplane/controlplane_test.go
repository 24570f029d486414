package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast/appliance/h3/h3test"

	"github.com/fillcast/fillcast/internal/viewertest"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/api"
	"github.com/fillcast/fillcast/controlplane/ratelimit"
	"github.com/fillcast/fillcast/internal/poll"
)

const keyFile = "k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"

type testNode struct {
	*Node
	url  string
	stop func()
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startNode(t *testing.T, id string, join []string) *testNode {
	t.Helper()
	ln := listen(t)
	cfg := Config{ID: id, DataDir: t.TempDir(), HTTP: ln.Addr().String(), Join: join, Origin: "http://127.0.0.1:9"}
	return runNode(t, cfg, Deps{AdminToken: "adm", Keys: testKeys(), Listener: ln})
}

// testKeys are the signing keys of keyFile.
func testKeys() *auth.Keys {
	keys, _ := auth.ParseKeys(strings.NewReader(keyFile))
	return keys
}

// listen opens a listener on a free loopback port.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// runNode runs a node of cfg, with short raft timeouts, a raft address of
// its own (unless cfg names one) and Bootstrap when it joins no one, until the test ends; it
// returns once the node is ready. Its url is https with TLS.
func runNode(t *testing.T, cfg Config, d Deps) *testNode {
	t.Helper()
	if cfg.RaftAddr == "" {
		cfg.RaftAddr = freeAddr(t)
	}
	cfg.Bootstrap = len(cfg.Join) == 0
	if cfg.Events.Listen == "" && cfg.Events.URL == "" {
		port, err := h3test.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		cfg.Events.Listen = "127.0.0.1:" + strconv.Itoa(port)
	}
	if cfg.HeartbeatTimeout == 0 {
		cfg.HeartbeatTimeout, cfg.ElectionTimeout = 300*time.Millisecond, 300*time.Millisecond
	}
	if cfg.API.RateLimits.Classes == nil {
		// The tests poll far faster than players do; the limits have
		// tests of their own (controlplane/api, controlplane/ratelimit).
		off := ratelimit.Limit{PerSecond: -1}
		cfg.API.RateLimits.Classes = map[ratelimit.Class]ratelimit.Limit{ratelimit.ClassViewer: off, ratelimit.ClassAnonymous: off,
			ratelimit.ClassAPIKey: off, ratelimit.ClassAppliance: off}
	}
	if d.Log == nil && os.Getenv("FILLCAST_TEST_LOG") != "" {
		d.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", cfg.ID)
	}
	n, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	select {
	case <-n.Ready():
	case err := <-done:
		t.Fatalf("node %s stopped before it was ready: %v", cfg.ID, err)
	case <-time.After(time.Minute):
		t.Fatalf("node %s not ready after a minute", cfg.ID)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("node %s: %v", cfg.ID, err)
			}
		})
	}
	t.Cleanup(stop)
	scheme := "http://"
	if !cfg.TLS.IsZero() {
		scheme = "https://"
	}
	return &testNode{Node: n, url: scheme + cfg.HTTP, stop: stop}
}

func call(t *testing.T, method, url string, body any, admin bool) (int, []byte) {
	t.Helper()
	bearer := ""
	if admin {
		bearer = "adm"
	}
	return callAs(t, method, url, body, bearer)
}

// callAs is call with a bearer token (none when empty).
func callAs(t *testing.T, method, url string, body any, bearer string) (int, []byte) {
	t.Helper()
	return callWith(method, url, body, bearer, nil)
}

// callWith is callAs with more request headers.
func callWith(method, url string, body any, bearer string, header http.Header) (int, []byte) {
	var rd io.Reader
	if s, ok := body.(string); ok {
		rd = strings.NewReader(s)
	} else if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func playback(t *testing.T, v *viewertest.Viewer, base, title string) (int, fillcast.Playback) {
	t.Helper()
	code, p, _ := v.Playback(t, nil, base, title, "hls")
	return code, p
}

// register registers storage appliances of isp1 at http://<id>.example:8080
// and returns their credentials by id.
func register(t *testing.T, node string, ids ...string) map[string]string {
	t.Helper()
	creds := map[string]string{}
	for _, id := range ids {
		reg := map[string]any{"site": "isp1", "profile": "storage", "urls": []string{"http://" + id + ".example:8080"}}
		code, b := call(t, "PUT", node+"/v1/appliances/"+id, reg, true)
		var out struct{ Credential string }
		if code != 200 || json.Unmarshal(b, &out) != nil || out.Credential == "" {
			t.Fatalf("register %s: %d %s", id, code, b)
		}
		creds[id] = out.Credential
	}
	return creds
}

// beat posts a heartbeat as appliance id does, with its credential.
func beat(t *testing.T, node, id, cred, health string) (int, []byte) {
	t.Helper()
	hb := fillcast.Heartbeat{Site: "isp1", Profile: "storage", URL: "http://" + id + ".example:8080", CapacityBytes: 1 << 40, Health: health}
	b, _ := json.Marshal(hb)
	req, _ := http.NewRequest("POST", node+"/v1/appliances/"+id+"/heartbeat", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+cred)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func TestControlPlaneSteersThroughFailures(t *testing.T) {
	n1 := startNode(t, "n1", nil)
	n2 := startNode(t, "n2", []string{n1.url})
	n3 := startNode(t, "n3", []string{n1.url})
	nodes := []*testNode{n1, n2, n3}
	poll.Until(t, 15*time.Second, "3 members", func() bool {
		code, b := call(t, "GET", n3.url+"/v1/cluster", nil, true)
		return code == 200 && bytes.Count(b, []byte(`"http_url"`)) == 3 && bytes.Contains(b, []byte(`"leader":"n`))
	})

	// Bad input is refused with a clear answer.
	bad := []struct {
		name, method, path string
		body               any
		admin              bool
		want               int
		wantText           string
	}{
		{"write without token", "PUT", "/v1/sites/isp1", fillcast.Site{Kind: "isp", Region: "eu"}, false, 401, ""},
		{"malformed json", "PUT", "/v1/sites/isp1", `{"kind": "isp", "region": }`, true, 400, ""},
		{"unknown field", "PUT", "/v1/sites/isp1", `{"kind":"isp","region":"eu","prefixs":[]}`, true, 400, "prefixs"},
		{"invalid cidr", "PUT", "/v1/sites/isp1", fillcast.Site{Kind: "isp", Region: "eu", Prefixes: []string{"127.0.0.0/33"}}, true, 400, "127.0.0.0/33"},
		{"missing parent", "PUT", "/v1/sites/isp1", fillcast.Site{Kind: "isp", Region: "eu", Parent: "nope"}, true, 400, "nope"},
		{"playback without a session", "GET", "/v1/playback/nope", nil, false, 401, ""},
		{"title without name", "POST", "/v1/titles", fillcast.Title{ID: "t9"}, true, 400, "name"},
	}
	for _, tt := range bad {
		code, b := call(t, tt.method, n2.url+tt.path, tt.body, tt.admin)
		if code != tt.want || !strings.Contains(string(b), tt.wantText) {
			t.Errorf("%s: %d %s; want %d mentioning %q", tt.name, code, b, tt.want, tt.wantText)
		}
	}

	// Sites, a title, and appliances heartbeating to different nodes.
	for _, s := range []fillcast.Site{
		{ID: "ix-ams", Kind: "ix", Region: "eu-west", Prefixes: []string{"10.0.0.0/8"}},
		{ID: "isp1", Kind: "isp", Region: "eu-west", Prefixes: []string{"127.0.0.0/8"}, Parent: "ix-ams"},
	} {
		if code, b := call(t, "PUT", n2.url+"/v1/sites/"+s.ID, s, true); code != 200 {
			t.Fatalf("put site %s: %d %s", s.ID, code, b)
		}
	}
	if code, b := call(t, "POST", n3.url+"/v1/titles", fillcast.Title{ID: "t2", Name: "Later", Status: "new"}, true); code != 201 {
		t.Fatalf("create t2: %d %s", code, b)
	}
	ready := fillcast.Title{ID: "t1", Name: "One", Status: "ready",
		Renditions: []fillcast.Rendition{{ID: "720p", Kind: "video", Width: 1280, Height: 720, Bandwidth: 3e6, Codecs: "avc1.64001f"}}}
	if code, b := call(t, "POST", n3.url+"/v1/titles", ready, true); code != 201 {
		t.Fatalf("create t1: %d %s", code, b)
	}
	if code, _ := call(t, "POST", n1.url+"/v1/titles", ready, true); code != 409 {
		t.Errorf("duplicate title: %d, want 409", code)
	}
	// 30 concurrent creates of one id, through all three nodes: one 201.
	codes := make(chan int, 30)
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			code, _ := call(t, "POST", nodes[i%3].url+"/v1/titles", fillcast.Title{ID: "race", Name: "Race", Status: "new"}, true)
			codes <- code
		})
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[201] != 1 || count[409] != 29 {
		t.Errorf("30 concurrent creates of one title: %v, want one 201 and 29 409", count)
	}
	// A viewer signed in on one node plays through every node.
	v := viewertest.New(t, nil, n3.url, "adm")
	for _, n := range nodes {
		poll.Until(t, 10*time.Second, "the session on "+n.url, func() bool {
			code, _ := callAs(t, "GET", n.url+"/v1/playback/nope", nil, v.Token)
			return code == 404
		})
	}
	if code, b := callAs(t, "GET", n1.url+"/v1/playback/t2", nil, v.Token); code != 409 {
		t.Errorf("playback of a title not ready: %d %s, want 409", code, b)
	}

	// Each appliance heartbeats to its own node until stopped.
	creds := register(t, n2.url, "a1", "a2", "a3")
	// Forged heartbeats: as another appliance, for an id never
	// registered (even with the admin key), with a URL not registered.
	evil := fillcast.Heartbeat{Site: "isp1", Profile: "storage", URL: "http://attacker.example", Health: "ok"}
	for _, f := range []struct {
		name, id, bearer string
		hb               fillcast.Heartbeat
	}{
		{"as another appliance", "a2", creds["a1"], fillcast.Heartbeat{Site: "isp1", Profile: "storage", URL: "http://a2.example:8080", Health: "ok"}},
		{"a new id with the admin key", "evil", "adm", evil},
		{"an unregistered url", "a1", creds["a1"], fillcast.Heartbeat{Site: "isp1", Profile: "storage", URL: "http://attacker.example", Health: "ok"}},
		{"another site", "a1", creds["a1"], fillcast.Heartbeat{Site: "ix-ams", Profile: "storage", URL: "http://a1.example:8080", Health: "ok"}},
	} {
		b, _ := json.Marshal(f.hb)
		req, _ := http.NewRequest("POST", n1.url+"/v1/appliances/"+f.id+"/heartbeat", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+f.bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || strings.TrimSpace(string(body)) == "" || !strings.Contains(string(body), `"error":"forbidden"`) {
			t.Errorf("forged heartbeat %s: %d %s, want 403 forbidden", f.name, resp.StatusCode, body)
		}
	}
	stopBeats := map[string]func(){}
	for i, id := range []string{"a1", "a2", "a3"} {
		stop, done := make(chan struct{}), make(chan struct{})
		target := nodes[i].url
		go func() {
			defer close(done)
			for {
				beat(t, target, id, creds[id], "ok") // refused until the registration reached target
				select {
				case <-stop:
					return
				case <-time.After(300 * time.Millisecond):
				}
			}
		}()
		var once sync.Once
		stopBeats[id] = func() { once.Do(func() { close(stop); <-done }) }
		defer stopBeats[id]()
	}

	// Every node steers with every appliance, whichever node heard it.
	for _, n := range nodes {
		poll.Until(t, 10*time.Second, "three steerable appliances on "+n.url, func() bool {
			_, b := call(t, "GET", n.url+"/v1/fleet", nil, true)
			var views []api.ApplianceView
			json.Unmarshal(b, &views)
			return len(views) == 3 && views[0].Steerable && views[1].Steerable && views[2].Steerable
		})
		poll.Until(t, 10*time.Second, "steering on "+n.url, func() bool {
			code, p := playback(t, v, n.url, "t1")
			return code == 200 && len(p.URLs) == 3 && strings.Contains(p.URLs[0], ".example:8080/c/k1.") &&
				strings.Contains(p.URLs[0], "/t1/master.m3u8?traceparent=00-") && strings.HasPrefix(p.URLs[2], "http://127.0.0.1:9/c/")
		})
	}
	_, p := playback(t, v, n1.url, "t1")
	for _, u := range p.URLs {
		if strings.Contains(u, "attacker") {
			t.Errorf("playback steers to a forged appliance: %s", u)
		}
	}
	if p.SteeringURL == "" || p.ExpiresAt == "" || p.Protocol != "hls" {
		t.Errorf("playback = %+v", p)
	}
	code, b := call(t, "GET", n2.url+"/v1/steering/t1?protocol=hls", nil, false)
	if code != 200 || !bytes.Contains(b, []byte(`"PATHWAY-PRIORITY"`)) || !bytes.Contains(b, []byte(`"PATHWAY-CLONES"`)) {
		t.Errorf("steering manifest: %d %s", code, b)
	}

	// A draining appliance gets no new players; a silent one leaves
	// steering within 10 s.
	stopBeats["a1"]()
	for range 3 {
		if code, b := beat(t, n1.url, "a1", creds["a1"], fillcast.HealthDraining); code != 204 {
			t.Fatalf("draining heartbeat: %d %s", code, b)
		}
	}
	for _, n := range nodes {
		poll.Until(t, 5*time.Second, "draining a1 out of "+n.url, func() bool {
			_, b := call(t, "GET", n.url+"/v1/fleet", nil, true)
			var views []api.ApplianceView
			json.Unmarshal(b, &views)
			return len(views) == 3 && views[0].ID == "a1" && !views[0].Steerable && views[1].Steerable
		})
		for range 20 {
			if _, p := playback(t, v, n.url, "t1"); len(p.URLs) != 3 || strings.Contains(strings.Join(p.URLs, " "), "a1.example") {
				t.Fatalf("%s steers to draining a1: %v", n.url, p.URLs)
			}
		}
	}
	if _, p := playback(t, v, n1.url, "t1"); !strings.Contains(strings.Join(p.URLs, " "), "a2.example") {
		t.Fatalf("a2 missing before it went silent: %v", p.URLs)
	}
	stopBeats["a2"]()
	start := time.Now()
	poll.Until(t, 10*time.Second, "silent a2 out", func() bool {
		code, p := playback(t, v, n1.url, "t1")
		return code == 200 && !strings.Contains(strings.Join(p.URLs, " "), "a2.example")
	})
	t.Logf("a silent appliance left steering after %s", time.Since(start).Round(100*time.Millisecond))

	// Kill the leader: the survivors keep steering throughout, and elect
	// a new leader within 5 s.
	var leader *testNode
	for _, n := range nodes {
		if n.Raft().IsLeader() {
			leader = n
		}
	}
	leader.stop()
	var survivors []*testNode
	for _, n := range nodes {
		if n != leader {
			survivors = append(survivors, n)
		}
	}
	start = time.Now()
	for time.Since(start) < 5*time.Second {
		for _, n := range survivors {
			if code, _ := playback(t, v, n.url, "t1"); code != 200 {
				t.Fatalf("playback on a survivor during the election: %d", code)
			}
		}
		if survivors[0].Raft().IsLeader() || survivors[1].Raft().IsLeader() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !survivors[0].Raft().IsLeader() && !survivors[1].Raft().IsLeader() {
		t.Fatal("no new leader within 5 s")
	}
	t.Logf("new leader after %s", time.Since(start).Round(10*time.Millisecond))
	if code, b := call(t, "PUT", survivors[0].url+"/v1/titles/t3", fillcast.Title{Name: "Three"}, true); code != 200 {
		t.Errorf("write after failover: %d %s", code, b)
	}
}

// TestBusyPortStopsBeforeJoining: a node whose API port is taken stops
// with an error naming the listener before it asks the cluster to add
// it; a voter that can never serve would cost a cluster of two its
// majority.
func TestBusyPortStopsBeforeJoining(t *testing.T) {
	n1 := startNode(t, "n1", nil)
	poll.Until(t, 10*time.Second, "n1 to lead", func() bool { return n1.Raft().IsLeader() })
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	keys, _ := auth.ParseKeys(strings.NewReader(keyFile))
	n2, err := New(Config{
		ID: "n2", DataDir: t.TempDir(), HTTP: busy.Addr().String(), RaftAddr: freeAddr(t), Join: []string{n1.url},
		HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond,
	}, Deps{AdminToken: "adm", Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if err := n2.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "controlplane: listener: listen tcp") {
		t.Fatalf("Run on a taken port = %v, want the listener's error", err)
	}
	if st := n1.Raft().Status(); len(st.Members) != 1 {
		t.Errorf("members after n2 failed to start: %+v, want n1 alone", st.Members)
	}
	if err := n2.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "runs once") {
		t.Errorf("second Run = %v, want refused", err)
	}
}
