package manifestfilter

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/fillcast/fillcast/steering/contentsteering"
)

// Variant is one manifest made for some Options, immutable once made:
// the body every response shares, and its entity tag. Err is
// ErrNothingLeft when the limit leaves nothing, so that a refusal is
// remembered as well.
type Variant struct {
	Body []byte
	ETag string
	Err  error
	// Unsteered says why a variant asked to advertise content steering
	// does not (ErrSyntax, ErrOwnPathways, ErrServerURI): it is served
	// all the same, as the original would have been.
	Unsteered error
	// base is the text of the BaseURL SteerMPD added, in Body; empty
	// when it added none.
	base span
}

// BodyFor returns the body to send a player who asked for the variant at
// a URL whose directory is base ("https://a1.example/c/{token}/t1/"):
// Body with the text of the BaseURL that SteerMPD added made absolute, as
// shaka-player needs to clone a pathway (it swaps the host in the text
// verbatim, and a relative one throws). It is Body itself, shared, when
// base is empty or the variant has no such BaseURL (a master playlist,
// an MPD that came with its own steering); otherwise a new slice.
func (v *Variant) BodyFor(base string) []byte {
	if base == "" || v.base.end == 0 {
		return v.Body
	}
	out := make([]byte, 0, len(v.Body)+len(base)+16)
	out = append(out, v.Body[:v.base.start]...)
	xml.EscapeText(appendWriter{&out}, []byte(base))
	return append(out, v.Body[v.base.end:]...)
}

// Options say which variant of a manifest to make. The zero Options make
// the original.
type Options struct {
	// MaxHeight, when positive, leaves out the video renditions taller
	// than it (Filter).
	MaxHeight int
	// SteeringURL, when set, is the public URL of the control plane
	// (contentsteering.ValidateBaseURL): the variant advertises the
	// title's Content Steering manifest there, at
	// contentsteering.ServerURI (SteerMaster, SteerMPD).
	SteeringURL string
}

// ETag returns the entity tag of the variant o makes of a representation
// tagged etag: another tag, since it is another representation, as
// strong or weak as etag. `"abc"` becomes `"abc-h480"` for a maximum
// height, `"abc-s1f2e3d4c"` for steering (a hash of SteeringURL, so that
// another control-plane URL is another tag) and `"abc-h480-s1f2e3d4c"`
// for both; an empty or malformed etag gives "".
func (o Options) ETag(etag string) string {
	if len(etag) < 2 || etag[len(etag)-1] != '"' {
		return ""
	}
	t := etag[:len(etag)-1]
	if o.MaxHeight > 0 {
		t += "-h" + strconv.Itoa(o.MaxHeight)
	}
	if o.SteeringURL != "" {
		h := fnv.New32a()
		h.Write([]byte(o.SteeringURL))
		t += fmt.Sprintf("-s%08x", h.Sum32())
	}
	return t + `"`
}

// Cache holds the variants of manifests by the original's path and
// version (its strong ETag) and the Options, within a budget of bytes.
// An entry of a version replaced since is never asked for again and goes
// when the budget needs its room. It is safe for concurrent use; two
// requests missing at once both make the variant, and one result stays.
type Cache struct {
	maxBytes int64

	mu    sync.Mutex
	m     map[variantKey]*Variant
	bytes int64
}

type variantKey struct {
	path, etag string
	o          Options
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

// Get returns the variant for o of the manifest at path
// ("{title}/master.m3u8") whose version is etag, calling load for the
// original's bytes and making the variant only when it has none: the
// original filtered to o.MaxHeight, then steered to o.SteeringURL. With
// an empty etag the version is unknown: Get makes it every time and
// keeps nothing. Errors of load, and ErrSyntax of filtering, are returned
// and not kept; ErrNothingLeft is kept, in the Variant's Err, and
// returned. A manifest that cannot be steered is kept unsteered
// (Variant.Unsteered). The variant keeps no reference to load's bytes.
func (c *Cache) Get(path, etag string, o Options, load func() ([]byte, error)) (*Variant, error) {
	k := variantKey{path, etag, o}
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
	body, err := Filter(object, data, o.MaxHeight)
	if err != nil && !errors.Is(err, ErrNothingLeft) {
		return nil, err
	}
	v := &Variant{Body: body, ETag: o.ETag(etag), Err: err}
	if err == nil && o.SteeringURL != "" {
		title, _, _ := strings.Cut(path, "/")
		v.steer(object, title, o.SteeringURL)
	}
	if len(v.Body) > 0 && len(data) > 0 && &v.Body[0] == &data[0] {
		v.Body = bytes.Clone(v.Body) // unchanged: the caller's bytes
	}
	if etag != "" {
		c.put(k, v)
	}
	return v, err
}

// steer makes v, the variant of title's manifest named object, advertise
// the steering manifest at the control plane whose URL is base.
func (v *Variant) steer(object, title, base string) {
	var (
		out []byte
		at  span
		err error
	)
	switch object {
	case MasterName:
		out, err = SteerMaster(v.Body, contentsteering.ServerURI(base, title, contentsteering.ProtocolHLS))
	case MPDName:
		out, at, err = steerMPD(v.Body, contentsteering.ServerURI(base, title, contentsteering.ProtocolDASH))
	default:
		return
	}
	if err != nil {
		v.Unsteered = err
		return
	}
	v.Body, v.base = out, at
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
	return int64(len(v.Body) + len(k.path) + len(k.etag) + len(k.o.SteeringURL) + len(v.ETag) + 64)
}

// Len returns the number of variants held.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// VariantETag returns the entity tag of the variant for maxHeight of a
// representation tagged etag: `"abc"` becomes `"abc-h480"`; an empty or
// malformed etag gives "". It is Options{MaxHeight: maxHeight}.ETag.
func VariantETag(etag string, maxHeight int) string {
	return Options{MaxHeight: maxHeight}.ETag(etag)
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
