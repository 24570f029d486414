// Package cache is the appliance's two-tier object cache: a memory tier
// (ristretto, whole objects shared by every response) over a disk tier
// (one checksummed file per object, S3-FIFO eviction, index rebuilt at
// start-up), and the miss path that fills both from upstream with request
// coalescing, streaming each object to the waiting clients while it
// arrives.
package cache

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/fillcast/fillcast"
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

// Config configures a Cache. Zero values mean the defaults named.
type Config struct {
	// Dir holds the disk tier. Required.
	Dir string
	// DiskBytes is the disk tier's budget. Required, > 0.
	DiskBytes int64
	// MemBytes is the memory tier's budget; 0 disables the tier.
	MemBytes int64
	// MaxMemObject is the largest object the memory tier holds. Zero means
	// 64 MiB.
	MaxMemObject int64
	// MaxSpoolBytes is the largest fill spooled in memory; larger fills
	// spool in the disk tier's temporary file. Zero means 64 MiB.
	MaxSpoolBytes int64
	// Fsync makes every committed object durable before it is indexed.
	Fsync bool
}

// DefaultConfig returns a Config with defaults; Dir and DiskBytes must be
// set.
func DefaultConfig() Config {
	return Config{MaxMemObject: 64 << 20, MaxSpoolBytes: 64 << 20}
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return fillcast.ConfigErrorf("cache", "Dir", "required: the directory of the disk tier")
	case c.DiskBytes <= 0:
		return fillcast.ConfigErrorf("cache", "DiskBytes", "%d: want the disk tier's budget, a positive number of bytes", c.DiskBytes)
	case c.MemBytes < 0:
		return fillcast.ConfigErrorf("cache", "MemBytes", "%d is negative (0 turns the memory tier off)", c.MemBytes)
	case c.MaxMemObject < 0:
		return fillcast.ConfigErrorf("cache", "MaxMemObject", "%d is negative", c.MaxMemObject)
	case c.MaxSpoolBytes < 0:
		return fillcast.ConfigErrorf("cache", "MaxSpoolBytes", "%d is negative", c.MaxSpoolBytes)
	}
	return nil
}

// withDefaults fills the zero fields; c has passed Validate.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxMemObject == 0 {
		c.MaxMemObject = d.MaxMemObject
	}
	if c.MaxSpoolBytes == 0 {
		c.MaxSpoolBytes = d.MaxSpoolBytes
	}
	return c
}

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

// Stats are the cache's counters and gauges.
type Stats struct {
	MemHits, DiskHits, Misses, Coalesced int64
	FillErrors, Corrupt, DiskWriteErrors int64
	// StreamsCut counts the readers of a fill that saw it break off
	// before their end: clients whose body was cut short (or, for a
	// manifest the server reads whole, answered 502).
	StreamsCut                          int64
	MemEvictions, DiskEvictions         int64
	MemUsed, MemCapacity                int64
	DiskUsed, DiskCapacity, DiskObjects int64
	FillsInFlight                       int64
}

// Cache is the two-tier cache. It is safe for concurrent use.
type Cache struct {
	cfg  Config
	src  Source
	log  *slog.Logger
	mem  *memTier // nil when disabled
	disk *disk

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
	streamsCut                                       atomic.Int64
}

// New opens the disk tier under cfg.Dir (rebuilding its index) and returns
// a Cache that fills misses from src.
func New(cfg Config, src Source, log *slog.Logger) (*Cache, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if src == nil {
		return nil, errors.New("cache: a source is required")
	}
	cfg = cfg.withDefaults()
	d, err := openDisk(cfg.Dir, cfg.DiskBytes, cfg.Fsync, log)
	if err != nil {
		return nil, err
	}
	c := &Cache{cfg: cfg, src: src, log: log, disk: d, inflight: map[string]*fill{}}
	if cfg.MemBytes > 0 {
		if c.mem, err = newMemTier(cfg.MemBytes, cfg.MaxMemObject); err != nil {
			return nil, err
		}
		d.onEvict = c.mem.del
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
		if c.mem != nil {
			c.mem.close()
		}
	})
	return nil
}

// Adopt indexes the objects another process wrote into the cache
// directory after this one built its index: during a zero-downtime
// upgrade the old process keeps filling until it exits, and its objects
// would otherwise be invisible here (fetched again on their next miss,
// and their files counted nowhere); objects it evicted or purged leave
// the index here too. Call it once that process has exited. It returns
// how many objects it added; cancelling ctx ends the walk early (a large
// disk must not hold up a shutdown).
func (c *Cache) Adopt(ctx context.Context) (int, error) { return c.disk.adopt(ctx) }

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
	if e, ok := c.disk.lookup(key); ok {
		if h, err := c.fromDisk(e); err == nil {
			c.diskHits.Add(1)
			return h, true
		}
		// Corrupt or vanished: the disk tier dropped it; the caller refetches.
	}
	return Hit{}, false
}

func (c *Cache) fromDisk(e *diskEntry) (Hit, error) {
	if c.mem != nil && e.meta.Size <= c.mem.maxItem {
		body, err := c.disk.readAll(e)
		if err != nil {
			return Hit{}, err
		}
		c.mem.set(e.key, e.meta, body)
		return Hit{Tier: TierDisk, Meta: &e.meta, Body: body}, nil
	}
	fd, err := c.disk.open(e)
	if err != nil {
		return Hit{}, err
	}
	return Hit{Tier: TierDisk, Meta: &e.meta, fd: fd, hasFD: true}, nil
}

// Purge removes every object whose key starts with prefix from both tiers
// and keeps fills in progress for such keys from being cached. It returns
// how many stored objects it removed.
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
	keys := c.disk.removePrefix(prefix)
	if c.mem != nil {
		for _, k := range keys {
			c.mem.del(k)
		}
	}
	return len(keys)
}

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	used, objects := c.disk.usage()
	c.fmu.Lock()
	inflight := len(c.inflight)
	c.fmu.Unlock()
	s := Stats{
		MemHits: c.memHits.Load(), DiskHits: c.diskHits.Load(), Misses: c.misses.Load(),
		Coalesced: c.coalesced.Load(), FillErrors: c.fillErrors.Load(), StreamsCut: c.streamsCut.Load(),
		Corrupt: c.disk.corrupt.Load(), DiskWriteErrors: c.disk.writeErrors.Load(),
		DiskEvictions: c.disk.evictions.Load(),
		DiskUsed:      used, DiskCapacity: c.cfg.DiskBytes, DiskObjects: int64(objects),
		FillsInFlight: int64(inflight),
	}
	if c.mem != nil {
		s.MemUsed, s.MemCapacity, s.MemEvictions = c.mem.used(), c.cfg.MemBytes, c.mem.evictions.Load()
	}
	return s
}
