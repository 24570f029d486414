package cluster

// The raft transport, over TCP or mutual TLS, and node-to-node HTTP
// over TLS (docs/design.md §3.3.1).

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/fillcast/fillcast/auth/pki"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// handshakeTimeout bounds the TLS handshake of a raft connection, both
// ways: a peer that connects and says nothing holds a goroutine no
// longer.
const handshakeTimeout = 10 * time.Second

// openTransport listens on Config.RaftAddr: plain TCP, or mutual TLS
// with Config.TLS, when it also makes the node-to-node HTTP client unless
// Deps gave one.
func (n *Node) openTransport(hl hclog.Logger) (*raft.NetworkTransport, error) {
	cfg := n.cfg
	addr, err := net.ResolveTCPAddr("tcp", cfg.RaftAddr)
	if err != nil {
		return nil, fmt.Errorf("cluster: raft address %q: %w", cfg.RaftAddr, err)
	}
	var advertise net.Addr = addr
	if addr.Port == 0 {
		advertise = nil // advertise the port the listener got
	}
	if cfg.TLS.IsZero() {
		nt, err := raft.NewTCPTransportWithLogger(cfg.RaftAddr, advertise, 3, 10*time.Second, hl)
		if err != nil {
			return nil, fmt.Errorf("cluster: raft transport: %w", err)
		}
		return nt, nil
	}
	server, client, err := peerTLS(cfg.TLS, cfg.ID)
	if err != nil {
		return nil, err
	}
	stream, err := listenTLS(cfg.RaftAddr, advertise, server, client, n.log)
	if err != nil {
		return nil, err
	}
	if n.d.Client == nil {
		n.d.Client, n.owned = peerClient(client)
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: stream, MaxPool: 3, Timeout: 10 * time.Second, Logger: hl}), nil
}

// peerTLS is the server and client configuration of node-to-node
// traffic: both complete a handshake only with a peer holding a node
// certificate from the CA.
func peerTLS(f pki.Files, id string) (server, client *tls.Config, err error) {
	s, c, err := pki.LoadNode(f, id)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: %w", err)
	}
	return pki.RequirePeer(s, pki.RoleNode), pki.RequirePeer(c, pki.RoleNode), nil
}

// tlsStream is raft's StreamLayer over mutual TLS: it accepts only peers
// whose certificate chains to the cluster CA and names a node, and dials
// presenting this node's certificate and checking the peer's the same
// way. A refused peer is logged; raft sees a connection that fails on
// its first read.
type tlsStream struct {
	ln        net.Listener // TCP
	advertise net.Addr
	server    *tls.Config
	client    *tls.Config
	log       *slog.Logger
	ctx       context.Context // ends handshakes under way when the stream closes
	cancel    context.CancelFunc
}

var _ raft.StreamLayer = (*tlsStream)(nil)

// listenTLS listens on addr for raft over TLS. advertise, when set, is
// the address other nodes are told; it must name a host they can reach.
func listenTLS(addr string, advertise net.Addr, server, client *tls.Config, log *slog.Logger) (*tlsStream, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cluster: raft transport: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &tlsStream{ln: ln, advertise: advertise, server: server, client: client, log: log, ctx: ctx, cancel: cancel}
	if a, ok := s.Addr().(*net.TCPAddr); !ok || a.IP == nil || a.IP.IsUnspecified() {
		s.Close()
		return nil, fmt.Errorf("cluster: raft address %s cannot be advertised: give the host other nodes reach", s.Addr())
	}
	return s, nil
}

// Accept returns the next connection; its handshake happens on its first
// read or write, in raft's goroutine for that connection, so a slow or
// refused peer holds up no other.
func (s *tlsStream) Accept() (net.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil {
		return nil, err
	}
	return &acceptedConn{Conn: tls.Server(c, s.server), s: s}, nil
}

// Dial connects to a node's raft address, within timeout.
func (s *tlsStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(s.ctx, timeout)
	defer cancel()
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: s.client}
	c, err := d.DialContext(ctx, "tcp", string(address))
	if err != nil {
		return nil, fmt.Errorf("cluster: raft dial %s: %w", address, err)
	}
	return c, nil
}

// Close stops accepting and ends handshakes under way.
func (s *tlsStream) Close() error {
	s.cancel()
	return s.ln.Close()
}

// Addr is the advertised address, or the listener's.
func (s *tlsStream) Addr() net.Addr {
	if s.advertise != nil {
		return s.advertise
	}
	return s.ln.Addr()
}

// acceptedConn is an incoming raft connection whose handshake runs,
// bounded by handshakeTimeout, on its first use.
type acceptedConn struct {
	*tls.Conn
	s    *tlsStream
	once sync.Once
	err  error
}

func (c *acceptedConn) handshake() error {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(c.s.ctx, handshakeTimeout)
		defer cancel()
		if c.err = c.HandshakeContext(ctx); c.err != nil {
			if c.s.ctx.Err() == nil { // not the stream closing
				c.s.log.Warn("cluster: refused a raft connection", "remote", c.RemoteAddr().String(), "err", c.err)
			}
			c.Conn.Close()
			return
		}
		cs := c.ConnectionState()
		_, id, _ := pki.PeerIdentity(&cs)
		c.s.log.Debug("cluster: raft connection", "remote", c.RemoteAddr().String(), "node", id)
	})
	return c.err
}

func (c *acceptedConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *acceptedConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// peerClient is the HTTP client of node-to-node calls over TLS: it
// presents this node's certificate and talks only to nodes.
func peerClient(client *tls.Config) (*http.Client, *http.Transport) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = client
	return &http.Client{Timeout: 10 * time.Second, Transport: t}, t
}
