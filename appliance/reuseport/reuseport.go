// Package reuseport lets two generations of the appliance process, the one
// being upgraded from and the one upgraded to, share the UDP port of
// HTTP/3 without sharing a socket. A single inherited socket would deliver
// each datagram to whichever process reads first, so the QUIC connections
// the old process still serves would lose half their packets to a process
// that does not know them.
//
// Instead each generation opens its own socket with SO_REUSEPORT on the
// same address, and a classic BPF program attached to the reuseport group
// (SO_ATTACH_REUSEPORT_CBPF) picks the socket for every datagram:
//
//   - Every connection ID this process issues starts with a 32-bit tag
//     derived from its PID (see Tag and CIDGenerator), so a packet for a
//     connection of the old process carries the old tag in its destination
//     connection ID: at byte 1 of a short-header packet, at byte 6 (after
//     the length byte) of a long-header one.
//   - Packets with the old generation's tag go to the old socket; all
//     others, among them the Initial packets of new connections (their
//     connection ID is chosen by the client), go to the newest socket.
//
// The program names sockets by their index in the group, which is the
// order they joined in, and which shifts when one closes (the kernel moves
// the last socket into the hole). The protocol keeps the group at one or
// two sockets so the indexes are known: the old socket is 0 and the new
// one 1 while both live, and the survivor is 0 alone.
//
//  1. Listen binds the new socket (index 1), checks with two probe
//     datagrams that it is index 1 indeed, and steers everything to
//     index 0: the old process keeps all traffic while the new one starts.
//  2. TakeOver, just before the new process reports ready, steers the old
//     tag to 0 and everything else to 1. The old process then stops
//     accepting, sends GOAWAY and finishes its streams on its own socket.
//  3. When the old process has exited, its socket has left the group and
//     the survivor is index 0 (meanwhile index 1 is out of range, which
//     makes the kernel fall back to its hash over the only socket). Alone
//     steers everything to 0 again, which must happen before the next
//     upgrade binds a socket, since that one becomes index 1.
//
// The appliance only upgrades once the previous process has exited, which
// keeps the group at two sockets at most. Linux only (3.9 for
// SO_REUSEPORT, 4.5 for SO_ATTACH_REUSEPORT_CBPF). Stateless resets stay
// off: a reset sent by the wrong generation would kill a live connection.
package reuseport

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/quic-go/quic-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// CIDLen is the length of the connection IDs the appliance issues: the
// 4-byte tag and 8 random bytes.
const CIDLen = 12

// Config configures a Socket. Zero values mean the defaults named.
type Config struct {
	// Addr is the UDP address to bind, e.g. "0.0.0.0:443". Required.
	Addr string
	// PID is the process whose tag the connection IDs carry. Zero means
	// this process (os.Getpid()).
	PID int
	// ParentPID is the process being upgraded from, which holds the other
	// socket of the group; zero when there is none.
	ParentPID int
}

// DefaultConfig returns a Config with the defaults filled in (Addr still
// to set).
func DefaultConfig() Config { return Config{PID: os.Getpid()} }

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	if c.Addr == "" {
		return fillcast.ConfigErrorf("reuseport", "Addr", "required: the UDP address to bind")
	}
	c = c.withDefaults()
	if c.PID < 0 {
		return fillcast.ConfigErrorf("reuseport", "PID", "%d is negative", c.PID)
	}
	if c.ParentPID < 0 || c.ParentPID == c.PID {
		return fillcast.ConfigErrorf("reuseport", "ParentPID", "%d: want another process than %d, or 0 for none", c.ParentPID, c.PID)
	}
	return nil
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.PID == 0 {
		c.PID = DefaultConfig().PID
	}
	return c
}

// Socket is this process's member of the reuseport group.
type Socket struct {
	cfg       Config
	log       *slog.Logger
	conn      *net.UDPConn
	tag       uint32
	parentTag uint32
	mu        sync.Mutex // serialises program changes
}

