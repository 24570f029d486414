package manifestfilter

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
)

// Variant is one filtered manifest, immutable once made: the body every
// response shares, and its entity tag. Err is ErrNothingLeft when the
// limit leaves nothing, so that a refusal is remembered as well.
type Variant struct {
	Body []byte
	ETag string
	Err  error
}

// Cache holds filtered manifests by the original's path and version (its
// strong ETag) and the limit, within a budget of bytes. An entry of a
// version replaced since is never asked for again and goes when the
// budget needs its room. It is safe for concurrent use; two requests
// missing at once both filter, and one result stays.
type Cache struct {
	maxBytes int64

	mu    sync.Mutex
	m     map[variantKey]*Variant
	bytes int64
}

type variantKey struct {
	path, etag string
	maxHeight  int
}

// DefaultCacheBytes is the budget NewCache gives for zero: some thousands
// of filtered playlists and MPDs.
const DefaultCacheBytes = 32 << 20

// NewCache returns a Cache of at most maxBytes of bodies; zero means
// DefaultCacheBytes.
func NewCache(maxBytes int64) *Cache {
	if maxBytes <= 0 {
		maxBytes = DefaultCacheBytes
	}
	return &Cache{maxBytes: maxBytes, m: map[variantKey]*Variant{}}
}

// Get returns the variant for maxHeight of the manifest at path
// ("{title}/master.m3u8") whose version is etag, calling load for the
// original's bytes and filtering them only when it has none. With an
// empty etag the version is unknown: Get filters every time and keeps
// nothing. Errors of load, and ErrSyntax, are returned and not kept;
// ErrNothingLeft is kept, in the Variant's Err, and returned.
func (c *Cache) Get(path, etag string, maxHeight int, load func() ([]byte, error)) (*Variant, error) {
	k := variantKey{path, etag, maxHeight}
	if etag != "" {
		c.mu.Lock()
		v := c.m[k]
		c.mu.Unlock()
		if v != nil {
			return v, v.Err
		}
	}
	data, err := load()
	if err != nil {
		return nil, err
	}
	object := path[strings.LastIndexByte(path, '/')+1:]
	body, err := Filter(object, data, maxHeight)
	if err != nil && !errors.Is(err, ErrNothingLeft) {
		return nil, err
	}
	v := &Variant{Body: body, ETag: VariantETag(etag, maxHeight), Err: err}
	if etag != "" {
		c.put(k, v)
	}
	return v, err
}

func (c *Cache) put(k variantKey, v *Variant) {
	size := entrySize(k, v)
	if size > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[k]; old != nil {
		return
	}
	// Evict at random (map order): old versions and cold titles are most
	// of what is held, and a hot one evicted is filtered again once.
	for ok := range c.m {
		if c.bytes+size <= c.maxBytes {
			break
		}
		c.bytes -= entrySize(ok, c.m[ok])
		delete(c.m, ok)
	}
	c.m[k] = v
	c.bytes += size
}

// entrySize is what an entry counts against the budget.
func entrySize(k variantKey, v *Variant) int64 {
	return int64(len(v.Body) + len(k.path) + len(k.etag) + len(v.ETag) + 64)
}

// Len returns the number of variants held.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// VariantETag returns the entity tag of the variant for maxHeight of a
// representation tagged etag: another tag, since it is another
// representation, as strong or weak as etag. `"abc"` becomes
// `"abc-h480"`; an empty or malformed etag gives "".
func VariantETag(etag string, maxHeight int) string {
	if len(etag) < 2 || etag[len(etag)-1] != '"' {
		return ""
	}
	return etag[:len(etag)-1] + "-h" + strconv.Itoa(maxHeight) + `"`
}

// MaxManifestBytes bounds a manifest read whole to be filtered (or to
// learn a title's heights from): packaged ones are a few kilobytes.
const MaxManifestBytes = 8 << 20

// ErrTooLarge is a manifest over MaxManifestBytes.
var ErrTooLarge = fmt.Errorf("manifestfilter: manifest larger than %d bytes", MaxManifestBytes)

// ReadAll reads a manifest of size bytes (-1: unknown) whole from r, or
// fails with ErrTooLarge past MaxManifestBytes.
func ReadAll(r io.Reader, size int64) ([]byte, error) {
	if size > MaxManifestBytes {
		return nil, ErrTooLarge
	}
	b, err := io.ReadAll(io.LimitReader(r, MaxManifestBytes+1))
	if err == nil && len(b) > MaxManifestBytes {
		err = ErrTooLarge
	}
	return b, err
}
