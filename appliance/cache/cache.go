// Package cache is the appliance's two-tier object cache: a memory tier
// (ristretto, whole objects shared by every response) over a disk tier
// (one checksummed file per object, S3-FIFO eviction, index rebuilt at
// start-up), and the miss path that fills both from upstream with request
// coalescing, streaming each object to the waiting clients while it
// arrives.
//
// The disk tier spans one or more directories, one per disk, each with
// its own budget and class (flash or disk): objects are placed across a
// class by rendezvous hashing (place.go) and between the classes by
// popularity, promoted and demoted in the background (class.go, move.go);
// a directory whose I/O fails is taken out of service while the others
// keep serving. Faults are survived rather than served: temporary files
// of a process that died are cleared by lock ownership (owner.go), a full
// file system evicts to make room, and a background scrub at a bounded
// rate plus verification on read after VerifyAge drop objects that rotted
// on disk (scrub.go), so they are fetched again, never sent.
package cache

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/fillcast/fillcast/appliance/evict"
	"golang.org/x/sys/unix"
)

// Meta describes a cached object: what the appliance needs to answer with
// the same headers the origin gave.
type Meta struct {
	Size         int64  `json:"size"` // -1 while unknown (chunked upstream)
	ContentType  string `json:"content_type,omitempty"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	CacheControl string `json:"cache_control,omitempty"`
}

// Fetched is an upstream response ready to be read.
type Fetched struct {
	Meta Meta
	// Body yields exactly Meta.Size bytes (when known) or fails: an
	// implementation reports a short or long body as an error, never EOF.
	Body io.ReadCloser
}

// Source fetches objects on a miss.
type Source interface {
	Fetch(ctx context.Context, key string) (*Fetched, error)
}

// ErrNotFound is returned by a Source (and by Get) when no upstream has
// the object.
var ErrNotFound = errors.New("cache: not found upstream")

// ErrClosed is returned by Get after Close.
var ErrClosed = errors.New("cache: closed")

// Tier says where a Hit came from.
type Tier uint8

// Tiers, in the order Get looks.
const (
	TierMemory Tier = iota
	TierDisk
	TierFill
)

func (t Tier) String() string {
	switch t {
	case TierMemory:
		return "memory"
	case TierDisk:
		return "disk"
	}
	return "fill"
}

// Hit is an object ready to serve. Exactly one of Body (a memory object,
// or a disk object the memory tier read), a file (a disk object) or a
// fill (a miss in progress) backs it. Call Stream for the bytes, or
// Release if not.
type Hit struct {
	Tier Tier
	Meta *Meta
	// Body is the whole object when it is in memory: shared and
	// read-only.
	Body  []byte
	fd    int // a descriptor opened for this hit, when hasFD
	hasFD bool
	fill  *fill
}

// Stream returns a reader for length bytes from off (length < 0: to the
// end). The reader is an io.Closer; whoever reads it closes it. For a file
// it is a *FileRange, which sends with sendfile when given the TCP
// connection.
func (h *Hit) Stream(ctx context.Context, off, length int64) (io.Reader, error) {
	switch {
	case h.hasFD:
		if length < 0 {
			length = h.Meta.Size - off
		}
		h.hasFD = false // the range closes the descriptor now
		return newFileRange(h.fd, off, off+length), nil
	case h.fill != nil:
		f := h.fill
		h.fill = nil
		end := int64(-1)
		if length >= 0 {
			end = off + length
		}
		return &fillReader{f: f, ctx: ctx, off: off, end: end}, nil
	}
	return nil, errors.New("cache: Stream on an in-memory body")
}

// Release frees what backs the hit if Stream was not called.
func (h *Hit) Release() {
	if h.hasFD {
		unix.Close(h.fd)
		h.hasFD = false
	}
	if h.fill != nil {
		h.fill.unref()
		h.fill = nil
	}
}

// Cache is the two-tier cache. It is safe for concurrent use.
type Cache struct {
	cfg   Config
	src   Source
	log   *slog.Logger
	mem   *memTier // nil when disabled
	disks []*disk  // one per directory, in Config.Dirs order
	// classes are the directories of each class, flash first; with
	// both, moves queues the promotions and demotions between them
	// (nil with one class) while Run moves them.
	classes [2][]*disk
	sketch  *evict.Sketch
	moves   chan move
	moving  atomic.Bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	fmu      sync.Mutex
	inflight map[string]*fill
	// purgeMu orders purges against fills committing: a fill checks that
	// it was not purged and commits under the read lock, a purge marks
	// fills and removes stored objects under the write lock.
	purgeMu sync.RWMutex

	memHits, diskHits, misses, coalesced, fillErrors atomic.Int64
	streamsCut, promotions, demotions                atomic.Int64
}

// New opens the disk tier's directories (rebuilding their index) and
// returns a Cache that fills misses from src. With several directories,
// one that cannot be opened is taken out of service rather than failing
// the start; a single directory must open.
func New(cfg Config, src Source, log *slog.Logger) (*Cache, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if src == nil {
		return nil, errors.New("cache: a source is required")
	}
	cfg = cfg.withDefaults()
	c := &Cache{cfg: cfg, src: src, log: log, inflight: map[string]*fill{}, sketch: evict.NewSketch(sketchKeys(cfg.Dirs))}
	var err error
	if cfg.MemBytes > 0 {
		if c.mem, err = newMemTier(cfg.MemBytes, cfg.MaxMemObject); err != nil {
			return nil, err
		}
	}
	opts := diskOptions{fsync: cfg.Fsync, verifyAge: int64(cfg.VerifyAge), now: cfg.Now, log: log, newPolicy: c.newPolicy}
	if c.mem != nil {
		opts.onEvict = c.mem.del
	}
	for _, dc := range cfg.Dirs {
		d, err := openDisk(dc, opts)
		if err != nil && len(cfg.Dirs) == 1 {
			c.closeDisks()
			if c.mem != nil {
				c.mem.close()
			}
			return nil, err
		}
		c.disks = append(c.disks, d) // failed when err != nil
		c.classes[d.class] = append(c.classes[d.class], d)
	}
	if len(c.classes[flashIdx]) > 0 && len(c.classes[diskIdx]) > 0 {
		c.moves = make(chan move, moveQueue)
		for _, d := range c.classes[flashIdx] {
			d.demote = c.demote
		}
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Close cancels fills in progress, waits for them, and closes the memory
// tier. It is safe to call twice.
func (c *Cache) Close() error {
	c.once.Do(func() {
		c.cancel()
		c.wg.Wait()
		c.closeDisks()
		if c.mem != nil {
			c.mem.close()
		}
	})
	return nil
}

func (c *Cache) closeDisks() {
	for _, d := range c.disks {
		d.close()
	}
}

// Adopt indexes the objects another process wrote into the cache
// directories after this one built its index: during a zero-downtime
// upgrade the old process keeps filling until it exits, and its objects
// would otherwise be invisible here (fetched again on their next miss,
// and their files counted nowhere); objects it evicted or purged leave
// the index here too. Call it once that process has exited. It returns
// how many objects it added; cancelling ctx ends the walk early (a large
// disk must not hold up a shutdown).
func (c *Cache) Adopt(ctx context.Context) (int, error) {
	total := 0
	for _, d := range c.disks {
		if d.failed.Load() {
			continue
		}
		n, err := d.adopt(ctx)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Get returns key from memory, else disk, else by joining or starting a
// fill. key may point into a request buffer: Get copies it before keeping
// it. The error is ErrNotFound, ErrClosed or an upstream failure.
func (c *Cache) Get(ctx context.Context, key string) (Hit, error) {
	if h, ok := c.Lookup(key); ok {
		return h, nil
	}
	return c.fillOrJoin(ctx, key)
}

// Lookup returns key from memory or disk without filling a miss: how the
// appliance answers a peer's only-if-cached request.
func (c *Cache) Lookup(key string) (Hit, bool) {
	if c.mem != nil {
		if o, ok := c.mem.get(key); ok {
			c.memHits.Add(1)
			return Hit{Tier: TierMemory, Meta: &o.meta, Body: o.body}, true
		}
	}
	if d, e, ok := c.find(key); ok {
		if h, err := c.fromDisk(d, e); err == nil {
			c.diskHits.Add(1)
			if c.moves != nil {
				c.promote(d, e)
			}
			return h, true
		}
		// Corrupt or vanished: the disk tier dropped it; the caller refetches.
	}
	return Hit{}, false
}

func (c *Cache) fromDisk(d *disk, e *diskEntry) (Hit, error) {
	if c.mem != nil && e.meta.Size <= c.mem.maxItem {
		body, err := d.readAll(e)
		if err != nil {
			return Hit{}, err
		}
		// Into memory only if a purge did not take it meanwhile (Purge
		// holds purgeMu while it empties both tiers).
		c.purgeMu.RLock()
		if d.holds(e) {
			c.mem.set(e.key, e.meta, body)
		}
		c.purgeMu.RUnlock()
		return Hit{Tier: TierDisk, Meta: &e.meta, Body: body}, nil
	}
	fd, err := d.open(e)
	if err != nil {
		return Hit{}, err
	}
	return Hit{Tier: TierDisk, Meta: &e.meta, fd: fd, hasFD: true}, nil
}

// Purge removes every object whose key starts with prefix from both tiers
// and keeps fills in progress for such keys from being cached. It returns
// how many objects it removed (the larger of the two tiers' counts).
func (c *Cache) Purge(prefix string) int {
	c.purgeMu.Lock()
	defer c.purgeMu.Unlock()
	c.fmu.Lock()
	for k, f := range c.inflight {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			f.mu.Lock()
			f.purged = true
			f.mu.Unlock()
		}
	}
	c.fmu.Unlock()
	n := 0
	for _, d := range c.disks {
		n += len(d.removePrefix(prefix))
	}
	if c.mem != nil {
		// Every copy in memory, also of objects the disk tier lost or
		// never stored (a failed write or directory).
		n = max(n, c.mem.delPrefix(prefix))
	}
	return n
}
