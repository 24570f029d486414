// Package clienttest is a control plane in memory, for the tests of
// controlplane/client and of the parts that call through it (the
// appliance's agent and fill executor). Its nodes are real HTTP servers
// on loopback that share one state and serve the shapes of the real
// routes the client calls: GET /v1/cluster listing every member with its
// http_url, the heartbeat and the usage summaries (recorded), the fill
// manifest with its ETag and 304, titles' file lists, the signing keys
// and playback. The routes of an appliance take Token (the admin's) or
// that appliance's credential, signed with Keys (auth.SignCredential),
// as the real control plane's do, and the keys and file lists any
// appliance's. A node can be made to fail as a real one does
// (SetFault), or to die (Kill). It imports nothing of the client, so the
// client's own tests use it too.
package clienttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/gateway"
	"github.com/fillcast/fillcast/filelist"
)

// Token is the admin token the nodes' admin routes require.
const Token = "adm"

// ClusterPath is the route of the member list.
const ClusterPath = "/v1/cluster"

// Cluster is a set of nodes with one shared state: the member list, the
// manifest and the keys.
type Cluster struct {
	mu        sync.Mutex
	nodes     []*Node                       // the members, as GET /v1/cluster lists them
	manifests map[string]*fillcast.Manifest // by appliance id
	beats     []fillcast.Heartbeat          // accepted by any node, in order
	usage     []fillcast.Usage              // accepted by any node, in order, once per ID
	usageIDs  map[string]bool
	lists     map[string][]byte // file lists by filelist.Path
}

// New starts a cluster of n nodes, stopped when the test ends.
func New(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{}
	for range n {
		c.Add(t)
	}
	return c
}

// Add starts one more member, stopped when the test ends.
func (c *Cluster) Add(t testing.TB) *Node {
	t.Helper()
	c.mu.Lock()
	nd := &Node{c: c, ID: fmt.Sprintf("n%d", len(c.nodes)+1)}
	c.nodes = append(c.nodes, nd)
	c.mu.Unlock()
	nd.mux = nd.routes()
	nd.srv = httptest.NewServer(nd)
	nd.URL = nd.srv.URL
	t.Cleanup(func() {
		// A node held in a Delay lets go when its client's connection
		// goes, so cut them before Close waits for the handlers.
		nd.srv.CloseClientConnections()
		nd.srv.Close()
	})
	return nd
}

// Nodes returns the members, as GET /v1/cluster lists them.
func (c *Cluster) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.nodes)
}

// Remove takes a member out of the member list; its server keeps running.
func (c *Cluster) Remove(nd *Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes = slices.DeleteFunc(c.nodes, func(x *Node) bool { return x == nd })
}

// URLs returns the members' URLs.
func (c *Cluster) URLs() []string {
	var out []string
	for _, nd := range c.Nodes() {
		out = append(out, nd.URL)
	}
	return out
}

// SetManifest makes m what GET /v1/appliances/{appliance}/manifest
// serves, as it is (a test may hand a wrong one); nil (the start)
// answers 404, as before anything is planned. m must not change
// afterwards: set another one instead.
func (c *Cluster) SetManifest(appliance string, m *fillcast.Manifest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.manifests == nil {
		c.manifests = map[string]*fillcast.Manifest{}
	}
	c.manifests[appliance] = m
}

// SetFileList makes body what GET /v1/titles/{title}/filelist/{digest}
// serves, as it is (a test may hand a wrong one); nil answers 404 again.
func (c *Cluster) SetFileList(title, digest string, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lists == nil {
		c.lists = map[string][]byte{}
	}
	if body == nil {
		delete(c.lists, filelist.Path(title, digest))
		return
	}
	c.lists[filelist.Path(title, digest)] = body
}

// Heartbeats returns the heartbeats every node accepted, in order.
func (c *Cluster) Heartbeats() []fillcast.Heartbeat {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.beats)
}

