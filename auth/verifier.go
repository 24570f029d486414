package auth

import (
	"errors"
	"hash/maphash"
	"math/bits"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast"
)

// VerifierConfig configures a Verifier. Zero values mean the defaults
// named.
type VerifierConfig struct {
	// MaxLifetime refuses tokens whose expiry lies further than this
	// beyond now. Zero means DefaultMaxLifetime (24 h).
	MaxLifetime time.Duration
	// CacheEntries bounds the cache of verified tokens and fill passes,
	// rounded up to a power of two. Zero means 65536 (512 KiB of slots
	// plus the entries in use).
	CacheEntries int
}

// DefaultVerifierConfig returns a VerifierConfig with every default
// filled in.
func DefaultVerifierConfig() VerifierConfig {
	return VerifierConfig{MaxLifetime: DefaultMaxLifetime, CacheEntries: 1 << 16}
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c VerifierConfig) Validate() error {
	switch {
	case c.MaxLifetime < 0:
		return fillcast.ConfigErrorf("auth", "MaxLifetime", "%v is negative", c.MaxLifetime)
	case c.CacheEntries < 0 || c.CacheEntries > 1<<24:
		return fillcast.ConfigErrorf("auth", "CacheEntries", "%d: want 0 to %d", c.CacheEntries, 1<<24)
	}
	return nil
}

func (c VerifierConfig) withDefaults() VerifierConfig {
	d := DefaultVerifierConfig()
	if c.MaxLifetime == 0 {
		c.MaxLifetime = d.MaxLifetime
	}
	if c.CacheEntries == 0 {
		c.CacheEntries = d.CacheEntries
	}
	return c
}

// Verifier checks playback tokens and fill passes against a key set, as
// Keys.Verify does, and remembers the ones it has verified: an Ed25519
// check costs tens of microseconds and a session's token is checked on
// every segment, so each distinct (token, title) is verified once and
// then found in a bounded cache, with its limits, without allocating.
// Expiry and the client prefix are still checked on every request. It
// is safe for concurrent use; SetKeys empties the cache, so a key taken
// out of the set stops verifying at once.
type Verifier struct {
	cfg  VerifierConfig
	seed maphash.Seed
	st   atomic.Pointer[verifierState]
}

// verifierState is a key set and the cache of what it verified.
type verifierState struct {
	keys  *Keys
	slots []atomic.Pointer[cacheEntry]
	mask  uint64
}

// cacheEntry is one verified token and the title (or fill pass subject)
// it was verified for. Entries are immutable once published.
type cacheEntry struct {
	token, title string
	expiry       int64        // unix seconds
	client       netip.Prefix // the binding; zero: unbound
	limits       Limits
}

// NewVerifier returns a Verifier of keys.
func NewVerifier(cfg VerifierConfig, keys *Keys) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if keys == nil {
		return nil, errors.New("auth: verifier: keys are required")
	}
	v := &Verifier{cfg: cfg.withDefaults(), seed: maphash.MakeSeed()}
	v.SetKeys(keys)
	return v, nil
}

// Keys returns the key set in force.
func (v *Verifier) Keys() *Keys { return v.st.Load().keys }

// SetKeys replaces the key set and empties the cache.
func (v *Verifier) SetKeys(keys *Keys) {
	n := 2
	for n < v.cfg.CacheEntries {
		n <<= 1
	}
	v.st.Store(&verifierState{keys: keys, slots: make([]atomic.Pointer[cacheEntry], n), mask: uint64(n - 1)})
}

// Verify is Keys.Verify with the Verifier's MaxLifetime,
// through the cache, which holds the limits with the token. It allocates
// nothing when the token is in the cache.
func (v *Verifier) Verify(token, title string, now time.Time, addr netip.Addr) (Limits, error) {
	st := v.st.Load()
	h := v.hash(token, title)
	var t checked
	if e := st.find(h, token, title); e != nil {
		if now.Unix() > e.expiry {
			return Limits{}, ErrExpired
		}
		t = checked{expiry: e.expiry, client: e.client, limits: e.limits}
	} else {
		var err error
		if t, err = st.keys.check(token, title, now, v.cfg.MaxLifetime); err != nil {
			return Limits{}, err
		}
		st.insert(h, now.Unix(), &cacheEntry{token: strings.Clone(token), title: strings.Clone(title), expiry: t.expiry, client: t.client, limits: t.limits})
	}
	if err := t.admits(addr); err != nil {
		return Limits{}, err
	}
	return t.limits, nil
}

func (v *Verifier) hash(token, title string) uint64 {
	return maphash.String(v.seed, token) ^ bits.RotateLeft64(maphash.String(v.seed, title), 29)
}

// The cache is a table of two-slot buckets: an entry lives in one of the
// two slots of the bucket its hash picks, so a lookup reads two pointers
// and compares strings, and the table's size is its bound.
func (st *verifierState) find(h uint64, token, title string) *cacheEntry {
	i := h & st.mask &^ 1
	for j := i; j <= i+1; j++ {
		if e := st.slots[j].Load(); e != nil && e.token == token && e.title == title {
			return e
		}
	}
	return nil
}

// insert puts e in its bucket: in an empty slot, else over an entry
// expired at now (unix seconds), else over the slot the hash's top bit
// picks.
func (st *verifierState) insert(h uint64, now int64, e *cacheEntry) {
	i := h & st.mask &^ 1
	victim := i + h>>63
	for j := i; j <= i+1; j++ {
		old := st.slots[j].Load()
		if old == nil {
			victim = j
			break
		}
		if old.expiry < now {
			victim = j
		}
	}
	st.slots[victim].Store(e)
}

// RejectReason names why a token, fill pass or credential was refused,
// for a metric label and the log: malformed, unknown_key, bad_signature,
// expired, lifetime, client, credential or other.
func RejectReason(err error) string {
	switch {
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case errors.Is(err, ErrUnknownKey):
		return "unknown_key"
	case errors.Is(err, ErrBadSignature):
		return "bad_signature"
	case errors.Is(err, ErrExpired):
		return "expired"
	case errors.Is(err, ErrLifetime):
		return "lifetime"
	case errors.Is(err, ErrClient):
		return "client"
	case errors.Is(err, ErrBadCredential):
		return "credential"
	}
	return "other"
}
