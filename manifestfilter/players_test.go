package manifestfilter_test

import (
	"encoding/json"
	"encoding/xml"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/manifestfilter"
	"github.com/fillcast/fillcast/manifestfilter/manifestfiltertest"
	"github.com/fillcast/fillcast/steering/contentsteering"
	"github.com/fillcast/fillcast/transcoder/hls"
)

// steeringManifest is what the control plane answers at the SERVER-URI,
// decoded: appliances cloned from the default pathway, then it.
func steeringManifest(t *testing.T) (priority []string, bases []string) {
	t.Helper()
	m := contentsteering.Manifest{TTL: 10 * time.Second, Pathways: []contentsteering.Pathway{
		{ID: "a1", Host: "a1.example:8443"}, {ID: "origin", Host: "origin.example"}, {ID: contentsteering.DefaultBaseID},
	}}
	b, err := m.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	var w struct {
		Priority []string `json:"PATHWAY-PRIORITY"`
		Clones   []struct {
			Base string `json:"BASE-ID"`
		} `json:"PATHWAY-CLONES"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	for _, c := range w.Clones {
		bases = append(bases, c.Base)
	}
	return w.Priority, bases
}

// absoluteURL reports whether s parses as an absolute http(s) URL with a
// host: what `new URL(s)` in a browser accepts without a base.
func absoluteURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// TestPlayersReadSteeringHLS checks the steered master playlist against
// what the players read of it, as far as that goes without a browser:
// shaka-player (lib/hls/hls_parser.js processContentSteering_,
// createStreamInfoFromVariantTags_, Tag.getTagKey), hls.js
// (m3u8-parser, content-steering-controller) and RFC 8216bis §4.4.6.6.
func TestPlayersReadSteeringHLS(t *testing.T) {
	t.Parallel()
	c := manifestfilter.NewCache(0)
	const cp = "https://cp.example"
	for _, max := range []int{0, 480} {
		v, err := c.Get("t1/master.m3u8", `"v1"`, manifestfilter.Options{MaxHeight: max, SteeringURL: cp}, func() ([]byte, error) { return manifestfiltertest.Master(), nil })
		if err != nil {
			t.Fatal(err)
		}
		var (
			tags     []map[string]string
			pathways = map[string]bool{}
			keys     = map[string]bool{}
		)
		for _, line := range strings.Split(string(v.Body), "\n") {
			name, value, _ := strings.Cut(strings.TrimSpace(line), ":")
			switch name {
			case "#EXT-X-CONTENT-STEERING":
				a, err := hls.ParseAttributes(value)
				if err != nil {
					t.Fatalf("max %d: the steering tag's attributes do not parse: %v", max, err)
				}
				tags = append(tags, a)
			case "#EXT-X-STREAM-INF":
				a, err := hls.ParseAttributes(value)
				if err != nil {
					t.Fatal(err)
				}
				id := a["PATHWAY-ID"]
				if id == "" {
					id = contentsteering.DefaultBaseID // RFC 8216bis §4.4.6.2, hls.js `|| '.'`
				}
				pathways[id] = true
				// With steering on, shaka-player takes variants equal but for
				// these attributes for one stream on several pathways.
				for _, skip := range []string{"URI", "AUDIO", "VIDEO", "SUBTITLES", "PATHWAY-ID", "GROUP-ID"} {
					delete(a, skip)
				}
				k, _ := json.Marshal(a)
				if keys[string(k)] {
					t.Errorf("max %d: two variants differ only by URI or group: %s", max, k)
				}
				keys[string(k)] = true
			}
		}
		if len(tags) != 1 {
			t.Fatalf("max %d: %d EXT-X-CONTENT-STEERING tags, want one (it MUST NOT appear twice)", max, len(tags))
		}
		tag := tags[0]
		// shaka-player ignores the tag without both.
		uri, id := tag["SERVER-URI"], tag["PATHWAY-ID"]
		if want := contentsteering.ServerURI(cp, "t1", contentsteering.ProtocolHLS); uri != want || !absoluteURL(uri) {
			t.Errorf("max %d: SERVER-URI %q, want %q, absolute", max, uri, want)
		}
		if !contentsteering.ValidPathwayID(id) || !pathways[id] {
			t.Errorf("max %d: PATHWAY-ID %q names none of the variants' pathways %v", max, id, pathways)
		}
		priority, bases := steeringManifest(t)
		for _, b := range bases {
			if !pathways[b] {
				t.Errorf("max %d: the steering server clones pathway %q; the variants are in %v", max, b, pathways)
			}
		}
		if !slices.Contains(priority, id) {
			t.Errorf("max %d: PATHWAY-PRIORITY %q lacks the starting pathway %q", max, priority, id)
		}
	}
}

// TestPlayersReadSteeringDASH checks the steered MPD, as served to a
// player at an absolute URL, against what the players read of it:
// shaka-player (lib/dash/dash_parser.js processManifest_,
// lib/util/content_steering_manager.js getLocations, which swaps the
// host of a BaseURL's text with `new URL`), dash.js (DashManifestModel
// getContentSteering, getBaseURLsFromElement; ContentSteeringController)
// and DASH-IF Content Steering.
func TestPlayersReadSteeringDASH(t *testing.T) {
	t.Parallel()
	c := manifestfilter.NewCache(0)
	const (
		cp  = "https://cp.example"
		dir = "https://a1.example:8443/c/tok.en/t1/"
	)
	v, err := c.Get("t1/manifest.mpd", `"v1"`, manifestfilter.Options{MaxHeight: 720, SteeringURL: cp}, func() ([]byte, error) { return manifestfiltertest.MPD(), nil })
	if err != nil {
		t.Fatal(err)
	}
	var mpd struct {
		XMLName xml.Name
		Base    []struct {
			Location string `xml:"serviceLocation,attr"`
			Text     string `xml:",chardata"`
		} `xml:"BaseURL"`
		Steering []struct {
			Default string `xml:"defaultServiceLocation,attr"`
			Query   string `xml:"queryBeforeStart,attr"`
			Text    string `xml:",chardata"`
		} `xml:"ContentSteering"`
	}
	if err := xml.Unmarshal(v.BodyFor(dir), &mpd); err != nil {
		t.Fatal(err)
	}
	// Both players look for the element among the MPD's children, and
	// dash.js takes the first.
	if mpd.XMLName.Local != "MPD" || len(mpd.Steering) != 1 || len(mpd.Base) != 1 {
		t.Fatalf("MPD %s with %d ContentSteering and %d BaseURL children, want one of each", mpd.XMLName.Local, len(mpd.Steering), len(mpd.Base))
	}
	cs, base := mpd.Steering[0], mpd.Base[0]
	if want := contentsteering.ServerURI(cp, "t1", contentsteering.ProtocolDASH); cs.Text != want || !absoluteURL(cs.Text) {
		t.Errorf("ContentSteering %q, want %q, absolute", cs.Text, want)
	}
	// shaka-player splits defaultServiceLocation on ',', dash.js on ' '.
	if strings.ContainsAny(cs.Default, ", ") || cs.Default != base.Location {
		t.Errorf("defaultServiceLocation %q, want one location: the BaseURL's %q", cs.Default, base.Location)
	}
	if cs.Query != "false" { // both read it as lower-case "true" or anything else
		t.Errorf("queryBeforeStart %q, want false", cs.Query)
	}
	_, bases := steeringManifest(t)
	for _, b := range bases {
		if b != base.Location {
			t.Errorf("the steering server clones service location %q; the BaseURL is in %q", b, base.Location)
		}
	}
	// shaka-player adds a location only with serviceLocation and text,
	// and clones it with `new URL(text)`: it must be absolute, and the
	// clone keeps the path with the token.
	if base.Text != dir || !absoluteURL(base.Text) || !strings.HasSuffix(base.Text, "/") {
		t.Fatalf("BaseURL %q, want %q: absolute, a directory", base.Text, dir)
	}
	clone, _ := url.Parse(base.Text)
	clone.Host = "a2.example:8443" // URI-REPLACEMENT HOST
	seg, _ := clone.Parse("480p/seg-00001.m4s")
	if seg.String() != "https://a2.example:8443/c/tok.en/t1/480p/seg-00001.m4s" {
		t.Errorf("a segment on the cloned pathway is at %s", seg)
	}
}
