package api

import (
	"net/http"

	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/gateway"
)

// keyCache holds the parsed replicated keys for one log index.
type keyCache struct {
	index uint64
	keys  *auth.Keys
}

// signingKeys returns the keys playback URLs are signed with: the
// replicated ones (merged over the node's key file, which still verifies),
// or the key file alone while none are replicated.
func (a *API) signingKeys() *auth.Keys {
	var index uint64
	var list []auth.Key
	a.read(func(s *fsm.State) { index, list = s.KeysIndex, s.SigningKeys })
	if len(list) == 0 {
		return a.d.Keys
	}
	if c := a.keyCache.Load(); c != nil && c.index == index {
		return c.keys
	}
	ks, err := auth.NewKeys(list)
	if err != nil { // validated before it was logged; keep serving
		a.d.Log.Error("api: replicated keys do not parse", "err", err)
		return a.d.Keys
	}
	ks = ks.Merge(a.d.Keys)
	a.keyCache.Store(&keyCache{index: index, keys: ks})
	return ks
}

// getKeys answers GET /v1/keys with the replicated keys as an
// auth.KeyList.
func (a *API) getKeys(w http.ResponseWriter, r *http.Request) error {
	var body auth.KeyList
	a.read(func(s *fsm.State) { body.Keys = s.SigningKeys })
	if body.Keys == nil {
		body.Keys = []auth.Key{}
	}
	return gateway.WriteJSON(w, http.StatusOK, body)
}

// putKeys replaces the replicated keys. To rotate: put [new, old], wait
// for the old tokens to expire (the playback token TTL), then put [new].
func (a *API) putKeys(w http.ResponseWriter, r *http.Request) error {
	var body auth.KeyList
	if err := gateway.DecodeJSON(r, &body); err != nil {
		return err
	}
	if err := a.apply(r.Context(), fsm.Command{Op: fsm.OpPutKeys, Keys: body.Keys}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