// Listen opens a socket with SO_REUSEPORT on cfg.Addr, joining the socket
// of the process being upgraded from, if any, and steers every datagram
// to the group's first socket: the parent's while it lives, else this one.
func Listen(cfg Config, log *slog.Logger) (*Socket, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp", cfg.Addr)
	if errors.Is(err, unix.EADDRINUSE) && cfg.ParentPID != 0 {
		return nil, fmt.Errorf("reuseport: listen udp %s: %w (the process upgraded from holds the port without SO_REUSEPORT, as fillcast did before it steered HTTP/3 by connection ID: restart once instead of upgrading)", cfg.Addr, err)
	}
	if err != nil {
		return nil, fmt.Errorf("reuseport: listen udp %s: %w", cfg.Addr, err)
	}
	s := &Socket{cfg: cfg, log: log, conn: pc.(*net.UDPConn), tag: Tag(cfg.PID)}
	if cfg.ParentPID != 0 {
		s.parentTag = Tag(cfg.ParentPID)
	}
	if err := s.attach(toFirst()); err != nil {
		pc.Close()
		return nil, err
	}
	if cfg.ParentPID != 0 {
		if err := s.probeOrder(); err != nil {
			pc.Close()
			return nil, err
		}
	}
	return s, nil
}

// probeMagic starts a probe datagram: a first byte without QUIC's fixed
// bit, which quic-go drops on sight.
const probeMagic = 0x00_66_63_70 // "\x00fcp"

// probeOrder checks the group order this package relies on, before quic-go
// reads the socket: this socket must be index 1 and the parent's index 0.
// It steers one datagram of its own to each index (every other datagram
// still goes to index 0) and sends them in order through loopback; this
// socket must get the one for index 1 and not the one for index 0. A
// kernel that ordered the group otherwise fails the upgrade here, and the
// old process keeps serving.
func (s *Socket) probeOrder() error {
	var nb [4]byte
	rand.Read(nb[:])
	nonce := binary.BigEndian.Uint32(nb[:])
	if err := s.attach(probe(nonce)); err != nil {
		return err
	}
	defer s.attach(toFirst())
	to := *s.conn.LocalAddr().(*net.UDPAddr)
	switch {
	case to.IP.IsUnspecified() && to.IP.To4() != nil:
		to.IP = net.IPv4(127, 0, 0, 1)
	case to.IP.IsUnspecified():
		to.IP = net.IPv6loopback
	}
	c, err := net.DialUDP("udp", nil, &to)
	if err != nil {
		return fmt.Errorf("reuseport: probe the group order: %w", err)
	}
	defer c.Close()
	for _, n := range []uint32{nonce ^ 1, nonce} { // index 0, then index 1
		b := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, probeMagic), n)
		if _, err := c.Write(b); err != nil {
			return fmt.Errorf("reuseport: probe the group order: %w", err)
		}
	}
	s.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	defer s.conn.SetReadDeadline(time.Time{})
	buf := make([]byte, 2048)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			return fmt.Errorf("reuseport: the group order is not as expected: this socket is not index 1 (%w)", err)
		}
		if n != 8 || binary.BigEndian.Uint32(buf) != probeMagic {
			continue // a datagram of the old process's, which this one cannot serve anyway
		}
		switch binary.BigEndian.Uint32(buf[4:]) {
		case nonce ^ 1:
			return errors.New("reuseport: the group order is not as expected: this socket is index 0, not 1 (has the old process closed its socket?)")
		case nonce:
			return nil
		}
	}
}

// Conn returns the socket. It is a *net.UDPConn, so quic-go reads it with
// recmmsg and writes with GSO.
func (s *Socket) Conn() *net.UDPConn { return s.conn }

// ConnectionIDGenerator returns the generator of this process's connection
// IDs, for quic.Transport.
func (s *Socket) ConnectionIDGenerator() quic.ConnectionIDGenerator { return CIDGenerator{Tag: s.tag} }

// TakeOver steers new connections to this socket and the old process's
// connections to its own, once this process serves. Without a parent it
// does nothing: this socket gets everything already.
func (s *Socket) TakeOver() error {
	if s.cfg.ParentPID == 0 {
		return nil
	}
	if err := s.attach(split(s.parentTag)); err != nil {
		return err
	}
	s.log.Info("reuseport: HTTP/3 steered: new connections here, the old process keeps its own",
		"tag", fmt.Sprintf("%08x", s.tag), "old_tag", fmt.Sprintf("%08x", s.parentTag))
	return nil
}

