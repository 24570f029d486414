package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/client/clienttest"
	"github.com/fillcast/fillcast/internal/poll"
)

// hang is a Delay that outlasts every test: a node that never answers.
const hang = time.Hour

// clock is a settable clock for refresh timing.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newClient returns a Client of cfg with the admin token, unless d has
// another.
func newClient(t *testing.T, cfg Config, d Deps) *Client {
	t.Helper()
	if d.Token == "" {
		d.Token = clienttest.Token
	}
	c, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// returnsWithin runs call and fails t unless it returns within limit: a
// call that would wait on a hung node for its whole 1 h Timeout fails
// the test instead of holding it.
func returnsWithin(t *testing.T, limit time.Duration, what string, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	var err error
	poll.Until(t, limit, what, func() bool {
		select {
		case err = <-done:
			return true
		default:
			return false
		}
	})
	return err
}

var beat = fillcast.Heartbeat{Site: "s1", Profile: fillcast.ProfileFlash, URL: "http://a1", Health: fillcast.HealthOK}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name string
		cfg  Config
		want string // "" for no error
	}{
		{"no urls", Config{}, "at least one"},
		{"not a url", Config{URLs: []string{"cp1:7000"}}, "want a URL"},
		{"no host", Config{URLs: []string{"http://"}}, "want a URL"},
		{"other scheme", Config{URLs: []string{"ftp://cp1"}}, "want a URL"},
		{"negative timeout", Config{URLs: []string{"http://cp1"}, Timeout: -time.Second}, "config Timeout"},
		{"negative heartbeat timeout", Config{URLs: []string{"http://cp1"}, HeartbeatTimeout: -time.Second}, "config HeartbeatTimeout"},
		{"negative dial timeout", Config{URLs: []string{"http://cp1"}, DialTimeout: -time.Second}, "config DialTimeout"},
		// New does no I/O: a node that is down is fine until a call.
		{"node down", Config{URLs: []string{closed.URL}}, ""},
		{"trailing slash", Config{URLs: []string{"http://cp1:7000/"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg, Deps{})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if m := c.Members(); len(m) != 1 || strings.HasSuffix(m[0], "/") {
					t.Errorf("Members() = %v, want the one URL without a trailing slash", m)
				}
				want := Config{URLs: c.cfg.URLs, Timeout: 10 * time.Second, HeartbeatTimeout: 10 * time.Second, DialTimeout: 2 * time.Second, RefreshEvery: 30 * time.Second}
				if fmt.Sprint(c.cfg) != fmt.Sprint(want) {
					t.Errorf("defaults: %+v, want %+v", c.cfg, want)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), "client: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New(%+v) = %v, want a client: error mentioning %q", tt.cfg, err, tt.want)
			}
		})
	}
}

// TestLearnsMembersFromOneSeed: the first call teaches the client every
// member, and a refresh every RefreshEvery follows the cluster as members
// join and leave; the seeds are always kept.
func TestLearnsMembersFromOneSeed(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 3)
	n := cl.Nodes()
	clk := &clock{t: time.Unix(1000, 0)}
	seed := n[0].URL
	c := newClient(t, Config{URLs: []string{seed}, RefreshEvery: time.Minute}, Deps{Now: clk.now})
	ctx := context.Background()
	if got := c.Members(); !slices.Equal(got, []string{seed}) {
		t.Fatalf("before any call: Members() = %v, want the seed alone", got)
	}
	if err := c.Heartbeat(ctx, "a1", beat); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Members(), cl.URLs(); !slices.Equal(got, want) {
		t.Fatalf("after one call: Members() = %v, want %v", got, want)
	}

	n4 := cl.Add(t)
	cl.Remove(n[0]) // the seed leaves the member list
	cl.Remove(n[1]) // and so does n2
	if err := c.Heartbeat(ctx, "a1", beat); err != nil {
		t.Fatal(err)
	}
	if got := c.Members(); slices.Contains(got, n4.URL) {
		t.Errorf("Members() = %v: refreshed before RefreshEvery passed", got)
	}
	clk.add(time.Minute)
	if err := c.Heartbeat(ctx, "a1", beat); err != nil {
		t.Fatal(err)
	}
	want := append([]string{seed}, cl.URLs()...) // n1 (a seed), n3, n4
	if got := c.Members(); !slices.Equal(got, want) {
		t.Errorf("after RefreshEvery: Members() = %v, want %v", got, want)
	}
}

