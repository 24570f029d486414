package api

import (
	"encoding/binary"
	"hash/maphash"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/gateway"
)

// keyCache holds the parsed replicated keys for one log index, and the
// tokens signed with them.
type keyCache struct {
	index  uint64
	keys   *auth.Keys
	tokens *tokenCache
}

// signingKeys returns the keys playback URLs and appliance credentials are
// signed and credentials verified with: the node's key file until a key
// list has been replicated (PUT /v1/keys), the replicated list alone from
// then on. The list is authoritative: a key of the file that it does not
// hold no longer signs nor verifies, which is how a key is revoked.
func (a *API) signingKeys() *auth.Keys {
	var index uint64
	var list []auth.Key
	a.read(func(s *fsm.State) { index, list = s.KeysIndex, s.SigningKeys })
	return a.keysAt(index, list).keys
}

// keysAt returns the keys in force given the replicated list at index
// (index 0 and no list: the key file), with their token cache.
func (a *API) keysAt(index uint64, list []auth.Key) *keyCache {
	if len(list) == 0 {
		index = 0
	}
	if c := a.keyCache.Load(); c != nil && c.index == index {
		return c
	}
	ks := a.d.Keys
	if len(list) > 0 {
		var err error
		if ks, err = auth.NewKeys(list); err != nil { // validated before it was logged; keep serving
			a.d.Log.Error("api: replicated keys do not parse", "err", err)
			ks, index = a.d.Keys, 0
		}
	}
	c := &keyCache{index: index, keys: ks, tokens: newTokenCache()}
	a.keyCache.Store(c)
	return c
}

// tokenBucket is the granularity of playback token expiries: every client
// of one network asking for one title within a bucket gets the same
// token, signed once.
const tokenBucket = time.Minute

// signedPath returns the signed path prefix "/c/{token}/{title}" of an
// unrestricted token for a client at addr: signedPathLimited with the
// zero auth.Limits.
func (a *API) signedPath(title string, addr netip.Addr) (string, time.Time, error) {
	return a.signedPathLimited(title, addr, auth.Limits{})
}

// signedPathLimited returns the signed path prefix "/c/{token}/{title}"
// of a token allowing what l allows (a plan's limits, which appliances
// and the origin enforce) for a client at addr, bound to its network
// unless Config.UnboundTokens, and the token's expiry: now plus TokenTTL,
// rounded up to tokenBucket. Ed25519 signing costs about 20 µs, more than
// the rest of a playback answer, so the tokens of a bucket come from a
// bounded cache, by title, client prefix, expiry and limits.
func (a *API) signedPathLimited(title string, addr netip.Addr, l auth.Limits) (string, time.Time, error) {
	var index uint64
	var list []auth.Key
	a.read(func(s *fsm.State) { index, list = s.KeysIndex, s.SigningKeys })
	kc := a.keysAt(index, list)
	expiry := a.tokenExpiry(a.d.Now())
	var client netip.Prefix
	if !a.cfg.UnboundTokens {
		client = auth.ClientPrefix(addr)
	}
	if p, ok := kc.tokens.get(title, client, expiry.Unix(), l); ok {
		return p, expiry, nil
	}
	tok, err := kc.keys.SignLimited(title, expiry, client, l)
	if err != nil {
		return "", expiry, err
	}
	p := "/c/" + tok + "/" + title
	kc.tokens.put(&signedToken{title: title, client: client, expiry: expiry.Unix(), limits: l, path: p})
	return p, expiry, nil
}

// tokenCache is a bounded table of signed paths: a slot per hash of
// (title, client prefix, expiry, limits), the newest token of a slot
// winning.
type tokenCache struct {
	seed  maphash.Seed
	slots [1 << 14]atomic.Pointer[signedToken]
}

// signedToken is one cached signed path; immutable once published.
type signedToken struct {
	title  string
	client netip.Prefix
	expiry int64
	limits auth.Limits
	path   string
}

func newTokenCache() *tokenCache { return &tokenCache{seed: maphash.MakeSeed()} }

func (c *tokenCache) slot(title string, client netip.Prefix, expiry int64, l auth.Limits) *atomic.Pointer[signedToken] {
	a := client.Addr().As16()
	lim := uint64(l.MaxHeight) << 1
	if l.NoDownloads {
		lim |= 1
	}
	h := maphash.String(c.seed, title) ^ binary.LittleEndian.Uint64(a[:8])*0x9e3779b97f4a7c15 ^
		binary.LittleEndian.Uint64(a[8:])*0xc2b2ae3d27d4eb4f ^ uint64(client.Bits()+1)<<56 ^ uint64(expiry) ^
		lim*0x94d049bb133111eb
	return &c.slots[h%uint64(len(c.slots))]
}

func (c *tokenCache) get(title string, client netip.Prefix, expiry int64, l auth.Limits) (string, bool) {
	if t := c.slot(title, client, expiry, l).Load(); t != nil && t.title == title && t.client == client && t.expiry == expiry && t.limits == l {
		return t.path, true
	}
	return "", false
}

func (c *tokenCache) put(t *signedToken) { c.slot(t.title, t.client, t.expiry, t.limits).Store(t) }

// getKeys answers GET /v1/keys with the replicated keys as an
// auth.KeyList of public keys (id and public key, never a seed): what
// appliances verify tokens and their peers' credentials with. The list is
// empty while none is replicated; appliances then keep their key file.
// It is current (a linearizable read), or 503: an appliance never learns
// a revoked key from a node that missed the revocation.
func (a *API) getKeys(w http.ResponseWriter, r *http.Request) error {
	if err := a.current(r.Context()); err != nil {
		return err
	}
	body := auth.KeyList{Keys: []auth.Key{}}
	var replicated bool
	a.read(func(s *fsm.State) { replicated = len(s.SigningKeys) > 0 })
	if replicated {
		body.Keys = a.signingKeys().PublicList()
	}
	return gateway.WriteJSON(w, http.StatusOK, body)
}

// putKeys replaces the replicated keys with an auth.KeyList whose first
// private key (a seed in Key.Secret) signs; public keys (Key.Public
// alone) only verify. To rotate: put [new, old], wait for the old tokens
// to expire (the playback token TTL), then put [new]. To revoke a key at
// once, put a list without it: the key file's keys no longer count.
func (a *API) putKeys(w http.ResponseWriter, r *http.Request) error {
	var body auth.KeyList
	if err := gateway.DecodeJSON(r, &body); err != nil {
		return err
	}
	ks, err := auth.NewKeys(body.Keys)
	if err != nil {
		return gateway.Errorf(http.StatusBadRequest, "%v", err)
	}
	if !ks.CanSign() {
		return gateway.Errorf(http.StatusBadRequest, "the key list holds no private key (secret) to sign with")
	}
	if err := a.apply(r.Context(), fsm.Command{Op: fsm.OpPutKeys, Keys: body.Keys}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
