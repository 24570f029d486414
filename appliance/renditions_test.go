package appliance

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/fillcast/fillcast/manifestfilter/manifestfiltertest"
	"github.com/fillcast/fillcast/transcoder/hls"
)

// TestCatalogRenditions: the appliance learns the catalog's renditions
// from its fill manifest, for a title it has not planned. Before, a
// token limited to 720p is refused the 720p rendition named "hd" (a name
// that says no height: fail closed); after, it gets it, and still not the
// 1080p one. The master playlist is filtered on the miss (read from the
// fill under way) and on the disk hits after it.
func TestCatalogRenditions(t *testing.T) {
	t.Parallel()
	var published atomic.Bool
	cp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/manifest") && published.Load():
			m := fillcast.Manifest{Appliance: "a1", Version: 1, Titles: []fillcast.ManifestTitle{}}
			tr := fillcast.TitleRenditions{ID: "t1"}
			for _, rd := range manifestfiltertest.Renditions {
				tr.Renditions = append(tr.Renditions, fillcast.RenditionHeight{ID: rd.ID, Height: rd.Height})
			}
			m.Catalog = []fillcast.TitleRenditions{tr}
			json.NewEncoder(w).Encode(m)
		case strings.HasSuffix(r.URL.Path, "/manifest"):
			http.Error(w, `{"error":"no fill manifest"}`, http.StatusNotFound)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer cp.Close()
	o := startOrigin(t)
	for path, b := range manifestfiltertest.Files() {
		o.put(t, "t1/"+path, b)
	}
	a := startApplianceWith(t, t.TempDir(), 0, []string{o.srv.URL}, func(c *Config) {
		c.ControlPlanes, c.HeartbeatInterval, c.FillPoll = []string{cp.URL}, time.Hour, 10*time.Millisecond
	})
	prefix := keys(t).SignPathLimited("t1", time.Now().Add(time.Hour), netip.Prefix{}, auth.Limits{MaxHeight: 720})
	if resp, _ := get(t, a.url+prefix+"/hd/seg-00001.m4s"); resp.StatusCode != 403 {
		t.Fatalf("a rendition named without its height, before the catalog: %d, want 403", resp.StatusCode)
	}
	published.Store(true)
	poll.Until(t, 10*time.Second, "the catalog's 720p rendition named hd to be served", func() bool {
		resp, _ := get(t, a.url+prefix+"/hd/seg-00001.m4s")
		return resp.StatusCode == 200
	})
	if resp, _ := get(t, a.url+prefix+"/1080p/seg-00001.m4s"); resp.StatusCode != 403 {
		t.Errorf("1080p under a 720 limit: %d, want 403", resp.StatusCode)
	}
	for _, tier := range []string{"MISS", "HIT-disk"} {
		resp, b := get(t, a.url+prefix+"/master.m3u8")
		if resp.StatusCode != 200 || resp.Header.Get("X-Cache") != tier {
			t.Fatalf("master: %d from %s, want 200 from %s", resp.StatusCode, resp.Header.Get("X-Cache"), tier)
		}
		m, err := hls.ParseMaster(b)
		if err != nil {
			t.Fatalf("master from %s: %v", tier, err)
		}
		var uris []string
		for _, v := range m.Variants {
			uris = append(uris, v.URI)
		}
		if strings.Join(uris, " ") != "hd/playlist.m3u8 480p/playlist.m3u8 240p/playlist.m3u8" {
			t.Errorf("master from %s lists %q, want hd, 480p and 240p", tier, uris)
		}
	}
}