// TestPartialMemberListKeepsNodes: a status that lists a member without
// its URL (not registered yet) drops no node the client knows; a
// complete one that no longer lists a node drops it.
func TestPartialMemberListKeepsNodes(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 3)
	n := cl.Nodes()
	clk := &clock{t: time.Unix(1000, 0)}
	c := newClient(t, Config{URLs: []string{n[0].URL}, RefreshEvery: time.Minute}, Deps{Now: clk.now})
	ctx := context.Background()
	tests := []struct {
		name string
		step func()
		want []string
	}{
		{"complete", func() {}, []string{n[0].URL, n[1].URL, n[2].URL}},
		{"n3 listed without its URL", func() { n[2].ListWithoutURL(true) }, []string{n[0].URL, n[1].URL, n[2].URL}},
		{"n2 gone, n3 still without", func() { cl.Remove(n[1]) }, []string{n[0].URL, n[1].URL, n[2].URL}},
		{"complete again, without n2", func() { n[2].ListWithoutURL(false) }, []string{n[0].URL, n[2].URL}},
	}
	for _, tt := range tests {
		tt.step()
		clk.add(time.Minute)
		if err := c.Heartbeat(ctx, "a1", beat); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := c.Members(); !slices.Equal(got, tt.want) {
			t.Errorf("%s: Members() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestFailedRefreshIsTriedAgain: a refresh that fails leaves it due, both
// the first one and one that a node's failure made due, so the next
// answer reads the members.
func TestFailedRefreshIsTriedAgain(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 3)
	n := cl.Nodes()
	clk := &clock{t: time.Unix(1000, 0)} // stands still: only a failure makes a refresh due
	c := newClient(t, Config{URLs: []string{n[0].URL}, RefreshEvery: time.Hour}, Deps{Now: clk.now})
	ctx := context.Background()
	refuseMembers := clienttest.Fault{Path: clienttest.ClusterPath, Status: http.StatusInternalServerError}

	// The first refresh fails.
	n[0].SetFault(refuseMembers)
	if err := c.Heartbeat(ctx, "a1", beat); err != nil {
		t.Fatal(err)
	}
	n[0].SetFault(clienttest.Fault{})
	if err := c.Heartbeat(ctx, "a1", beat); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Members(), cl.URLs(); !slices.Equal(got, want) {
		t.Fatalf("after a failed first refresh and an answer: Members() = %v, want %v", got, want)
	}

	// n1 fails, which makes a refresh due; n2 answers but cannot list
	// the members; the next answer reads them and finds n4.
	n4 := cl.Add(t)
	n[0].Fail(http.StatusServiceUnavailable)
	n[1].SetFault(refuseMembers)
	if err := c.Heartbeat(ctx, "a1", beat); err != nil {
		t.Fatal(err)
	}
	n[1].SetFault(clienttest.Fault{})
	if err := c.Heartbeat(ctx, "a1", beat); err != nil {
		t.Fatal(err)
	}
	if got := c.Members(); !slices.Contains(got, n4.URL) {
		t.Errorf("Members() = %v: the refresh a failure made due was lost when it failed", got)
	}
}

// TestFailsOverWhenTheSeedDies: a client that knew only node 1 keeps
// working when node 1 dies, through the members it learned, and keeps
// going to the node that answered.
func TestFailsOverWhenTheSeedDies(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 3)
	n := cl.Nodes()
	c := newClient(t, Config{URLs: []string{n[0].URL}}, Deps{})
	ctx := context.Background()
	if err := c.Heartbeat(ctx, "a1", beat); err != nil {
		t.Fatal(err)
	}
	n[0].Kill()
	for i := range 5 {
		if err := c.Heartbeat(ctx, "a1", beat); err != nil {
			t.Fatalf("heartbeat %d after node 1 died: %v", i, err)
		}
	}
	if b2, b3 := len(n[1].Heartbeats()), len(n[2].Heartbeats()); b2 != 5 || b3 != 0 {
		t.Errorf("beats after the failover: n2 %d, n3 %d; want 5 and 0 (the node that answered is asked first)", b2, b3)
	}
	// The member list still names node 1 (the cluster does), so the
	// client knows it, but asks the node that answers.
	if got := c.Members(); len(got) != 3 {
		t.Errorf("Members() = %v", got)
	}
}

// hungFirst starts a cluster of n nodes whose first takes connections
// and requests but never answers.
func hungFirst(t *testing.T, n int) (*clienttest.Cluster, []*clienttest.Node) {
	t.Helper()
	cl := clienttest.New(t, n)
	nodes := cl.Nodes()
	nodes[0].SetFault(clienttest.Fault{Delay: hang})
	return cl, nodes
}

// TestTimeoutMovesOn: a node that takes the connection but never answers
// costs one Timeout, then the next node answers. The Timeout is long
// enough for the good node's answer under -race on a busy machine.
func TestTimeoutMovesOn(t *testing.T) {
	t.Parallel()
	cl, n := hungFirst(t, 2)
	c := newClient(t, Config{URLs: cl.URLs(), Timeout: 2 * time.Second}, Deps{})
	if err := c.Heartbeat(context.Background(), "a1", beat); err != nil {
		t.Fatalf("heartbeat past a hung node: %v", err)
	}
	if got := len(n[1].Heartbeats()); got != 1 {
		t.Errorf("the answering node took %d beats, want 1", got)
	}
}

// TestHeartbeatTimeout: a heartbeat waits HeartbeatTimeout on a hung
// node, not Timeout, then the next node takes it; a manifest still has
// Timeout for a slow answer.
func TestHeartbeatTimeout(t *testing.T) {
	t.Parallel()
	cl, n := hungFirst(t, 2)
	c := newClient(t, Config{URLs: cl.URLs(), Timeout: time.Hour, HeartbeatTimeout: time.Second}, Deps{})
	err := returnsWithin(t, 30*time.Second, "a heartbeat past a hung node", func() error {
		return c.Heartbeat(context.Background(), "a1", beat)
	})
	if err != nil || len(n[1].Heartbeats()) != 1 {
		t.Errorf("heartbeat past a hung node: %v, %d beats at the second node; want it taken there", err, len(n[1].Heartbeats()))
	}

	slow := clienttest.New(t, 1)
	slow.SetManifest("a1", &fillcast.Manifest{Appliance: "a1", Version: 1})
	slow.Nodes()[0].SetFault(clienttest.Fault{Delay: 300 * time.Millisecond})
	c = newClient(t, Config{URLs: slow.URLs(), Timeout: time.Hour, HeartbeatTimeout: 100 * time.Millisecond}, Deps{})
	if m, _, err := c.Manifest(context.Background(), "a1", ""); err != nil || m == nil || m.Version != 1 {
		t.Errorf("manifest from a node slower than HeartbeatTimeout: %+v, %v; want it (it has Timeout)", m, err)
	}
	if err := c.Heartbeat(context.Background(), "a1", beat); !errors.Is(err, ErrUnavailable) {
		t.Errorf("heartbeat to a node slower than HeartbeatTimeout: %v, want ErrUnavailable", err)
	}
}

// TestDeadlineMovesOn: a call whose caller's deadline passes while a node
// hangs counts that node as failed, so the next call asks the next node
// first rather than wait on the hung one again.
func TestDeadlineMovesOn(t *testing.T) {
	t.Parallel()
	cl, n := hungFirst(t, 2)
	c := newClient(t, Config{URLs: cl.URLs(), Timeout: time.Hour}, Deps{})
	keys := func(limit time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		_, err := c.Keys(ctx)
		return err
	}
	if err := keys(300 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first call, at the hung node: %v, want its deadline", err)
	}
	if err := keys(10 * time.Second); err != nil {
		t.Errorf("second call: %v, want the second node's answer", err)
	}
	if n[1].Calls() != 1 {
		t.Errorf("the second node took %d calls, want 1", n[1].Calls())
	}
}

// TestWhichFailuresMoveOn: reads and heartbeats go to the next node after
// every failure; other writes only when the node surely did not take
// them (no connection, 502, 503), so that one is never applied twice.
// Any other answer is the cluster's and is returned as it is.
func TestWhichFailuresMoveOn(t *testing.T) {
	t.Parallel()
	kinds := []struct {
		name string
		call func(c *Client) error
		// write: a write that must not be applied twice (a heartbeat
		// sent through Do, not as soft state).
		write bool
	}{
		{"heartbeat", func(c *Client) error { return c.Heartbeat(context.Background(), "a1", beat) }, false},
		{"read", func(c *Client) error { _, err := c.Keys(context.Background()); return err }, false},
		{"write", func(c *Client) error {
			return c.Do(context.Background(), http.MethodPost, "/v1/appliances/a1/heartbeat", beat, nil)
		}, true},
	}
	failures := []struct {
		name  string
		fault clienttest.Fault
		kill  bool // the first node is down: the connection is refused
		// taken says the node may have applied the request: a write goes
		// no further. Without it, every kind moves on.
		taken bool
		// answer says the status is the cluster's: nothing moves on.
		answer   bool
		wantCode int // StatusCode of a call that does not move on
	}{
		{name: "refused", kill: true},
		{name: "502", fault: clienttest.Fault{Status: 502}},
		{name: "503", fault: clienttest.Fault{Status: 503}},
		{name: "504 after applying", fault: clienttest.Fault{Status: 504, AfterApply: true}, taken: true, wantCode: 504},
		{name: "timeout after applying", fault: clienttest.Fault{Delay: hang, AfterApply: true}, taken: true},
		{name: "cut short after applying", fault: clienttest.Fault{CutShort: true, AfterApply: true}, taken: true},
		{name: "500", fault: clienttest.Fault{Status: 500}, answer: true, wantCode: 500},
		{name: "404", fault: clienttest.Fault{Status: 404}, answer: true, wantCode: 404},
	}
	for _, f := range failures {
		for _, k := range kinds {
			t.Run(f.name+"/"+k.name, func(t *testing.T) {
				t.Parallel()
				cl := clienttest.New(t, 2)
				n := cl.Nodes()
				n[0].SetFault(f.fault)
				if f.kill {
					n[0].Kill()
				}
				c := newClient(t, Config{URLs: cl.URLs(), Timeout: 2 * time.Second}, Deps{})
				err := k.call(c)
				wantMove := !f.answer && !(f.taken && k.write)
				if moved := n[1].Calls() > 0; moved != wantMove {
					t.Errorf("the second node asked: %v, want %v (error %v)", moved, wantMove, err)
				}
				switch {
				case wantMove && err != nil:
					t.Errorf("error %v, want the second node's answer", err)
				case !wantMove && (err == nil || StatusCode(err) != f.wantCode || errors.Is(err, ErrUnavailable)):
					t.Errorf("error %v (status %d), want status %d and not ErrUnavailable", err, StatusCode(err), f.wantCode)
				}
				if beats := len(cl.Heartbeats()); k.write && beats > 1 {
					t.Errorf("the write was applied %d times", beats)
				}
			})
		}
	}
}

// TestEveryNodeDown: the error wraps ErrUnavailable and each node's, and
// StatusCode is the status of the last node that answered.
func TestEveryNodeDown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		first     int  // status of the first node
		second    int  // status of the second; 0: it is down
		wantCode  int  // StatusCode
		wantInErr bool // the refused connection is in the message
	}{
		{"503 then refused", 503, 0, 503, true},
		{"502 then 503", 502, 503, 503, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cl := clienttest.New(t, 2)
			n := cl.Nodes()
			n[0].Fail(tt.first)
			if tt.second == 0 {
				n[1].Kill()
			} else {
				n[1].Fail(tt.second)
			}
			c := newClient(t, Config{URLs: cl.URLs()}, Deps{})
			err := c.Heartbeat(context.Background(), "a1", beat)
			var e *Error
			if !errors.Is(err, ErrUnavailable) || !errors.As(err, &e) || e.Status != tt.first {
				t.Errorf("every node down: %v; want ErrUnavailable wrapping each node's error", err)
			}
			if got := StatusCode(err); got != tt.wantCode {
				t.Errorf("StatusCode = %d, want %d, the last answer's", got, tt.wantCode)
			}
			if tt.wantInErr != strings.Contains(fmt.Sprint(err), "connect") {
				t.Errorf("error %v: the refused connection named: %v, want %v", err, !tt.wantInErr, tt.wantInErr)
			}
		})
	}
	if got := StatusCode(nil); got != 0 {
		t.Errorf("StatusCode(nil) = %d", got)
	}
}

