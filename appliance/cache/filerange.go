package cache

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// FileRange is a byte range of a cached object held in a disk-tier file.
// Reads use pread,
// so any number of ranges share one descriptor safely. Handed to a TCP
// connection (Conn), WriteTo sends it with sendfile from the kernel's
// pages: the object is never copied through user space.
type FileRange struct {
	// Conn, when it is a *net.TCPConn, is where WriteTo sends the bytes
	// with sendfile, bypassing the writer it is given. The caller must have
	// flushed everything it buffered for the connection (fasthttp:
	// Response.ImmediateHeaderFlush).
	Conn net.Conn

	corked   bool
	fd       int // closed by Close; -1 once closed
	off, end int64
}

var rangePool = sync.Pool{New: func() any { return new(FileRange) }}

func newFileRange(fd int, off, end int64) *FileRange {
	r := rangePool.Get().(*FileRange)
	*r = FileRange{fd: fd, off: off, end: end}
	return r
}

// Read implements io.Reader with pread.
func (r *FileRange) Read(p []byte) (int, error) {
	if r.off >= r.end {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.end-r.off)]
	for {
		n, err := unix.Pread(r.fd, p, r.off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("cache: read object: %w", err)
		}
		if n == 0 {
			return 0, io.ErrUnexpectedEOF
		}
		r.off += int64(n)
		return n, nil
	}
}

// WriteTo sends the range to Conn with sendfile when Conn is a TCP
// connection, else copies it to w.
func (r *FileRange) WriteTo(w io.Writer) (int64, error) {
	if tc, ok := r.Conn.(*net.TCPConn); ok {
		defer r.uncork()
		return r.sendfile(tc)
	}
	return io.CopyBuffer(w, struct{ io.Reader }{r}, make([]byte, 64<<10))
}

// Cork holds back partial packets on Conn (TCP_CORK, nginx's tcp_nopush)
// until the range is sent or closed, so the response headers leave in the
// same full-sized packets as the start of the body. Call it before the
// headers are written.
func (r *FileRange) Cork() {
	if tc, ok := r.Conn.(*net.TCPConn); ok && setCork(tc, true) == nil {
		r.corked = true
	}
}

func (r *FileRange) uncork() {
	if r.corked {
		r.corked = false
		setCork(r.Conn.(*net.TCPConn), false)
	}
}

func setCork(tc *net.TCPConn, on bool) error {
	rc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	v := 0
	if on {
		v = 1
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, v) }); err != nil {
		return err
	}
	return serr
}

// SupportsBodyWriteTo tells fasthttp to hand the body to WriteTo.
func (r *FileRange) SupportsBodyWriteTo() bool { return true }

// sendfile writes the range to the socket, waiting in the runtime's
// poller when the socket buffer is full, so the connection's write
// deadline still applies.
func (r *FileRange) sendfile(c syscall.Conn) (int64, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("cache: sendfile: %w", err)
	}
	var written int64
	var serr error
	err = rc.Write(func(sock uintptr) bool {
		for r.off < r.end {
			off := r.off
			n, err := unix.Sendfile(int(sock), r.fd, &off, int(min(r.end-r.off, 1<<30)))
			if n > 0 {
				r.off += int64(n)
				written += int64(n)
			}
			switch {
			case err == unix.EAGAIN:
				return false // wait until the socket is writable
			case err == unix.EINTR:
			case err != nil:
				serr = err
				return true
			case n == 0:
				serr = io.ErrUnexpectedEOF
				return true
			}
		}
		return true
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return written, fmt.Errorf("cache: sendfile: %w", err)
	}
	return written, nil
}

// Close closes the range's descriptor and recycles the range.
func (r *FileRange) Close() error {
	if r.fd < 0 {
		return errors.New("cache: FileRange closed twice")
	}
	r.uncork()
	unix.Close(r.fd)
	*r = FileRange{fd: -1}
	rangePool.Put(r)
	return nil
}
