package clienttest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
)

// Usage returns the usage summaries every node accepted, in order, each
// ID once.
func (c *Cluster) Usage() []fillcast.Usage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.usage)
}

// UsageReports returns how many usage summaries the node accepted,
// repeats of an ID included.
func (nd *Node) UsageReports() int {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.usage
}

// usageReport serves POST /v1/appliances/{id}/usage: a valid summary of
// the route's appliance is answered 202 and recorded, once per ID.
func (nd *Node) usageReport(w http.ResponseWriter, r *http.Request) {
	var u fillcast.Usage
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20)).Decode(&u); err != nil {
		writeError(w, http.StatusBadRequest, "usage: "+err.Error())
		return
	}
	if err := u.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if u.Appliance != r.PathValue("id") {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("usage: appliance %q in the body of appliance %q's route", u.Appliance, r.PathValue("id")))
		return
	}
	nd.mu.Lock()
	nd.usage++
	nd.mu.Unlock()
	c := nd.c
	c.mu.Lock()
	if !c.usageIDs[u.ID] {
		if c.usageIDs == nil {
			c.usageIDs = map[string]bool{}
		}
		c.usageIDs[u.ID] = true
		c.usage = append(c.usage, u)
	}
	c.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// appliance admits the admin (Token) and appliances with a credential
// signed with Keys: with self, only the appliance of the route's {id}.
func (c *Cluster) appliance(h http.HandlerFunc, self bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		authz := r.Header.Get("Authorization")
		if auth.BearerOK(authz, Token) {
			h(w, r)
			return
		}
		bearer := auth.Bearer(authz)
		if !auth.IsCredential(bearer) {
			writeError(w, http.StatusUnauthorized, "admin token or appliance credential required")
			return
		}
		ks, err := auth.NewKeys(c.Keys())
		var id string
		if err == nil {
			id, err = ks.VerifyCredential(bearer)
		}
		if err != nil || self && id != r.PathValue("id") {
			writeError(w, http.StatusForbidden, "forbidden")
			return
		}
		h(w, r)
	}
}
