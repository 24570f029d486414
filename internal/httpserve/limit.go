package httpserve

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// DefaultMaxConnsPerClient is the cap on one client address's open
// connections that servers use unless configured otherwise: far above
// what a browser (6 per host), a player or an appliance opens, far below
// what exhausts a node's file descriptors.
const DefaultMaxConnsPerClient = 256

// ClientLimiter is a net.Listener that lets each client address hold at
// most a fixed number of open connections; see LimitPerClient.
type ClientLimiter struct {
	net.Listener
	max     int
	exempt  []netip.Prefix
	refused atomic.Uint64

	mu   sync.Mutex
	open map[netip.Addr]int
}

var _ net.Listener = (*ClientLimiter)(nil)

// LimitPerClient returns ln with at most max open connections from each
// client address; a connection beyond it is closed as soon as it is
// accepted, before anything is read or written on it. Closing, rather
// than answering 503, works under any protocol (TLS included) and costs
// the server nothing an attacker can make it wait on: a write to a
// client that does not read could block. A client sees its connection
// reset or closed; one within its cap never notices.
//
// The address is the TCP peer's, not X-Forwarded-For: connections from
// the exempt prefixes (trusted proxies, whose many connections carry
// many clients) are not counted. IPv6 clients are counted by /64, the
// block one subscriber usually has. max <= 0 means no cap.
//
// Wrap the plain listener, under any TLS: tls.NewListener(LimitPerClient(ln, n)).
func LimitPerClient(ln net.Listener, max int, exempt ...netip.Prefix) *ClientLimiter {
	return &ClientLimiter{Listener: ln, max: max, exempt: exempt, open: map[netip.Addr]int{}}
}

// Accept waits for the next connection within its client's cap, closing
// the ones beyond it.
func (l *ClientLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || l.max <= 0 {
			return c, err
		}
		key, counted := l.clientOf(c.RemoteAddr())
		if !counted {
			return c, nil
		}
		if l.take(key) {
			return &limitedConn{Conn: c, l: l, key: key}, nil
		}
		l.refused.Add(1)
		c.Close()
	}
}

// Refused returns how many connections were closed for being over their
// client's cap.
func (l *ClientLimiter) Refused() uint64 { return l.refused.Load() }

// clientOf returns the key a connection from a is counted under, and
// false for a connection that is not counted: from an exempt prefix, or
// not from an IP address.
func (l *ClientLimiter) clientOf(a net.Addr) (netip.Addr, bool) {
	var ip netip.Addr
	if tcp, ok := a.(*net.TCPAddr); ok {
		ip = tcp.AddrPort().Addr().Unmap()
	} else if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		ip = ap.Addr().Unmap()
	} else {
		return netip.Addr{}, false
	}
	for _, p := range l.exempt {
		if p.Contains(ip) {
			return netip.Addr{}, false
		}
	}
	if ip.Is6() {
		ip = netip.PrefixFrom(ip, 64).Masked().Addr()
	}
	return ip, true
}

// take counts a new connection of key, unless key is at its cap.
func (l *ClientLimiter) take(key netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key] >= l.max {
		return false
	}
	l.open[key]++
	return true
}

// release uncounts a closed connection of key.
func (l *ClientLimiter) release(key netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key] <= 1 {
		delete(l.open, key) // the map holds only clients with connections
		return
	}
	l.open[key]--
}

// limitedConn is a counted connection: closing it, however many times,
// uncounts it once.
type limitedConn struct {
	net.Conn
	l      *ClientLimiter
	key    netip.Addr
	closed atomic.Bool
}

// Close closes the connection and gives its slot back, the first time.
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.l.release(c.key)
	}
	return err
}

// CloseWrite half-closes the connection if it can: net/http does so to
// let a client read an error answer before the connection goes.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom keeps the zero-copy path (sendfile, splice) of the wrapped
// connection for responses copied from files.
func (c *limitedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}