// Alone steers everything to this socket, the only one left in the group
// once the parent has exited. Call it before starting an upgrade: the next
// process's socket joins at the index TakeOver's program gives new
// connections.
func (s *Socket) Alone() error {
	return s.attach(toFirst())
}

// Close closes the socket, which leaves the group.
func (s *Socket) Close() error { return s.conn.Close() }

// attach replaces the group's program.
func (s *Socket) attach(ins []bpf.Instruction) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	prog, err := bpf.Assemble(ins)
	if err != nil {
		return fmt.Errorf("reuseport: assemble: %w", err)
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	raw, err := s.conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("reuseport: %w", err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF,
			&unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]})
	}); err != nil {
		return fmt.Errorf("reuseport: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("reuseport: attach the steering program (SO_ATTACH_REUSEPORT_CBPF, Linux 4.5+): %w", serr)
	}
	return nil
}

// Tag is the 32-bit prefix of the connection IDs of process pid: the PID
// times an odd constant, a bijection, so two live processes never share a
// tag. It does not spell the PID out but hides nothing from whoever knows
// the constant; like the server IDs of QUIC-LB's plaintext scheme, it
// tells an observer which process serves a connection.
func Tag(pid int) uint32 { return uint32(pid) * 0x9e3779b1 }

// CIDGenerator issues connection IDs of CIDLen bytes that start with Tag.
type CIDGenerator struct{ Tag uint32 }

var _ quic.ConnectionIDGenerator = CIDGenerator{}

// GenerateConnectionID implements quic.ConnectionIDGenerator.
func (g CIDGenerator) GenerateConnectionID() (quic.ConnectionID, error) {
	var b [CIDLen]byte
	binary.BigEndian.PutUint32(b[:4], g.Tag)
	rand.Read(b[4:]) // never fails (crypto/rand, Go 1.24+)
	return quic.ConnectionIDFromBytes(b[:]), nil
}

// ConnectionIDLen implements quic.ConnectionIDGenerator.
func (CIDGenerator) ConnectionIDLen() int { return CIDLen }

// probe steers the probe datagram carrying nonce to index 1 and every
// other datagram to index 0.
func probe(nonce uint32) []bpf.Instruction {
	return []bpf.Instruction{
		bpf.LoadAbsolute{Off: 0, Size: 4},                              // 0
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: probeMagic, SkipFalse: 3}, // 1: not a probe: 5
		bpf.LoadAbsolute{Off: 4, Size: 4},                              // 2
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: nonce, SkipFalse: 1},      // 3: another probe: 5
		bpf.RetConstant{Val: 1},                                        // 4
		bpf.RetConstant{Val: 0},                                        // 5
	}
}

// toFirst steers every datagram to index 0.
func toFirst() []bpf.Instruction { return []bpf.Instruction{bpf.RetConstant{Val: 0}} }

// split steers datagrams whose destination connection ID carries oldTag
// to index 0 and all others to index 1. A datagram too short for a load
// ends the program with 0: garbage goes to the old process, which drops it.
func split(oldTag uint32) []bpf.Instruction {
	return []bpf.Instruction{
		bpf.LoadAbsolute{Off: 0, Size: 1},                          // 0: first byte
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x80, SkipTrue: 2},  // 1: long header: 4
		bpf.LoadAbsolute{Off: 1, Size: 4},                          // 2: short: DCID[0:4]
		bpf.Jump{Skip: 3},                                          // 3: to 7
		bpf.LoadAbsolute{Off: 5, Size: 1},                          // 4: long: DCID length
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: CIDLen, SkipFalse: 3}, // 5: a client's DCID: 9
		bpf.LoadAbsolute{Off: 6, Size: 4},                          // 6: DCID[0:4]
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: oldTag, SkipFalse: 1}, // 7
		bpf.RetConstant{Val: 0},                                    // 8: the old socket
		bpf.RetConstant{Val: 1},                                    // 9: the newest socket
	}
}
