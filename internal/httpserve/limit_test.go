package httpserve

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/poll"
)

// acceptor accepts on a limited listener in the background and hands
// over what it accepted.
type acceptor struct {
	l        *ClientLimiter
	accepted chan net.Conn
}

func newAcceptor(t *testing.T, max int, exempt ...netip.Prefix) *acceptor {
	t.Helper()
	a := &acceptor{l: LimitPerClient(listen(t), max, exempt...), accepted: make(chan net.Conn, 16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := a.l.Accept()
			if err != nil {
				return
			}
			a.accepted <- c
		}
	}()
	t.Cleanup(func() {
		a.l.Close()
		<-done
		close(a.accepted)
		for c := range a.accepted {
			c.Close()
		}
	})
	return a
}

// dial connects to the listener and reports whether the connection was
// kept (it reached Accept's caller, which is returned) or refused (the
// server closed it).
func (a *acceptor) dial(t *testing.T) (server net.Conn, refused bool) {
	t.Helper()
	c, err := net.Dial("tcp", a.l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	closed := make(chan error, 1)
	go func() {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := c.Read(make([]byte, 1))
		closed <- err
	}()
	select {
	case s := <-a.accepted:
		return s, false
	case err := <-closed:
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("a connection neither accepted nor closed in 10 s")
		}
		return nil, true
	}
}

// TestLimitPerClient opens real connections from 127.0.0.1 and checks
// which the limited listener keeps.
func TestLimitPerClient(t *testing.T) {
	t.Parallel()
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	type step struct {
		dial        bool // else close the oldest kept connection (twice)
		wantRefused bool
	}
	dial := func(refused bool) step { return step{dial: true, wantRefused: refused} }
	closeOldest := step{}
	tests := []struct {
		name   string
		max    int
		exempt []netip.Prefix
		steps  []step
	}{
		{"refused over the cap", 2, nil, []step{dial(false), dial(false), dial(true), dial(true)}},
		{"a connection closed twice frees one place", 2, nil, []step{dial(false), dial(false), dial(true), closeOldest, dial(false), dial(true)}},
		{"every close frees a place", 2, nil, []step{dial(false), dial(false), closeOldest, closeOldest, dial(false), dial(false), dial(true)}},
		{"no cap", 0, nil, []step{dial(false), dial(false), dial(false)}},
		{"exempt prefix", 1, []netip.Prefix{loopback}, []step{dial(false), dial(false), dial(false)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newAcceptor(t, tt.max, tt.exempt...)
			var kept []net.Conn
			refused := 0
			for i, s := range tt.steps {
				if !s.dial {
					kept[0].Close()
					kept[0].Close()
					kept = kept[1:]
					continue
				}
				c, gotRefused := a.dial(t)
				if gotRefused != s.wantRefused {
					t.Fatalf("step %d: refused = %v, want %v", i, gotRefused, s.wantRefused)
				}
				if gotRefused {
					refused++
				} else {
					kept = append(kept, c)
				}
			}
			if got := a.l.Refused(); got != uint64(refused) {
				t.Errorf("Refused() = %d, want %d", got, refused)
			}
		})
	}
}

// TestClientOf: the key a peer is counted under.
func TestClientOf(t *testing.T) {
	t.Parallel()
	l := LimitPerClient(nil, 1, netip.MustParsePrefix("10.0.0.0/8"))
	tests := []struct {
		addr        net.Addr
		want        string
		wantCounted bool
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5}, "192.0.2.7", true},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 5}, "192.0.2.7", true},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa::1"), Port: 5}, "2001:db8:1:2::", true},
		{&net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 5}, "invalid IP", false},
		{&net.UnixAddr{Name: "@", Net: "unix"}, "invalid IP", false},
	}
	for _, tt := range tests {
		got, counted := l.clientOf(tt.addr)
		if got.String() != tt.want || counted != tt.wantCounted {
			t.Errorf("clientOf(%v) = %v, %v; want %s, %v", tt.addr, got, counted, tt.want, tt.wantCounted)
		}
	}
}

// TestServeLimitedPerClient: an HTTP server behind the limit serves the
// connections within a client's cap, refuses the next, and serves it
// again once one of them is closed.
func TestServeLimitedPerClient(t *testing.T) {
	t.Parallel()
	ln := LimitPerClient(listen(t), 2)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		ReadHeaderTimeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, hs, ln, 10*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	// Each client has a connection of its own, kept alive after its
	// request.
	newClient := func() *http.Client {
		return &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}, Timeout: 10 * time.Second}
	}
	get := func(c *http.Client) error {
		resp, err := c.Get("http://" + ln.Addr().String())
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return err
	}
	first, second, third := newClient(), newClient(), newClient()
	for i, c := range []*http.Client{first, second} {
		if err := get(c); err != nil {
			t.Fatalf("client %d within the cap: %v", i, err)
		}
	}
	if err := get(third); err == nil {
		t.Fatal("a third connection from one address was served, want it refused")
	}
	first.CloseIdleConnections()
	// The server notices the close when it next reads.
	poll.Until(t, 10*time.Second, "the third client to be served once the first left", func() bool { return get(third) == nil })
	if got := ln.Refused(); got < 1 {
		t.Errorf("Refused() = %d, want at least 1", got)
	}
}
