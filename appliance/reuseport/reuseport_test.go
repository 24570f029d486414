package reuseport

import (
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Fake process ids: the tags only need to differ.
const (
	pidA = 1001
	pidB = 1002
	pidC = 1003
)

// packet is a datagram of one of the shapes the steering program tells
// apart, with a unique payload so a test can tell which one arrived.
type packet struct {
	name string
	data []byte
}

// shortHeader is a 1-RTT packet for a connection of process pid.
func shortHeader(pid int, seq byte) packet {
	b := make([]byte, 1+CIDLen+20)
	b[0] = 0x40 | 0x01
	binary.BigEndian.PutUint32(b[1:], Tag(pid))
	b[len(b)-1] = seq
	return packet{"short header", b}
}

// longHeader is a Handshake packet (or a client's later Initial) for a
// connection of process pid: the DCID is the server's.
func longHeader(pid int, seq byte) packet {
	b := make([]byte, 6+CIDLen+20)
	b[0] = 0xc0 | 0x20 // long header, Handshake
	binary.BigEndian.PutUint32(b[1:], 1)
	b[5] = CIDLen
	binary.BigEndian.PutUint32(b[6:], Tag(pid))
	b[len(b)-1] = seq
	return packet{"long header", b}
}

// initial is a client's first Initial: a DCID the client chose.
func initial(dcidLen, seq byte) packet {
	b := make([]byte, 1200)
	b[0] = 0xc0 // long header, Initial
	binary.BigEndian.PutUint32(b[1:], 1)
	b[5] = dcidLen
	for i := range int(dcidLen) {
		b[6+i] = 0xa0 + byte(i)
	}
	b[len(b)-1] = seq
	return packet{"initial", b}
}

// expect sends p and fails unless want receives it.
func expect(t *testing.T, client net.Conn, want *Socket, wantName string, p packet) {
	t.Helper()
	if _, err := client.Write(p.data); err != nil {
		t.Fatal(err)
	}
	want.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	n, err := want.conn.Read(buf)
	for err == nil && n == 8 && binary.BigEndian.Uint32(buf) == probeMagic {
		n, err = want.conn.Read(buf) // a joining socket's probe
	}
	if err != nil {
		t.Fatalf("%s: want it on %s: %v", p.name, wantName, err)
	}
	if !bytes.Equal(buf[:n], p.data) {
		t.Fatalf("%s: %s got another datagram (%d bytes)", p.name, wantName, n)
	}
}

// firstSocket opens the socket of the first process, pidA, on a free
// loopback port, and a client connected to it.
func firstSocket(t *testing.T) (*Socket, net.Conn) {
	t.Helper()
	a, err := Listen(Config{Addr: "127.0.0.1:0", PID: pidA}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	client, err := net.Dial("udp", a.conn.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return a, client
}

// TestSteeringAcrossUpgrades runs two upgrades with the real kernel: A
// alone, B joins, B takes over, A exits, B alone, C joins and takes over.
// At each step every shape of packet must reach the right socket.
//
// The tests with real sockets are not parallel: Linux may bind two
// SO_REUSEPORT sockets of one user asked for port 0 to the same port,
// which would put two tests' sockets in one group.
func TestSteeringAcrossUpgrades(t *testing.T) {
	a, client := firstSocket(t)
	addr := a.conn.LocalAddr().String()
	var seq byte
	next := func() byte { seq++; return seq }

	for _, p := range []packet{shortHeader(pidA, next()), initial(8, next()), longHeader(pidA, next())} {
		expect(t, client, a, "A alone", p)
	}

	b, err := Listen(Config{Addr: addr, PID: pidB, ParentPID: pidA}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// B starts: everything stays with A, whatever its shape.
	for _, p := range []packet{shortHeader(pidA, next()), shortHeader(pidB, next()), initial(8, next()), initial(CIDLen, next()), longHeader(pidA, next())} {
		expect(t, client, a, "A while B starts", p)
	}

	if err := b.TakeOver(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		p    packet
		want *Socket
		name string
	}{
		{shortHeader(pidA, next()), a, "A (its connection)"},
		{longHeader(pidA, next()), a, "A (its handshake)"},
		{shortHeader(pidB, next()), b, "B (its connection)"},
		{longHeader(pidB, next()), b, "B (its handshake)"},
		{initial(8, next()), b, "B (a new connection)"},
		{initial(CIDLen, next()), b, "B (a new connection)"},
		{initial(20, next()), b, "B (a new connection)"},
	}
	for _, tt := range tests {
		expect(t, client, tt.want, tt.name, tt.p)
	}

	a.Close() // A exits: B is alone, index 0.
	for _, p := range []packet{shortHeader(pidB, next()), initial(8, next()), longHeader(pidB, next())} {
		expect(t, client, b, "B after A exited", p)
	}
	if err := b.Alone(); err != nil {
		t.Fatal(err)
	}

	c, err := Listen(Config{Addr: addr, PID: pidC, ParentPID: pidB}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, p := range []packet{shortHeader(pidB, next()), shortHeader(pidC, next()), initial(8, next())} {
		expect(t, client, b, "B while C starts", p)
	}
	if err := c.TakeOver(); err != nil {
		t.Fatal(err)
	}
	expect(t, client, b, "B (its connection)", shortHeader(pidB, next()))
	expect(t, client, c, "C (its connection)", shortHeader(pidC, next()))
	expect(t, client, c, "C (a new connection)", initial(8, next()))
}

// TestFailedUpgradeLeavesOld has the new process exit before it takes
// over: the old socket keeps everything.
func TestFailedUpgradeLeavesOld(t *testing.T) {
	a, client := firstSocket(t)
	b, err := Listen(Config{Addr: a.conn.LocalAddr().String(), PID: pidB, ParentPID: pidA}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	expect(t, client, a, "A", shortHeader(pidA, 1))
	expect(t, client, a, "A", initial(8, 2))
}

// TestJoinChecksTheOrder has a process join as if upgrading from one
// whose socket is not in the group: it is index 0, not 1, and Listen
// refuses rather than steering the wrong way.
func TestJoinChecksTheOrder(t *testing.T) {
	free, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.LocalAddr().String()
	free.Close()
	b, err := Listen(Config{Addr: addr, PID: pidB, ParentPID: pidA}, quiet)
	if err == nil {
		b.Close()
		t.Fatal("a socket alone in its group joined as the new generation")
	}
	if !strings.Contains(err.Error(), "not as expected") {
		t.Errorf("error %q does not say what is wrong", err)
	}
}

func TestCIDGenerator(t *testing.T) {
	t.Parallel()
	g := CIDGenerator{Tag: Tag(pidA)}
	seen := map[string]bool{}
	for range 100 {
		id, err := g.GenerateConnectionID()
		if err != nil {
			t.Fatal(err)
		}
		b := id.Bytes()
		if got, want := len(b), g.ConnectionIDLen(); got != want {
			t.Fatalf("length: got %d, want %d", got, want)
		}
		if got, want := binary.BigEndian.Uint32(b), Tag(pidA); got != want {
			t.Fatalf("tag: got %08x, want %08x", got, want)
		}
		if seen[string(b)] {
			t.Fatalf("connection ID %x issued twice", b)
		}
		seen[string(b)] = true
	}
}

func TestTagDiffers(t *testing.T) {
	t.Parallel()
	seen := map[uint32]int{}
	for pid := 1; pid < 1<<16; pid++ {
		tag := Tag(pid)
		if other, ok := seen[tag]; ok {
			t.Fatalf("Tag(%d) == Tag(%d)", pid, other)
		}
		seen[tag] = pid
	}
}
