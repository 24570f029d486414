package api

import (
	"net/http"
	"sort"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/gateway"
)

// Registration is the body of PUT /v1/appliances/{id} and, with its
// credential, of the answer: where the appliance is, what it is, and the
// URLs it may advertise in its heartbeats.
type Registration struct {
	ID         string    `json:"id"`
	Site       string    `json:"site"`
	Profile    string    `json:"profile"`
	URLs       []string  `json:"urls"`
	Registered time.Time `json:"registered"`
	// Credential is answered once, when the appliance is registered; the
	// appliance reads it from its --credential-file.
	Credential string `json:"credential,omitempty"`
}

func registrationView(r *fsm.Registration) Registration {
	return Registration{ID: r.ID, Site: r.Site, Profile: r.Profile, URLs: r.URLs, Registered: r.Registered}
}

// putAppliance registers an appliance, or registers it again, and
// answers its new credential once: a credential issued before stops
// working.
func (a *API) putAppliance(w http.ResponseWriter, r *http.Request) error {
	var req Registration
	if err := gateway.DecodeJSON(r, &req); err != nil {
		return err
	}
	id := r.PathValue("id")
	if req.ID != "" && req.ID != id {
		return gateway.Errorf(http.StatusBadRequest, "id %q in the body does not match the path", req.ID)
	}
	cred, err := a.signingKeys().SignCredential(id)
	if err != nil {
		return gateway.Errorf(http.StatusServiceUnavailable, "cannot sign a credential: %v", err)
	}
	rec := &fsm.Registration{ID: id, Site: req.Site, Profile: req.Profile, URLs: req.URLs,
		CredentialHash: auth.HashSecret(cred), Registered: a.d.Now().UTC().Truncate(time.Second)}
	if err := fsm.ValidateRegistration(rec); err != nil {
		return gateway.Errorf(http.StatusBadRequest, "%v", err)
	}
	if err := a.apply(r.Context(), fsm.Command{Op: fsm.OpRegisterAppliance, Registration: rec}); err != nil {
		return err
	}
	v := registrationView(rec)
	v.Credential = cred
	w.Header().Set("Cache-Control", "no-store")
	return gateway.WriteJSON(w, http.StatusOK, v)
}

// listAppliances answers every registration, without credentials.
func (a *API) listAppliances(w http.ResponseWriter, r *http.Request) error {
	out := []Registration{}
	a.read(func(s *fsm.State) {
		for _, reg := range s.Registrations {
			out = append(out, registrationView(reg))
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return gateway.WriteJSON(w, http.StatusOK, out)
}

// deleteAppliance revokes an appliance's registration and credential: it
// leaves steering and its heartbeats get 401.
func (a *API) deleteAppliance(w http.ResponseWriter, r *http.Request) error {
	if err := a.apply(r.Context(), fsm.Command{Op: fsm.OpRevokeAppliance, ID: r.PathValue("id")}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// fillPass signs a pass for a registered appliance to show its peers and
// the origin when it fills (auth.SignFillPass): a revoked appliance gets
// none, and fills from no one once its last one expires.
func (a *API) fillPass(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var registered bool
	a.read(func(s *fsm.State) { registered = s.Registrations[id] != nil })
	if !registered {
		return gateway.Forbidden(r.Context(), "not_registered", "fill pass for "+id)
	}
	expiry := a.d.Now().Add(a.cfg.FillPassTTL).Truncate(time.Second)
	pass, err := a.signingKeys().SignFillPass(id, expiry)
	if err != nil {
		return gateway.Errorf(http.StatusServiceUnavailable, "cannot sign a fill pass: %v", err)
	}
	w.Header().Set("Cache-Control", "no-store")
	return gateway.WriteJSON(w, http.StatusOK, fillcast.FillPass{Pass: pass, ExpiresAt: expiry.UTC()})
}
