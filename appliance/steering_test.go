package appliance

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/manifestfilter/manifestfiltertest"
)

// TestManifestsAdvertiseSteering: over HTTP on loopback, an appliance
// serves players the master playlist and the MPD with the title's
// steering manifest at the control plane: its first control-plane URL,
// or the steering URL it is given; a site peer filling its cache gets the
// files as the origin has them.
func TestManifestsAdvertiseSteering(t *testing.T) {
	t.Parallel()
	cp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/manifest") {
			http.Error(w, `{"error":"no fill manifest"}`, http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer cp.Close()
	o := startOrigin(t)
	files := manifestfiltertest.Files()
	for path, b := range files {
		o.put(t, "t1/"+path, b)
	}
	start := func(steeringURL string) *testAppliance {
		return startApplianceWith(t, t.TempDir(), 16<<20, []string{o.srv.URL}, func(c *Config) {
			c.ControlPlanes, c.HeartbeatInterval, c.FillPoll = []string{cp.URL + "/", "http://cp2.example:7000"}, time.Hour, time.Hour
			c.Server.SteeringURL = steeringURL
		})
	}
	tests := []struct {
		name, steeringURL, want string
	}{
		{"the first control plane", "", cp.URL},
		{"a steering URL of its own", "https://watch.example", "https://watch.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := start(tt.steeringURL)
			prefix := signed(t, "t1")
			resp, b := get(t, a.url+prefix+"/master.m3u8")
			tag := `#EXT-X-CONTENT-STEERING:SERVER-URI="` + tt.want + `/v1/steering/t1?protocol=hls",PATHWAY-ID="."` + "\n"
			if resp.StatusCode != 200 || strings.Count(string(b), "#EXT-X-CONTENT-STEERING") != 1 || !strings.Contains(string(b), tag) {
				t.Errorf("master: %d\n%s\nwant one %s", resp.StatusCode, b, tag)
			}
			resp, b = get(t, a.url+prefix+"/manifest.mpd")
			var m struct {
				Base     []string `xml:"BaseURL"`
				Steering []string `xml:"ContentSteering"`
			}
			if err := xml.Unmarshal(b, &m); err != nil || resp.StatusCode != 200 {
				t.Fatalf("MPD: %d, %v", resp.StatusCode, err)
			}
			if base, steer := a.url+prefix+"/", tt.want+"/v1/steering/t1?protocol=dash"; len(m.Base) != 1 || m.Base[0] != base || len(m.Steering) != 1 || m.Steering[0] != steer {
				t.Errorf("MPD: BaseURL %q, ContentSteering %q; want %q and %q", m.Base, m.Steering, base, steer)
			}
			pass, err := keys(t).SignFillPass("a2", time.Now().Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			for _, object := range []string{"master.m3u8", "manifest.mpd"} {
				_, b := get(t, a.url+"/f/t1/"+object, "Authorization", "Bearer "+pass)
				if !bytes.Equal(b, files[object]) {
					t.Errorf("a peer's fill of %s:\n%s\nwant the origin's file", object, b)
				}
			}
		})
	}
}

func TestValidateSteering(t *testing.T) {
	t.Parallel()
	valid := func() Config {
		var c Config
		c.ID, c.Site = "a1", "s1"
		c.Cache.Dir, c.Cache.DiskBytes = t.TempDir(), 1<<30
		c.Upstream.URLs = []string{"http://origin:9000"}
		return c
	}
	tests := []struct {
		name      string
		tweak     func(*Config)
		wantField string
		wantURL   string // the steering URL the server gets
	}{
		{"none", func(*Config) {}, "", ""},
		{"the first control plane", func(c *Config) { c.ControlPlanes = []string{"http://cp1:7000/", "http://cp2:7000"} }, "", "http://cp1:7000"},
		{"its own", func(c *Config) {
			c.ControlPlanes, c.Server.SteeringURL = []string{"http://cp1:7000"}, "https://watch.example"
		}, "", "https://watch.example"},
		{"a first control plane that cannot be one", func(c *Config) { c.ControlPlanes = []string{"http://cp1:7000/?x=1"} }, "ControlPlanes", ""},
		{"a bad one of its own", func(c *Config) { c.Server.SteeringURL = "watch.example" }, "Server.SteeringURL", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.tweak(&c)
			if err := c.Validate(); configField(err) != tt.wantField {
				t.Fatalf("Validate: %v, want field %q", err, tt.wantField)
			}
			if got := c.WithDefaults().Server.SteeringURL; tt.wantField == "" && got != tt.wantURL {
				t.Errorf("the server's SteeringURL = %q, want %q", got, tt.wantURL)
			}
		})
	}
}
