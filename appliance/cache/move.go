package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
	"golang.org/x/time/rate"
)

// Objects move between the classes in the background, never on a
// request's path: Config.Movers at a time, within Config.MoveRate. A move
// copies the object into a temporary file of the target directory,
// checking the copy against the object's checksum, links it into place
// there (never over an object already there), indexes it, and only then
// takes it out of the source: at every moment one of the two directories
// serves it whole. A directory failing during a move loses nothing but
// its own objects: a promotion leaves the object on the disk class, a
// demotion tries the disk class's new placement once, and a corrupt
// source is dropped, never copied.

// moveChunk is how much a move reads at a time (less when MoveRate is
// less a second).
const moveChunk = 256 << 10

// moveQueue bounds the moves waiting for a mover: a victim that finds
// the queue full is evicted, a hit that finds it full is promoted later.
const moveQueue = 64

// move is a queued move of e from its directory to a class.
type move struct {
	from *disk
	e    *diskEntry
	to   int // flashIdx or diskIdx
}

// errMoveGone ends a move whose object left its directory meanwhile
// (evicted, purged, replaced, or its directory failed).
var errMoveGone = errors.New("cache: moved object is gone")

// runMovers moves queued objects until ctx ends, then abandons the moves
// still queued.
func (c *Cache) runMovers(ctx context.Context) {
	chunk := int(min(moveChunk, c.cfg.MoveRate)) // a read waits for no more than the limiter's burst
	lim := rate.NewLimiter(rate.Limit(c.cfg.MoveRate), chunk)
	c.moving.Store(true)
	var wg sync.WaitGroup
	for range c.cfg.Movers {
		wg.Go(func() {
			buf := make([]byte, chunk)
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-c.moves:
					c.doMove(ctx, m, lim, buf)
				}
			}
		})
	}
	wg.Wait()
	c.moving.Store(false)
	// Every demote hook runs under its directory's lock: once each lock
	// was taken, none is still queueing.
	for _, d := range c.classes[flashIdx] {
		d.mu.Lock()
		d.mu.Unlock() //nolint:staticcheck // an empty critical section is the barrier

	}
	for {
		select {
		case m := <-c.moves:
			c.abandon(m)
		default:
			return
		}
	}
}

// abandon ends a move cut short by the end of Run: the object stays where
// it is, a demoted one back in its directory's eviction order. Evicting
// it instead would delete a file that an upgrade's new process may
// already serve.
func (c *Cache) abandon(m move) {
	if m.to == diskIdx {
		m.from.keep(m.e)
	}
	m.e.promoting.Store(false)
}

// keep puts e, a victim whose demotion was abandoned, back in d's budget
// and eviction order, if d still holds it.
func (d *disk) keep(e *diskEntry) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.index[e.key] != e || !e.moving {
		return
	}
	e.moving = false
	d.transit -= e.fileSize
	if !d.pinned[e.key] { // pinned meanwhile: out of the eviction order
		d.policy.Insert(e.key, e.fileSize)
	}
}

// doMove moves one object, or, when it cannot, leaves a promoted object
// where it is and evicts a demoted one.
func (c *Cache) doMove(ctx context.Context, m move, lim *rate.Limiter, buf []byte) {
	moved := false
	for try := 0; try < 2 && !moved; try++ {
		to := c.place(m.to, m.e.key)
		if to == nil || to == m.from || !c.admits(to, m.e.key, m.e.fileSize) {
			break
		}
		err := c.copyTo(ctx, m.from, m.e, to, lim, buf)
		moved = err == nil
		if err != nil && ctx.Err() == nil {
			c.log.Debug("cache: move", "key", m.e.key, "from", m.from.dir, "to", to.dir, "err", err)
		}
		if !to.failed.Load() {
			break // only a target that failed meanwhile is worth a second placement
		}
	}
	if !moved && ctx.Err() != nil {
		c.abandon(m)
		return
	}
	c.endMove(m, moved)
}

// endMove takes a moved object out of its source, and a demoted one that
// did not move as an eviction; a promotion that did not move leaves the
// object where it is.
func (c *Cache) endMove(m move, moved bool) {
	switch {
	case moved && m.to == flashIdx:
		c.promotions.Add(1)
	case moved:
		c.demotions.Add(1)
	}
	if moved || m.to == diskIdx {
		m.from.release(m.e, moved)
	}
	m.e.promoting.Store(false)
}

// release removes e from d, if d still holds it, with its file: moved
// says another directory holds it now (else it is an eviction, which the
// memory tier follows).
func (d *disk) release(e *diskEntry, moved bool) {
	d.mu.Lock()
	held := d.index[e.key] == e
	if held {
		d.removeLocked(e)
	}
	d.mu.Unlock()
	if !held {
		return
	}
	if !moved {
		d.evictions.Add(1)
		if d.onEvict != nil {
			d.onEvict(e.key)
		}
	}
	os.Remove(e.path)
}

// copyTo copies e from d into the directory to and indexes it there. The
// copy is checked against e's checksum; a source that does not match or
// cannot be read is dropped (or taken out of service) as on a hit.
func (c *Cache) copyTo(ctx context.Context, from *disk, e *diskEntry, to *disk, lim *rate.Limiter, buf []byte) error {
	fd, err := openEntry(e)
	if err != nil {
		if !from.ioError(err) {
			from.drop(e, err)
		}
		return fmt.Errorf("cache: move %s: %w", e.key, err)
	}
	defer unix.Close(fd)
	w, err := to.create(e.key, e.meta.Size)
	if err != nil {
		return err
	}
	defer w.close()
	crc, err := crcFD(ctx, fd, e.meta.Size, buf, lim, w)
	switch {
	case ctx.Err() != nil:
		w.abort()
		return ctx.Err()
	case errors.Is(err, errWrite): // the target counted it
		w.abort()
		return err
	}
	if err := from.settle(e, crc, err); err != nil {
		w.abort()
		return err
	}
	// A purge holds purgeMu while it empties every directory: the object
	// is either purged before this or purged with its copy.
	c.purgeMu.RLock()
	defer c.purgeMu.RUnlock()
	if !from.holds(e) {
		w.abort()
		return fmt.Errorf("%w: %s", errMoveGone, e.key)
	}
	ne, err := w.finish(e.meta, linkNew)
	if err != nil {
		return err
	}
	return to.add(ne)
}

// linkNew names a finished object by a hard link, which never replaces an
// object already at final (one filled meanwhile), then drops the
// temporary name.
func linkNew(tmp, final string) error {
	if err := os.Link(tmp, final); err != nil {
		return err
	}
	os.Remove(tmp) // else cleared with the process's other temporary files
	return nil
}