func TestErrorCarriesStatusAndMessage(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 1)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "teapot here", http.StatusTeapot)
	}))
	t.Cleanup(plain.Close)
	tests := []struct {
		name, url string
		call      func(c *Client) error
		status    int
		message   string
	}{
		{"control-plane error body", cl.URLs()[0], func(c *Client) error { return c.Heartbeat(context.Background(), "a1", fillcast.Heartbeat{}) },
			400, "heartbeat: site is required"},
		{"plain text body", plain.URL, func(c *Client) error { return c.Do(context.Background(), http.MethodGet, "/x", nil, nil) },
			418, "teapot here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(newClient(t, Config{URLs: []string{tt.url}}, Deps{}))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if e.Status != tt.status || e.Message != tt.message || !strings.HasPrefix(err.Error(), "client: ") {
				t.Errorf("got %d %q (%v), want %d %q", e.Status, e.Message, err, tt.status, tt.message)
			}
		})
	}
}

// TestBodyLimits: a manifest may be larger than other answers; an answer
// over its bound is an error no other node is asked about; of an error
// answer only the start is read, however long it is.
func TestBodyLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	cl := clienttest.New(t, 1)
	big := &fillcast.Manifest{Appliance: "a1", Version: 1, Titles: []fillcast.ManifestTitle{{ID: "t1"}}}
	for i := range 40_000 {
		big.Titles[0].Files = append(big.Titles[0].Files, fillcast.File{Path: fmt.Sprintf("720p/seg-%05d.m4s", i), Size: 1})
	}
	cl.SetManifest("a1", big)
	c := newClient(t, Config{URLs: cl.URLs()}, Deps{})
	if m, _, err := c.Manifest(ctx, "a1", ""); err != nil || m == nil || len(m.Titles[0].Files) != 40_000 {
		t.Errorf("a manifest over 1 MiB: %v", err)
	}

	var asked atomic.Int64
	huge := func(status int, n int64) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/keys" { // the member refresh after an answer
				http.NotFound(w, r)
				return
			}
			asked.Add(1)
			w.WriteHeader(status)
			io.WriteString(w, `{"keys":[], "pad": "`)
			io.Copy(w, io.LimitReader(zeros{}, n)) // stops when the client hangs up
			io.WriteString(w, `"}`)
		}
	}
	tests := []struct {
		name    string
		h       http.HandlerFunc
		check   func(err error) bool
		message string
	}{
		{"keys over 1 MiB", huge(200, 2<<20), func(err error) bool {
			return err != nil && strings.Contains(err.Error(), "more than 1 MiB") && !errors.Is(err, ErrUnavailable)
		}, "an error that is not ErrUnavailable"},
		{"an error body over 64 MiB", huge(400, 70<<20), func(err error) bool {
			var e *Error
			return errors.As(err, &e) && e.Status == 400 && len(e.Message) <= 512
		}, "the 400 with the start of its body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked.Store(0)
			first, second := httptest.NewServer(tt.h), httptest.NewServer(tt.h)
			t.Cleanup(first.Close)
			t.Cleanup(second.Close)
			c := newClient(t, Config{URLs: []string{first.URL, second.URL}}, Deps{})
			_, err := c.Keys(ctx)
			if !tt.check(err) || asked.Load() != 1 {
				t.Errorf("got %v after %d nodes asked, want %s from one node", err, asked.Load(), tt.message)
			}
		})
	}
}

