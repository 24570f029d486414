package api

import (
	"net/http"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/gateway"
)

// getManifest answers GET /v1/appliances/{id}/manifest: the
// appliance's fill plan as a fillcast.Manifest, each planned title by
// its file list's digest (the appliance fetches the list), with an ETag,
// and the renditions of every ready title, with which the appliance
// enforces the limits of playback tokens on planned and unplanned titles
// alike.
func (a *API) getManifest(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	catalog := a.catalog()
	var v *fillcast.Manifest
	a.read(func(s *fsm.State) {
		m := s.Manifests[id]
		if m == nil {
			return
		}
		v = &fillcast.Manifest{Appliance: id, Version: m.Version, Titles: make([]fillcast.ManifestTitle, 0, len(m.Titles)), Catalog: catalog}
		if ap := s.Appliances[id]; ap != nil {
			v.Site = ap.Site
			if site := s.Sites[ap.Site]; site != nil {
				v.FillWindow, v.Timezone = site.FillWindow, site.Timezone
			}
		}
		for _, t := range m.Titles {
			// A title deleted since the plan was made is left out.
			if title := s.Titles[t]; title != nil && title.Status == fillcast.StatusReady {
				v.Titles = append(v.Titles, fillcast.ManifestTitle{ID: t, FilesDigest: title.FilesDigest, Bytes: title.Bytes, FileCount: title.FileCount})
			}
		}
	})
	if v == nil {
		return gateway.Errorf(http.StatusNotFound, "no fill manifest for appliance %q", id)
	}
	// Appliances poll it: unchanged, it costs them a 304.
	return gateway.WriteJSONETag(w, r, v)
}

// catalogAt is the manifests' catalog as of a generation of the state
// (fsm.FSM.Generation).
type catalogAt struct {
	generation uint64
	catalog    []fillcast.TitleRenditions
}

// catalog returns the manifests' catalog (catalogRenditions), made again
// only once the state has changed since it was last made: every
// appliance's poll shares it. It is keyed by the state's generation,
// which every change moves on, a snapshot's restore too (the applied
// index would not: a restore may leave it where it was, or move it
// back). The catalog is read at a generation at least the one it is kept
// under, so one kept under the generation now is current.
func (a *API) catalog() []fillcast.TitleRenditions {
	f := a.d.Node.FSM()
	gen := f.Generation()
	if c := a.catalogs.Load(); c != nil && c.generation == gen {
		return c.catalog
	}
	var out []fillcast.TitleRenditions
	f.Read(func(s *fsm.State) { out = catalogRenditions(s) })
	a.catalogs.Store(&catalogAt{generation: gen, catalog: out})
	return out
}

// catalogRenditions lists the ready titles by id, each with its
// renditions' directories and heights (0 for audio). A video rendition
// without a height is left out: appliances refuse restricted tokens the
// files of a directory they do not know. The order is fixed, so that an
// unchanged catalog keeps the manifest's ETag.
func catalogRenditions(s *fsm.State) []fillcast.TitleRenditions {
	out := make([]fillcast.TitleRenditions, 0, len(s.Titles))
	s.TitlesAfter("", func(t *fillcast.Title) bool {
		if t.Status != fillcast.StatusReady {
			return true
		}
		tr := fillcast.TitleRenditions{ID: t.ID, Renditions: make([]fillcast.RenditionHeight, 0, len(t.Renditions))}
		for _, r := range t.Renditions {
			h := r.Height
			if r.Kind != "video" {
				h = 0
			} else if h <= 0 {
				continue
			}
			tr.Renditions = append(tr.Renditions, fillcast.RenditionHeight{ID: r.ID, Height: h})
		}
		out = append(out, tr)
		return true
	})
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
