package appliance

import (
	"context"
	"net"

	"github.com/quic-go/quic-go"
)

// During a zero-downtime upgrade (appliance/upgrade) two processes serve
// for a while: the new one from the moment it is ready, the old one until
// its in-flight responses are done. The TCP listener is shared, each
// process has its own HTTP/3 socket (appliance/reuseport), and both write
// into the same cache directory.

// Listeners are the sockets an appliance serves on. The caller opens them
// (through the upgrader, so that they outlive the process) and closes the
// UDP socket after Serve returns.
type Listeners struct {
	// TCP carries HTTP/1.1 (over TLS when a certificate is configured).
	TCP net.Listener
	// UDP carries HTTP/3; nil unless Config.H3. A *net.UDPConn lets
	// quic-go batch reads and use GSO.
	UDP net.PacketConn
	// ConnectionIDs issues the HTTP/3 connection IDs; nil means random
	// ones. During an upgrade appliance/reuseport steers datagrams to the
	// process that owns a connection by them.
	ConnectionIDs quic.ConnectionIDGenerator
	// ParentExited, when set, is closed once the process upgraded from
	// has exited; the appliance then indexes the cache objects that
	// process wrote while it drained.
	ParentExited <-chan struct{}
}

// adoptAfter waits for the process upgraded from to exit, then indexes
// the objects it wrote into the disk cache after this one had built its
// index (it keeps filling while it drains).
func (a *Appliance) adoptAfter(ctx context.Context, parentExited <-chan struct{}) {
	select {
	case <-ctx.Done():
		return
	case <-parentExited:
	}
	n, err := a.cache.Adopt(ctx)
	if ctx.Err() != nil {
		return // shutting down: the next start indexes the whole directory anyway
	}
	if err != nil {
		a.log.Warn("appliance: adopting the previous process's cache objects", "err", err)
		return
	}
	a.log.Info("appliance: adopted the cache objects the previous process wrote while it drained", "objects", n)
}
