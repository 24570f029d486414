package server

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"

	"github.com/fillcast/fillcast/appliance/cache"
)

// streamChunk is how much of a disk object tlsBody reads at a time: two
// full TLS records (16 KiB of plaintext each). Each connection writing
// such a body holds one chunk while it writes, so a slow client costs
// this much memory for as long as it takes to read a chunk.
const streamChunk = 32 << 10

// tlsBody sends a disk-tier range over TLS, where every byte passes
// through user space to be encrypted and sendfile cannot help. It reads
// the file in chunks of two full records and writes each chunk straight
// through fasthttp's (then empty) write buffer, so the connection seals
// 16 KiB records. Left to itself, fasthttp would copy the range through
// its 4 KiB buffer, and TLS would send a 4 KiB record, with a write
// system call, per buffer: four times the records and the calls, and
// more than twice the CPU per byte. The response headers wait in the
// write buffer and leave with the start of the body. (A memory object
// needs no help: fasthttp hands its bytes to the connection in one
// write, which TLS cuts into full records.)
type tlsBody struct {
	file *cache.FileRange
	buf  [streamChunk]byte
}

var tlsBodyPool = sync.Pool{New: func() any { return new(tlsBody) }}

// newTLSBody returns a body sending file, which it closes, when c is a
// TLS connection, and nil otherwise.
func newTLSBody(c net.Conn, file *cache.FileRange) *tlsBody {
	if _, ok := c.(*tls.Conn); !ok {
		return nil
	}
	b := tlsBodyPool.Get().(*tlsBody)
	b.file = file
	return b
}

// Read reads the range; fasthttp uses WriteTo.
func (b *tlsBody) Read(p []byte) (int, error) { return b.file.Read(p) }

// SupportsBodyWriteTo tells fasthttp to hand the body to WriteTo.
func (b *tlsBody) SupportsBodyWriteTo() bool { return true }

// WriteTo copies the range to w, fasthttp's write buffer for the
// connection, a chunk at a time.
func (b *tlsBody) WriteTo(w io.Writer) (int64, error) {
	var sent int64
	for {
		n, err := b.file.Read(b.buf[:])
		if n > 0 {
			m, werr := w.Write(b.buf[:n])
			sent += int64(m)
			if werr != nil {
				return sent, werr
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			return sent, nil
		case err != nil:
			return sent, err
		}
	}
}

// Close closes the range and recycles the body.
func (b *tlsBody) Close() error {
	err := b.file.Close()
	b.file = nil
	tlsBodyPool.Put(b)
	return err
}
