package h3

import (
	"log/slog"
	"net"
	"syscall"
)

// Buffers reports the UDP socket buffer sizes the kernel granted.
type Buffers struct {
	Want, Read, Write int
	// Forced is true when SO_RCVBUFFORCE/SO_SNDBUFFORCE (root or
	// CAP_NET_ADMIN) got past net.core.rmem_max/wmem_max.
	Forced bool
}

// SetBuffers asks for want bytes of receive and send buffer on pc, first
// within the sysctl limits and then, as root, past them, and logs one clear
// line when the kernel still grants less: QUIC throughput collapses when
// the receive buffer drops packets. It never fails: a small buffer is slow,
// not broken.
func SetBuffers(pc net.PacketConn, want int, log *slog.Logger) Buffers {
	b := Buffers{Want: want}
	sc, ok := pc.(syscall.Conn)
	if !ok {
		log.Warn("h3: cannot size the UDP socket buffers: not a UDP socket", "type", pc)
		return b
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		log.Warn("h3: cannot size the UDP socket buffers", "err", err)
		return b
	}
	raw.Control(func(fd uintptr) {
		b.Read, b.Forced = setBuf(int(fd), syscall.SO_RCVBUF, syscall.SO_RCVBUFFORCE, want)
		var f bool
		b.Write, f = setBuf(int(fd), syscall.SO_SNDBUF, syscall.SO_SNDBUFFORCE, want)
		b.Forced = b.Forced || f
	})
	if b.Read < want || b.Write < want {
		log.Warn("h3: the OS caps the UDP buffers below what QUIC needs: throughput will suffer; raise the limits with `sysctl -w net.core.rmem_max=N net.core.wmem_max=N` (N >= want) or run with CAP_NET_ADMIN",
			"want_bytes", want, "receive_bytes", b.Read, "send_bytes", b.Write)
	} else {
		log.Info("h3: UDP buffers sized", "receive_bytes", b.Read, "send_bytes", b.Write, "forced_past_sysctl", b.Forced)
	}
	return b
}

// setBuf sets one buffer and returns what the kernel grants. Linux
// reports twice the size asked for (bookkeeping overhead), so the value
// read back is halved before comparing.
func setBuf(fd, opt, force, want int) (int, bool) {
	if got := getBuf(fd, opt); got >= want {
		return got, false
	}
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, opt, want)
	if got := getBuf(fd, opt); got >= want {
		return got, false
	}
	if syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, force, want) == nil {
		return getBuf(fd, opt), true
	}
	return getBuf(fd, opt), false
}

func getBuf(fd, opt int) int {
	v, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, opt)
	if err != nil {
		return 0
	}
	return v / 2
}
