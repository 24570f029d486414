package api

import (
	"net/http"
	"slices"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/gateway"
)

// getManifest answers GET /v1/appliances/{id}/manifest: the
// appliance's fill plan as a fillcast.Manifest, with an ETag, and the
// renditions of every ready title, with which the appliance enforces the
// limits of playback tokens on planned and unplanned titles alike.
func (a *API) getManifest(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var v *fillcast.Manifest
	a.read(func(s *fsm.State) {
		m := s.Manifests[id]
		if m == nil {
			return
		}
		v = &fillcast.Manifest{Appliance: id, Version: m.Version, Titles: make([]fillcast.ManifestTitle, 0, len(m.Titles))}
		if ap := s.Appliances[id]; ap != nil {
			v.Site = ap.Site
			if site := s.Sites[ap.Site]; site != nil {
				v.FillWindow, v.Timezone = site.FillWindow, site.Timezone
			}
		}
		for _, t := range m.Titles {
			// A title deleted since the plan was made is left out.
			if title := s.Titles[t]; title != nil && title.Status == fillcast.StatusReady {
				v.Titles = append(v.Titles, fillcast.ManifestTitle{ID: t, Files: title.Files})
			}
		}
		v.Catalog = catalogRenditions(s.Titles)
	})
	if v == nil {
		return gateway.Errorf(http.StatusNotFound, "no fill manifest for appliance %q", id)
	}
	// Appliances poll it: unchanged, it costs them a 304.
	return gateway.WriteJSONETag(w, r, v)
}

// catalogRenditions lists the ready titles by id, each with its
// renditions' directories and heights (0 for audio). A video rendition
// without a height is left out: appliances refuse restricted tokens the
// files of a directory they do not know. The order is fixed, so that an
// unchanged catalog keeps the manifest's ETag.
func catalogRenditions(titles map[string]*fillcast.Title) []fillcast.TitleRenditions {
	ids := make([]string, 0, len(titles))
	for id, t := range titles {
		if t.Status == fillcast.StatusReady {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	out := make([]fillcast.TitleRenditions, 0, len(ids))
	for _, id := range ids {
		tr := fillcast.TitleRenditions{ID: id, Renditions: make([]fillcast.RenditionHeight, 0, len(titles[id].Renditions))}
		for _, r := range titles[id].Renditions {
			h := r.Height
			if r.Kind != "video" {
				h = 0
			} else if h <= 0 {
				continue
			}
			tr.Renditions = append(tr.Renditions, fillcast.RenditionHeight{ID: r.ID, Height: h})
		}
		out = append(out, tr)
	}
	return out
}

// manifestRequest is the body of PUT /v1/appliances/{id}/manifest, for
// operators who plan by hand.
type manifestRequest struct {
	Version uint64   `json:"version"`
	Titles  []string `json:"titles"`
}

func (a *API) putManifest(w http.ResponseWriter, r *http.Request) error {
	var req manifestRequest
	if err := gateway.DecodeJSON(r, &req); err != nil {
		return err
	}
	m := fsm.Manifest{Appliance: r.PathValue("id"), Version: req.Version, Titles: req.Titles, Updated: a.d.Now().UTC()}
	if err := a.apply(r.Context(), fsm.Command{Op: fsm.OpPutManifest, Manifest: &m}); err != nil {
		return err
	}
	return gateway.WriteJSON(w, http.StatusOK, m)
}