// zeros reads as endless '0's.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	return len(p), nil
}

// TestManifestETag: the ETag comes back with the manifest, a poll with it
// costs a 304 that keeps the manifest, and a change is fetched whole.
func TestManifestETag(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 1)
	c := newClient(t, Config{URLs: cl.URLs()}, Deps{})
	ctx := context.Background()
	if _, _, err := c.Manifest(ctx, "a1", ""); StatusCode(err) != http.StatusNotFound {
		t.Fatalf("nothing planned: %v, want a 404", err)
	}
	plan := func(v uint64) *fillcast.Manifest {
		return &fillcast.Manifest{Appliance: "a1", Version: v, Site: "s1", Titles: []fillcast.ManifestTitle{{ID: "t1", Files: []fillcast.File{{Path: "720p/seg-00001.m4s", Size: 10}}}}}
	}
	cl.SetManifest("a1", plan(1))
	m, etag, err := c.Manifest(ctx, "a1", "")
	if err != nil || m == nil || m.Version != 1 || len(m.Titles) != 1 || etag == "" {
		t.Fatalf("first fetch: %+v %q %v", m, etag, err)
	}
	m, again, err := c.Manifest(ctx, "a1", etag)
	if err != nil || m != nil || again != etag {
		t.Fatalf("unchanged: %+v %q %v; want nil, the same ETag, nil", m, again, err)
	}
	cl.SetManifest("a1", plan(2))
	m, next, err := c.Manifest(ctx, "a1", etag)
	if err != nil || m == nil || m.Version != 2 || next == etag || next == "" {
		t.Fatalf("changed: %+v %q %v", m, next, err)
	}
}