// Keys returns the signing keys GET /v1/keys serves, which also sign the
// appliance credentials the appliance routes take.
func (c *Cluster) Keys() []auth.Key {
	return []auth.Key{{ID: "k2", Secret: strings.Repeat("cd", 32)}}
}

// Fault is how a node misbehaves; the zero Fault is none.
type Fault struct {
	// Path, when set, limits the fault to requests of that path
	// (ClusterPath, say); empty is every request.
	Path string
	// AfterApply lets the request take effect first (a heartbeat is
	// recorded): only its answer is lost. Otherwise the node refuses it
	// before it applies anything.
	AfterApply bool
	// Delay holds the request this long before it is answered, or until
	// the client gives up. time.Hour is a node that hangs.
	Delay time.Duration
	// Status, when not 0, is the answer, with the control plane's JSON
	// error body.
	Status int
	// CutShort answers 200 with a body the node cuts short, closing the
	// connection.
	CutShort bool
}

// Node is one member, an HTTP server on loopback.
type Node struct {
	// ID is the member's id ("n1") and URL where it serves.
	ID, URL string

	c           *Cluster
	srv         *httptest.Server
	mux         http.Handler
	fault       atomic.Pointer[Fault]
	noURL       atomic.Bool
	calls       atomic.Int64
	notModified atomic.Int64
	auth        atomic.Pointer[string]

	mu    sync.Mutex
	beats []fillcast.Heartbeat
	usage int // summaries the node accepted, repeats included
}

// SetFault makes the node misbehave as f says; the zero Fault stops it.
func (nd *Node) SetFault(f Fault) {
	if f == (Fault{}) {
		nd.fault.Store(nil)
		return
	}
	nd.fault.Store(&f)
}

// Fail makes the node answer every request with status before applying
// it; 0 stops it.
func (nd *Node) Fail(status int) { nd.SetFault(Fault{Status: status}) }

// ListWithoutURL makes GET /v1/cluster list the node without its
// http_url, as a member that has not registered it yet.
func (nd *Node) ListWithoutURL(on bool) { nd.noURL.Store(on) }

// Kill stops the node as SIGKILL would: its connections are cut and
// nothing listens on its port any more.
func (nd *Node) Kill() {
	nd.srv.CloseClientConnections()
	nd.srv.Close()
}

// Calls returns how many requests other than GET /v1/cluster reached the
// node, refused ones included.
func (nd *Node) Calls() int64 { return nd.calls.Load() }

// Heartbeats returns the heartbeats the node accepted, in order.
func (nd *Node) Heartbeats() []fillcast.Heartbeat {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return slices.Clone(nd.beats)
}

// NotModified returns how many manifest requests the node answered 304.
func (nd *Node) NotModified() int64 { return nd.notModified.Load() }

// Authorization returns the Authorization header of the last request the
// node saw, and whether it saw one.
func (nd *Node) Authorization() (string, bool) {
	if p := nd.auth.Load(); p != nil {
		return *p, true
	}
	return "", false
}

// ServeHTTP records the request, applies the fault, and serves the routes.
func (nd *Node) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a := r.Header.Get("Authorization")
	nd.auth.Store(&a)
	if r.URL.Path != ClusterPath {
		nd.calls.Add(1)
	}
	// Read the body now: the server notices that the client went away,
	// and ends a Delay, only once it has.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	f := nd.fault.Load()
	if f == nil || f.Path != "" && f.Path != r.URL.Path {
		nd.mux.ServeHTTP(w, r)
		return
	}
	var applied *httptest.ResponseRecorder
	if f.AfterApply {
		applied = httptest.NewRecorder()
		nd.mux.ServeHTTP(applied, r)
	}
	if f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case f.CutShort:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(`{"cut":`))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection closes mid-body
	case f.Status != 0:
		writeError(w, f.Status, "failing on purpose")
	case applied != nil:
		for k, v := range applied.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(applied.Code)
		w.Write(applied.Body.Bytes())
	default:
		nd.mux.ServeHTTP(w, r)
	}
}

