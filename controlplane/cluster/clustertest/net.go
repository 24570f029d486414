// Package clustertest is the network of an in-process control-plane
// cluster under test, which a test cuts and heals as a partition would:
// raft runs over raft's in-memory transports, and node-to-node HTTP
// (forwarded writes, read indexes) through clients that fail while
// either end is cut off.
package clustertest

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// ErrPartitioned is what a cut-off node's HTTP calls fail with.
var ErrPartitioned = errors.New("clustertest: partitioned")

// Net is the network of nodes 0 to size-1, raft addresses n1, n2, ….
type Net struct {
	trans []*raft.InmemTransport
	mu    sync.Mutex
	cut   map[int]bool
	hosts map[string]int // a node's HTTP host: its index
}

// New returns a Net of size nodes, all connected.
func New(size int) *Net {
	n := &Net{cut: map[int]bool{}, hosts: map[string]int{}}
	for i := range size {
		_, tr := raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("n%d", i+1)))
		n.trans = append(n.trans, tr)
	}
	n.connect()
	return n
}

// Transport is node i's raft transport.
func (n *Net) Transport(i int) *raft.InmemTransport { return n.trans[i] }

// SetURL records node i's HTTP URL, so that calls to it are cut with it.
func (n *Net) SetURL(i int, u string) {
	p, err := url.Parse(u)
	if err != nil {
		panic(err)
	}
	n.mu.Lock()
	n.hosts[p.Host] = i
	n.mu.Unlock()
}

// Client is node i's HTTP client to the others.
func (n *Net) Client(i int) *http.Client {
	return &http.Client{Timeout: 2 * time.Second, Transport: gate{net: n, from: i}}
}

// Isolate cuts node i off from every other node, raft and HTTP.
func (n *Net) Isolate(i int) {
	n.IsolateRaft(i)
	n.mu.Lock()
	n.cut[i] = true
	n.mu.Unlock()
}

// IsolateRaft cuts node i's raft off from the others', leaving its HTTP.
func (n *Net) IsolateRaft(i int) {
	n.trans[i].DisconnectAll()
	for j := range n.trans {
		if j != i {
			n.trans[j].Disconnect(n.trans[i].LocalAddr())
		}
	}
}

// Heal reconnects every node.
func (n *Net) Heal() {
	n.connect()
	n.mu.Lock()
	clear(n.cut)
	n.mu.Unlock()
}

func (n *Net) connect() {
	for i := range n.trans {
		for j := range n.trans {
			if i != j {
				n.trans[i].Connect(n.trans[j].LocalAddr(), n.trans[j])
			}
		}
	}
}

// gate is node from's HTTP transport.
type gate struct {
	net  *Net
	from int
}

func (g gate) RoundTrip(r *http.Request) (*http.Response, error) {
	g.net.mu.Lock()
	to, known := g.net.hosts[r.URL.Host]
	cut := g.net.cut[g.from] || known && g.net.cut[to]
	g.net.mu.Unlock()
	if cut {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, ErrPartitioned
	}
	return http.DefaultTransport.RoundTrip(r)
}