func TestKeysPlaybackAndToken(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 1)
	n := cl.Nodes()[0]
	ctx := context.Background()
	c := newClient(t, Config{URLs: cl.URLs()}, Deps{})
	keys, err := c.Keys(ctx)
	if err != nil || len(keys) != 1 || keys[0].ID != "k2" {
		t.Errorf("Keys() = %v, %v", keys, err)
	}
	anon, err := New(Config{URLs: cl.URLs()}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := anon.Playback(ctx, "t1", "dash", "")
	if err != nil || p.Title != "t1" || p.Protocol != "dash" || len(p.URLs) != 1 {
		t.Errorf("Playback() = %+v, %v", p, err)
	}
	if a, seen := n.Authorization(); !seen || a != "" {
		t.Errorf("a client without a token sent Authorization %q (a request seen: %v)", a, seen)
	}
	if _, err := anon.Keys(ctx); StatusCode(err) != http.StatusUnauthorized {
		t.Errorf("Keys() without the token: %v, want a 401", err)
	}
	st, err := c.Cluster(ctx)
	if err != nil || st.ID != "n1" || len(st.Members) != 1 || st.Members[0].HTTPURL != n.URL {
		t.Errorf("Cluster() = %+v, %v", st, err)
	}
}

// TestCancelledCallStops: a caller's cancelled context ends the call at
// once; it is not a node failure that sends it round every node.
func TestCancelledCallStops(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 2)
	n := cl.Nodes()
	c := newClient(t, Config{URLs: cl.URLs()}, Deps{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := c.Heartbeat(ctx, "a1", beat)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Errorf("cancelled call: %v, want context.Canceled and not ErrUnavailable", err)
	}
	if err := c.Do(context.Background(), "BAD METHOD", "/v1/x", nil, nil); err == nil || n[1].Calls() != 0 {
		t.Errorf("a request no node can take: %v, second node asked %d times", err, n[1].Calls())
	}
	if err := c.Heartbeat(context.Background(), "a1", beat); err != nil || len(n[0].Heartbeats()) != 1 {
		t.Errorf("after a cancelled call, the first node is still asked first: %v, %d beats there", err, len(n[0].Heartbeats()))
	}
}

