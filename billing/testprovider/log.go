package testprovider

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// The log: opening it, locking it around each call, catching up with what
// other providers appended, and appending to it.

// readChunk is how much of the log is read at a time when catching up, so
// that replaying a long log does not hold it all in memory.
const readChunk = 256 << 10

// openLocked opens and replays the log unless it is open already.
func (p *Provider) openLocked() (err error) {
	if p.closed {
		return ErrClosed
	}
	if p.broken != nil {
		return p.broken
	}
	if p.f != nil {
		return nil
	}
	if err := os.MkdirAll(p.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("testprovider: open: %w", err)
	}
	path := p.path()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("testprovider: open: %w", err)
	}
	if err := lockFile(f, true); err != nil {
		f.Close()
		return fmt.Errorf("testprovider: lock %s: %w", path, err)
	}
	p.f, p.off, p.st = f, 0, newState()
	err = p.catchUp(true)
	// Make the file's existence, size and any truncation durable before
	// the first record is acknowledged.
	if err == nil {
		if serr := f.Sync(); serr != nil {
			err = fmt.Errorf("testprovider: sync %s: %w", path, serr)
		}
	}
	if err == nil {
		if serr := syncDir(p.cfg.Dir); serr != nil {
			err = fmt.Errorf("testprovider: sync %s: %w", p.cfg.Dir, serr)
		}
	}
	if err == nil {
		if uerr := unlockFile(f); uerr != nil {
			err = fmt.Errorf("testprovider: unlock %s: %w", path, uerr)
		}
	}
	if err != nil {
		f.Close() // drops the lock, if still held
		p.f, p.off, p.st, p.buf = nil, 0, state{}, nil
		return err
	}
	return nil
}

// acquire opens the log if need be, locks it, exclusively for a call that
// may append, and brings p's state up to date with it. On success the
// caller must call release when done.
func (p *Provider) acquire(exclusive bool) error {
	if err := p.openLocked(); err != nil {
		return err
	}
	if err := lockFile(p.f, exclusive); err != nil {
		return fmt.Errorf("testprovider: lock %s: %w", p.path(), err)
	}
	if err := p.catchUp(exclusive); err != nil {
		p.release()
		return err
	}
	return nil
}

// release unlocks the log. Should that fail, it closes the file, which
// surely drops the lock, so that the other providers are not blocked for
// ever; p then refuses every call. The call that released has its answer
// already, on disk if it wrote one, so it is not made to fail.
func (p *Provider) release() {
	if err := unlockFile(p.f); err != nil {
		p.broken = fmt.Errorf("testprovider: unlocking the log failed earlier, close the provider and open a new one: %w", err)
		p.f.Close()
		p.f = nil
	}
}

// catchUp replays the records appended to the log since p last read it:
// only the bytes past p.off, and nothing at all when the size is p.off. It
// must be called with the log locked.
//
// An unterminated last line is torn: a writer holds the exclusive lock
// until its line is whole and synced, so the lock being ours means that
// the line's writer died, or failed, before its call returned, and nobody
// was told of the record. Under the exclusive lock the torn line is cut,
// so that the next record is appended after a whole line; under the shared
// one it is left for the next writer to cut.
func (p *Provider) catchUp(exclusive bool) error {
	size, err := p.f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("testprovider: size of %s: %w", p.path(), err)
	}
	if size < p.off {
		return fmt.Errorf("testprovider: %s shrank from %d to %d bytes: only the test provider may write it", p.path(), p.off, size)
	}
	chunk := int64(readChunk)
	for p.off < size {
		want := min(size-p.off, chunk)
		if int64(cap(p.buf)) < want {
			p.buf = make([]byte, want)
		}
		buf := p.buf[:want]
		if _, err := p.f.ReadAt(buf, p.off); err != nil {
			return fmt.Errorf("testprovider: read %s: %w", p.path(), err)
		}
		n, err := p.st.applyLines(buf)
		p.off += int64(n)
		if err != nil {
			return fmt.Errorf("testprovider: replay %s: %w", p.path(), err)
		}
		if n == 0 {
			if p.off+want == size {
				break // the torn tail
			}
			chunk *= 2 // a line longer than chunk
		}
	}
	if cap(p.buf) > readChunk {
		p.buf = nil // do not keep what replaying a long line needed
	}
	if p.off < size && exclusive {
		if err := p.f.Truncate(p.off); err != nil {
			return fmt.Errorf("testprovider: truncate torn record in %s: %w", p.path(), err)
		}
	}
	return nil
}

// appendLocked writes rec as one line at the end of the log and fsyncs
// it; the caller holds the exclusive lock and applies rec to p.st when it
// returns nil. A failure leaves the log's tail unknown, so p refuses every
// later call; a new provider replays the log, and the next writer cuts the
// line if it is torn.
func (p *Provider) appendLocked(rec record) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("testprovider: encode record: %w", err)
	}
	line = append(line, '\n')
	if _, err := p.f.WriteAt(line, p.off); err != nil {
		p.broken = fmt.Errorf("testprovider: a log write failed earlier, close the provider and open a new one: %w", err)
		return fmt.Errorf("testprovider: write log: %w", err)
	}
	if err := p.f.Sync(); err != nil {
		p.broken = fmt.Errorf("testprovider: a log sync failed earlier, close the provider and open a new one: %w", err)
		return fmt.Errorf("testprovider: sync log: %w", err)
	}
	p.off += int64(len(line))
	p.st.lines++
	return nil
}

func (p *Provider) path() string {
	return filepath.Join(p.cfg.Dir, LogName)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
