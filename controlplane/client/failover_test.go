package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/client/clienttest"
)

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
