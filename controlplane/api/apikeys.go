package api

import (
	"crypto/rand"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/gateway"
)

// APIKeyRequest is the body of POST /v1/apikeys.
type APIKeyRequest struct {
	Name  string `json:"name"`
	Scope string `json:"scope"`
}

// APIKeyView is an API key as listed: never its secret nor its hash.
// Key is set once, in the answer to POST /v1/apikeys.
type APIKeyView struct {
	ID      string    `json:"id"`
	Name    string    `json:"name,omitempty"`
	Scope   string    `json:"scope"`
	Created time.Time `json:"created"`
	Key     string    `json:"key,omitempty"`
}

func viewOf(k *fsm.APIKey) APIKeyView {
	return APIKeyView{ID: k.ID, Name: k.Name, Scope: k.Scope, Created: k.Created}
}

// createAPIKey makes a key and answers it once; only its hash is kept.
func (a *API) createAPIKey(w http.ResponseWriter, r *http.Request) error {
	var req APIKeyRequest
	if err := gateway.DecodeJSON(r, &req); err != nil {
		return err
	}
	if _, err := auth.ParseScope(req.Scope); err != nil {
		return gateway.Errorf(http.StatusBadRequest, "%v", err)
	}
	id := "k" + strings.ToLower(rand.Text()) // 130 random bits
	key, hash, err := auth.NewAPIKey(id)
	if err != nil {
		return err
	}
	rec := &fsm.APIKey{ID: id, Name: req.Name, Scope: req.Scope, Hash: hash, Created: a.d.Now().UTC().Truncate(time.Second)}
	if err := a.apply(r.Context(), fsm.Command{Op: fsm.OpPutAPIKey, APIKey: rec}); err != nil {
		return err
	}
	v := viewOf(rec)
	v.Key = key
	w.Header().Set("Cache-Control", "no-store")
	return gateway.WriteJSON(w, http.StatusCreated, v)
}

// listAPIKeys answers every key, by id, without secrets, as current (a
// linearizable read), or 503.
func (a *API) listAPIKeys(w http.ResponseWriter, r *http.Request) error {
	if err := a.current(r.Context()); err != nil {
		return err
	}
	out := []APIKeyView{}
	a.read(func(s *fsm.State) {
		for _, k := range s.APIKeys {
			out = append(out, viewOf(k))
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return gateway.WriteJSON(w, http.StatusOK, out)
}

// deleteAPIKey revokes a key: the next request with it gets 401.
func (a *API) deleteAPIKey(w http.ResponseWriter, r *http.Request) error {
	if err := a.apply(r.Context(), fsm.Command{Op: fsm.OpDeleteAPIKey, ID: r.PathValue("id")}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Whoami is the body of GET /v1/whoami: who the credential sent is, so
// that the operator page shows only what its scope allows.
type Whoami struct {
	Kind   string   `json:"kind"`
	ID     string   `json:"id,omitempty"`
	Scopes []string `json:"scopes,omitempty"`
}

// whoami answers the caller's principal: anonymous without a credential,
// 401 with a bad one (the gateway's check).
func (a *API) whoami(w http.ResponseWriter, r *http.Request) error {
	p := gateway.Principal(r.Context())
	v := Whoami{Kind: p.Kind.String(), ID: p.ID}
	if p.Scope != 0 {
		v.Scopes = strings.Split(p.Scope.String(), "|")
	}
	w.Header().Set("Cache-Control", "no-store")
	return gateway.WriteJSON(w, http.StatusOK, v)
}