// TestCloseDropsIdleConnections: the connections of the HTTP client a
// Client made for itself are closed by Close.
func TestCloseDropsIdleConnections(t *testing.T) {
	t.Parallel()
	var open atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := newClient(t, Config{URLs: []string{srv.URL}}, Deps{})
	if err := c.Do(context.Background(), http.MethodGet, "/x", nil, nil); err != nil {
		t.Fatal(err)
	}
	if open.Load() != 1 {
		t.Fatalf("%d connections open after a call, want the one kept alive", open.Load())
	}
	c.Close()
	poll.Until(t, 10*time.Second, "the idle connection closed", func() bool { return open.Load() == 0 })
}

// TestConcurrentUse: the agent and the fill executor share a client; many
// goroutines call it while the node they use dies, and every call after
// the death gets through (run with -race).
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 3)
	n := cl.Nodes()
	cl.SetManifest("a1", &fillcast.Manifest{Appliance: "a1", Version: 1})
	c := newClient(t, Config{URLs: []string{n[0].URL}, RefreshEvery: time.Millisecond}, Deps{})
	ctx := context.Background()
	if _, err := c.Cluster(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var failures atomic.Int64
	for g := range 16 {
		wg.Go(func() {
			for i := range 40 {
				if g == 0 && i == 10 {
					n[0].Kill()
				}
				var err error
				switch i % 3 {
				case 0:
					err = c.Heartbeat(ctx, "a1", beat)
				case 1:
					_, _, err = c.Manifest(ctx, "a1", "")
				case 2:
					_, err = c.Keys(ctx)
				}
				if err != nil {
					failures.Add(1)
					t.Errorf("goroutine %d call %d: %v", g, i, err)
				}
				c.Members()
			}
		})
	}
	wg.Wait()
	if got := len(n[1].Heartbeats()) + len(n[2].Heartbeats()); got == 0 {
		t.Errorf("no beat reached the surviving nodes (%d failures)", failures.Load())
	}
}

// TestWriteKeepsItsRequestID: a write that moves on to another node
// carries the same X-Request-Id there, which the control plane applies
// once; every write gets its own.
func TestWriteKeepsItsRequestID(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	node := func(status int) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut { // not the member list
				mu.Lock()
				seen = append(seen, r.Header.Get("X-Request-Id"))
				mu.Unlock()
			}
			w.WriteHeader(status)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	busy, ok := node(http.StatusServiceUnavailable), node(http.StatusNoContent)
	c := newClient(t, Config{URLs: []string{busy.URL, ok.URL}, Timeout: 2 * time.Second}, Deps{})
	for range 2 {
		if err := c.Do(context.Background(), http.MethodPut, "/v1/sites/s1", map[string]string{"kind": "isp"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// The second write goes straight to the node that answered.
	if len(seen) != 3 || seen[0] == "" || seen[0] != seen[1] || seen[2] == "" || seen[0] == seen[2] {
		t.Errorf("X-Request-Id of a write tried on two nodes, then of another: %q", seen)
	}
}
