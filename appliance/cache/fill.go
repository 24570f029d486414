package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// fill is one upstream fetch that any number of clients wait on: request
// coalescing. The first client starts it; the body is spooled (in memory
// for objects up to Config.MaxSpoolBytes, else in the disk tier's
// temporary file) and every client streams from the spool as bytes arrive,
// so none waits for the whole object.
type fill struct {
	key string

	ready chan struct{} // closed once meta is known or the fetch failed
	meta  Meta          // valid after ready, unless err
	err   error         // set before ready closes

	mu       sync.Mutex
	written  int64
	progress chan struct{} // closed and replaced whenever written grows or the fill ends
	done     bool
	failErr  error
	refs     int
	purged   bool
	spool    io.ReaderAt
	release  func() // frees the spool when refs reach zero
	// cut counts the clients that saw the fill break off (the cache's
	// Stats.StreamsCut); nil counts nothing.
	cut *atomic.Int64
}

func newFill(key string) *fill {
	return &fill{key: key, ready: make(chan struct{}), progress: make(chan struct{}), refs: 1}
}

// advance publishes n more spooled bytes.
func (f *fill) advance(n int64) {
	f.mu.Lock()
	f.written += n
	close(f.progress)
	f.progress = make(chan struct{})
	f.mu.Unlock()
}

// finish ends the fill; err nil means the whole body is spooled.
func (f *fill) finish(err error) {
	f.mu.Lock()
	f.done = true
	f.failErr = err
	close(f.progress)
	f.progress = make(chan struct{})
	f.mu.Unlock()
}

func (f *fill) acquire() {
	f.mu.Lock()
	f.refs++
	f.mu.Unlock()
}

func (f *fill) unref() {
	f.mu.Lock()
	f.refs--
	last := f.refs == 0
	f.mu.Unlock()
	if last && f.release != nil {
		f.release()
	}
}

// errFillFailed is what a client streaming a fill sees when the upstream
// body broke off: the response is cut short, never completed with wrong
// bytes.
var errFillFailed = errors.New("cache: upstream fill failed")

// fillReader streams bytes [off, end) of a fill to one client. end < 0
// means to the end of an object of unknown length.
type fillReader struct {
	f      *fill
	ctx    context.Context
	off    int64
	end    int64
	closed bool
	cut    bool // the fill broke off under this reader: counted once
}

func (r *fillReader) Read(p []byte) (int, error) {
	for {
		if r.end >= 0 && r.off >= r.end {
			return 0, io.EOF
		}
		f := r.f
		f.mu.Lock()
		written, done, ferr, wait := f.written, f.done, f.failErr, f.progress
		f.mu.Unlock()
		if r.off < written {
			n := int64(len(p))
			n = min(n, written-r.off)
			if r.end >= 0 {
				n = min(n, r.end-r.off)
			}
			m, err := f.spool.ReadAt(p[:n], r.off)
			r.off += int64(m)
			if err != nil && !(errors.Is(err, io.EOF) && int64(m) == n) {
				return m, fmt.Errorf("cache: read spool of %s: %w", f.key, err)
			}
			return m, nil
		}
		if done {
			if ferr != nil {
				if !r.cut && f.cut != nil {
					r.cut = true
					f.cut.Add(1)
				}
				return 0, fmt.Errorf("%w: %s: %v", errFillFailed, f.key, ferr)
			}
			return 0, io.EOF
		}
		select {
		case <-wait:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
}

// Close releases the reader's hold on the fill's spool.
func (r *fillReader) Close() error {
	if !r.closed {
		r.closed = true
		r.f.unref()
	}
	return nil
}

// memSpool is an in-memory spool of known length.
type memSpool []byte

func (m memSpool) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m)) {
		return 0, io.EOF
	}
	return copy(p, m[off:]), nil
}