func writeError(w http.ResponseWriter, status int, msg string) {
	gateway.WriteJSON(w, status, map[string]string{"error": msg, "request_id": "r1"})
}

func (nd *Node) routes() http.Handler {
	c := nd.c
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+ClusterPath, func(w http.ResponseWriter, r *http.Request) {
		st := fillcast.ClusterStatus{ID: nd.ID, State: "Follower", Leader: "n1", Term: "1"}
		for _, m := range c.Nodes() {
			cm := fillcast.ClusterMember{ID: m.ID, RaftAddr: "127.0.0.1:1", HTTPURL: m.URL, Voter: true, Leader: m.ID == "n1"}
			if m.noURL.Load() {
				cm.HTTPURL = ""
			}
			st.Members = append(st.Members, cm)
		}
		gateway.WriteJSON(w, http.StatusOK, st)
	})
	// self admits the admin and the appliance of the route's {id} with its
	// credential; anyAppliance every appliance.
	self := func(h http.HandlerFunc) http.HandlerFunc { return c.appliance(h, true) }
	anyAppliance := func(h http.HandlerFunc) http.HandlerFunc { return c.appliance(h, false) }
	mux.HandleFunc("POST /v1/appliances/{id}/heartbeat", self(func(w http.ResponseWriter, r *http.Request) {
		var hb fillcast.Heartbeat
		if err := json.NewDecoder(r.Body).Decode(&hb); err != nil || hb.Site == "" {
			writeError(w, http.StatusBadRequest, "heartbeat: site is required")
			return
		}
		nd.mu.Lock()
		nd.beats = append(nd.beats, hb)
		nd.mu.Unlock()
		c.mu.Lock()
		c.beats = append(c.beats, hb)
		c.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("GET /v1/appliances/{id}/manifest", self(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		m := c.manifests[r.PathValue("id")]
		c.mu.Unlock()
		if m == nil {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no fill manifest for appliance %q", r.PathValue("id")))
			return
		}
		rec := httptest.NewRecorder() // to count the 304s of the real conditional answer
		gateway.WriteJSONETag(rec, r, m)
		if rec.Code == http.StatusNotModified {
			nd.notModified.Add(1)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	mux.HandleFunc("POST /v1/appliances/{id}/fillpass", self(func(w http.ResponseWriter, r *http.Request) {
		ks, err := auth.NewKeys(c.Keys())
		expiry := time.Now().Add(time.Hour).Truncate(time.Second)
		var pass string
		if err == nil {
			pass, err = ks.SignFillPass(r.PathValue("id"), expiry)
		}
		if err != nil {
			gateway.WriteJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		gateway.WriteJSON(w, http.StatusOK, fillcast.FillPass{Pass: pass, ExpiresAt: expiry})
	}))
	mux.HandleFunc("POST /v1/appliances/{id}/usage", self(nd.usageReport))
	mux.HandleFunc("GET /v1/titles/{id}/filelist/{digest}", anyAppliance(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		body := c.lists[filelist.Path(r.PathValue("id"), r.PathValue("digest"))]
		c.mu.Unlock()
		if body == nil {
			writeError(w, http.StatusNotFound, fmt.Sprintf("title %q has no file list %s", r.PathValue("id"), r.PathValue("digest")))
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("ETag", `"`+r.PathValue("digest")+`"`)
		w.Write(body)
	}))
	mux.HandleFunc("GET /v1/keys", anyAppliance(func(w http.ResponseWriter, r *http.Request) {
		gateway.WriteJSON(w, http.StatusOK, auth.KeyList{Keys: c.Keys()})
	}))
	mux.HandleFunc("GET /v1/playback/{title}", func(w http.ResponseWriter, r *http.Request) {
		t := r.PathValue("title")
		gateway.WriteJSON(w, http.StatusOK, fillcast.Playback{Title: t, Protocol: r.URL.Query().Get("protocol"),
			URLs: []string{"http://edge1/c/tok/" + t + "/master.m3u8"}, ExpiresAt: "2026-11-26T00:00:00Z"})
	})
	return mux
}
