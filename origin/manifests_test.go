package origin

import (
	"bytes"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/manifestfilter/manifestfiltertest"
)

// startSteered serves an origin of the test title with steeringURL, with
// keys, over TLS when tls.
func startSteered(t *testing.T, steeringURL string, tls bool) (*httptest.Server, *auth.Keys) {
	t.Helper()
	keys, err := auth.ParseKeys(strings.NewReader("k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Root, cfg.SteeringURL = t.TempDir(), steeringURL
	putTitle(t, cfg.Root, "t1")
	o, err := New(cfg, Deps{AdminToken: "adm", Keys: keys.Public(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(o)
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(func() { srv.Close(); o.Close() })
	return srv, keys
}

// TestSteeringAdvertised: over HTTP on loopback, the master playlist and
// the MPD a player fetches from an origin with a steering URL advertise
// the title's steering manifest at the control plane, filtered to the
// token's limit or not, the MPD's BaseURL absolute as the player asked
// for it; appliances' fills, tools and an origin without the URL get the
// files as they are.
func TestSteeringAdvertised(t *testing.T) {
	t.Parallel()
	srv, keys := startSteered(t, "https://cp.example", false)
	tlsSrv, _ := startSteered(t, "https://cp.example", true)
	bare, _ := startSteered(t, "", false)
	pass, err := keys.SignFillPass("a1", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	prefix := func(l auth.Limits) string {
		return keys.SignPathLimited("t1", time.Now().Add(time.Hour), netip.Prefix{}, l)
	}
	full, basic := prefix(auth.Limits{}), prefix(auth.Limits{MaxHeight: 480})
	files := manifestfiltertest.Files()
	const (
		hlsTag    = `#EXT-X-CONTENT-STEERING:SERVER-URI="https://cp.example/v1/steering/t1?protocol=hls",PATHWAY-ID="."`
		dashSteer = "https://cp.example/v1/steering/t1?protocol=dash"
	)
	tests := []struct {
		name     string
		srv      *httptest.Server
		path     string
		authz    string
		tag      bool     // a master playlist with hlsTag
		base     string   // the BaseURL of a steered MPD, after the server's URL
		variants []string // the renditions listed
		original string   // the file served as it is
	}{
		{"master", srv, full + "/master.m3u8", "", true, "", []string{"1080p", "hd", "480p", "240p"}, ""},
		{"master, limited", srv, basic + "/master.m3u8", "", true, "", []string{"480p", "240p"}, ""},
		{"MPD", srv, full + "/manifest.mpd", "", false, full + "/", []string{"1080p", "hd", "480p", "240p"}, ""},
		{"MPD, limited", srv, basic + "/manifest.mpd", "", false, basic + "/", []string{"480p", "240p"}, ""},
		{"MPD over TLS", tlsSrv, full + "/manifest.mpd", "", false, full + "/", []string{"1080p", "hd", "480p", "240p"}, ""},
		{"an appliance's fill: master", srv, "/f/t1/master.m3u8", "Bearer " + pass, false, "", nil, "master.m3u8"},
		{"an appliance's fill: MPD", srv, "/f/t1/manifest.mpd", "Bearer " + pass, false, "", nil, "manifest.mpd"},
		{"a tool: MPD", srv, "/t1/manifest.mpd", "Bearer adm", false, "", nil, "manifest.mpd"},
		{"no steering URL: master", bare, full + "/master.m3u8", "", false, "", nil, "master.m3u8"},
		{"no steering URL: MPD", bare, full + "/manifest.mpd", "", false, "", nil, "manifest.mpd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, tt.srv.URL+tt.path, nil)
			if tt.authz != "" {
				req.Header.Set("Authorization", tt.authz)
			}
			resp, err := tt.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("GET %s = %d %q", tt.path, resp.StatusCode, b)
			}
			if tt.original != "" {
				if !bytes.Equal(b, files[tt.original]) {
					t.Errorf("GET %s =\n%s\nwant the file as it is", tt.path, b)
				}
				return
			}
			if got := strings.Count(string(b), "#EXT-X-CONTENT-STEERING"); tt.tag && (got != 1 || !strings.Contains(string(b), hlsTag+"\n")) {
				t.Errorf("GET %s =\n%s\nwant one steering tag: %s", tt.path, b, hlsTag)
			}
			if tt.base != "" {
				var m struct {
					Base []struct {
						Location string `xml:"serviceLocation,attr"`
						Text     string `xml:",chardata"`
					} `xml:"BaseURL"`
					Steering []struct {
						Default string `xml:"defaultServiceLocation,attr"`
						Text    string `xml:",chardata"`
					} `xml:"ContentSteering"`
				}
				if err := xml.Unmarshal(b, &m); err != nil {
					t.Fatal(err)
				}
				if want := tt.srv.URL + tt.base; len(m.Base) != 1 || m.Base[0].Text != want || m.Base[0].Location != "." ||
					len(m.Steering) != 1 || m.Steering[0].Text != dashSteer || m.Steering[0].Default != "." {
					t.Errorf("GET %s: BaseURL %+v, ContentSteering %+v; want %q in \".\", steered at %s", tt.path, m.Base, m.Steering, want, dashSteer)
				}
			}
			if got := listed(t, tt.path, b); !slices.Equal(got, tt.variants) {
				t.Errorf("GET %s lists %q, want %q", tt.path, got, tt.variants)
			}
			if etag := resp.Header.Get("ETag"); !strings.Contains(etag, "-s") {
				t.Errorf("GET %s: ETag %s, want the steered variant's", tt.path, etag)
			}
		})
	}
}

func TestValidateSteeringURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"cp.example", "ftp://cp.example", "https://cp.example/#x", "https://u@cp.example"} {
		cfg := DefaultConfig()
		cfg.Root, cfg.SteeringURL = t.TempDir(), u
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "SteeringURL") {
			t.Errorf("SteeringURL %q: %v, want an error naming SteeringURL", u, err)
		}
	}
}
