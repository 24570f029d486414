package api

import (
	"net/http"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/gateway"
)

func (a *API) listSites(w http.ResponseWriter, r *http.Request) error {
	var out []*fillcast.Site
	a.read(func(s *fsm.State) { out = sortedValues(s.Sites) })
	return gateway.WriteJSON(w, http.StatusOK, out)
}

func (a *API) getSite(w http.ResponseWriter, r *http.Request) error {
	return getByID(a, w, r, "site", func(s *fsm.State) map[string]*fillcast.Site { return s.Sites })
}

// putSite creates or replaces a site. Besides the record's own checks,
// its parent must exist and no prefix may already belong to another site,
// so steering never meets an ambiguous client address.
func (a *API) putSite(w http.ResponseWriter, r *http.Request) error {
	var site fillcast.Site
	if err := gateway.DecodeJSON(r, &site); err != nil {
		return err
	}
	if site.ID != "" && site.ID != r.PathValue("id") {
		return gateway.Errorf(http.StatusBadRequest, "id %q in the body does not match the path", site.ID)
	}
	site.ID = r.PathValue("id")
	if err := fsm.ValidateSite(&site); err != nil {
		return gateway.Errorf(http.StatusBadRequest, "%v", err)
	}
	var problem string
	a.read(func(s *fsm.State) {
		if site.Parent != "" && s.Sites[site.Parent] == nil {
			problem = "parent: site " + site.Parent + " does not exist (create it first)"
			return
		}
		for _, other := range s.Sites {
			if other.ID == site.ID {
				continue
			}
			for _, p := range other.Prefixes {
				for _, q := range site.Prefixes {
					if p == q {
						problem = "prefix " + q + " already belongs to site " + other.ID
						return
					}
				}
			}
		}
	})
	if problem != "" {
		return gateway.Errorf(http.StatusBadRequest, "%s", problem)
	}
	if err := a.apply(r.Context(), fsm.Command{Op: fsm.OpPutSite, Site: &site}); err != nil {
		return err
	}
	return gateway.WriteJSON(w, http.StatusOK, site)
}

func (a *API) deleteSite(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var exists bool
	var child string
	a.read(func(s *fsm.State) {
		_, exists = s.Sites[id]
		for _, x := range s.Sites {
			if x.Parent == id {
				child = x.ID
			}
		}
	})
	if !exists {
		return gateway.Errorf(http.StatusNotFound, "site %q not found", id)
	}
	if child != "" {
		return gateway.Errorf(http.StatusConflict, "site %q is the parent of %q", id, child)
	}
	if err := a.apply(r.Context(), fsm.Command{Op: fsm.OpDeleteSite, ID: id}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
