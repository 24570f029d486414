package server

import (
	"bytes"
	"encoding/xml"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/manifestfilter/manifestfiltertest"
	"github.com/valyala/fasthttp"
)

// steeredMPD is what a player reads of a steered MPD.
type steeredMPD struct {
	Base []struct {
		Location string `xml:"serviceLocation,attr"`
		Text     string `xml:",chardata"`
	} `xml:"BaseURL"`
	Steering []struct {
		Default string `xml:"defaultServiceLocation,attr"`
		Text    string `xml:",chardata"`
	} `xml:"ContentSteering"`
}

// TestSteeringAdvertised: with a steering URL, the master playlist and
// the MPD a player fetches advertise the title's steering manifest at the
// control plane, filtered to the token's limit or not, the MPD's BaseURL
// absolute as the player asked (https behind TLS, relative when the Host
// is no host); site peers and a server without the URL get the files as
// they are.
func TestSteeringAdvertised(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	newServer := func(cfg Config) *Server {
		s, err := New(cfg, Deps{Cache: newTitleCache("t1"), Keys: keys.Public()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	var (
		plain  = newServer(Config{SteeringURL: "https://cp.example"})
		tls    = newServer(Config{SteeringURL: "https://cp.example/", TLS: true})
		none   = newServer(Config{})
		prefix = func(l auth.Limits) string {
			return keys.SignPathLimited("t1", time.Now().Add(time.Hour), netip.Prefix{}, l)
		}
		full    = prefix(auth.Limits{})
		limited = prefix(basic)
		files   = manifestfiltertest.Files()
	)
	pass, err := keys.SignFillPass("a2", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	const (
		hlsTag    = `#EXT-X-CONTENT-STEERING:SERVER-URI="https://cp.example/v1/steering/t1?protocol=hls",PATHWAY-ID="."`
		dashSteer = "https://cp.example/v1/steering/t1?protocol=dash"
	)
	tests := []struct {
		name     string
		s        *Server
		path     string
		host     string
		tag      string   // the steering tag of a master playlist
		base     string   // the BaseURL of an MPD
		variants []string // the renditions listed
		original string   // the file served as it is
	}{
		{"master", plain, full + "/master.m3u8", "a1.example:8080", hlsTag, "", []string{"1080p", "hd", "480p", "240p"}, ""},
		{"master, limited", plain, limited + "/master.m3u8", "a1.example:8080", hlsTag, "", []string{"480p", "240p"}, ""},
		{"MPD", plain, full + "/manifest.mpd", "a1.example:8080", "", "http://a1.example:8080" + full + "/", []string{"1080p", "hd", "480p", "240p"}, ""},
		{"MPD, limited, over TLS", tls, limited + "/manifest.mpd", "[2001:db8::1]", "", "https://[2001:db8::1]" + limited + "/", []string{"480p", "240p"}, ""},
		{"MPD, a Host that is no host", plain, full + "/manifest.mpd", "a1<b>", "", "./", []string{"1080p", "hd", "480p", "240p"}, ""},
		{"a peer's fill: master", plain, "/f/t1/master.m3u8", "a1.example", "", "", nil, "master.m3u8"},
		{"a peer's fill: MPD", plain, "/f/t1/manifest.mpd", "a1.example", "", "", nil, "manifest.mpd"},
		{"no steering URL: master", none, full + "/master.m3u8", "a1.example", "", "", nil, "master.m3u8"},
		{"no steering URL: MPD", none, full + "/manifest.mpd", "a1.example", "", "", nil, "manifest.mpd"},
		{"a media playlist", plain, full + "/480p/playlist.m3u8", "a1.example", "", "", nil, "480p/playlist.m3u8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			request(&ctx, tt.path)
			ctx.Request.Header.SetHost(tt.host)
			if strings.HasPrefix(tt.path, "/f/") {
				ctx.Request.Header.Set("Authorization", "Bearer "+pass)
			}
			tt.s.Handle(&ctx)
			got := ctx.Response.Body()
			if code := ctx.Response.StatusCode(); code != 200 {
				t.Fatalf("GET %s = %d %q", tt.path, code, got)
			}
			if tt.original != "" {
				if !bytes.Equal(got, files[tt.original]) {
					t.Errorf("GET %s =\n%s\nwant the file as it is", tt.path, got)
				}
				return
			}
			if tt.tag != "" && strings.Count(string(got), "#EXT-X-CONTENT-STEERING") != 1 || !strings.Contains(string(got), tt.tag) {
				t.Errorf("GET %s =\n%s\nwant one steering tag: %s", tt.path, got, tt.tag)
			}
			if tt.base != "" {
				var m steeredMPD
				if err := xml.Unmarshal(got, &m); err != nil {
					t.Fatal(err)
				}
				if len(m.Base) != 1 || m.Base[0].Text != tt.base || m.Base[0].Location != "." ||
					len(m.Steering) != 1 || m.Steering[0].Text != dashSteer || m.Steering[0].Default != "." {
					t.Errorf("GET %s: BaseURL %+v, ContentSteering %+v; want %q in \".\", steered at %s", tt.path, m.Base, m.Steering, tt.base, dashSteer)
				}
			}
			if v := variants(t, tt.path, got); strings.Join(v, " ") != strings.Join(tt.variants, " ") {
				t.Errorf("GET %s lists %q, want %q", tt.path, v, tt.variants)
			}
		})
	}
}

// TestSteeredManifestHTTP: a steered manifest is its own representation,
// made once: its own ETag, a 304 for it, ranges over its bytes; an MPD
// is made once and given its BaseURL per request.
func TestSteeredManifestHTTP(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	s, err := New(Config{SteeringURL: "https://cp.example"}, Deps{Cache: newTitleCache("t1"), Keys: keys.Public()})
	if err != nil {
		t.Fatal(err)
	}
	p := keys.SignPath("t1", time.Now().Add(time.Hour), netip.Prefix{})
	for _, tc := range []struct{ object, etag string }{
		{"master.m3u8", `"t1-master.m3u8-s14d95995"`},
		{"manifest.mpd", `"t1-manifest.mpd-s14d95995"`},
	} {
		var ctx fasthttp.RequestCtx
		request(&ctx, p+"/"+tc.object)
		ctx.Request.Header.SetHost("a1.example")
		s.Handle(&ctx)
		first := bytes.Clone(ctx.Response.Body())
		if got := string(ctx.Response.Header.Peek("ETag")); ctx.Response.StatusCode() != 200 || got != tc.etag {
			t.Fatalf("%s: %d, ETag %s; want 200, %s", tc.object, ctx.Response.StatusCode(), got, tc.etag)
		}
		steps := []struct {
			name, header, value string
			code                int
			body                []byte
		}{
			{"its own tag", "If-None-Match", tc.etag, 304, nil},
			{"the file's tag", "If-None-Match", `"t1-` + tc.object + `"`, 200, first},
			{"a range", "Range", "bytes=0-6", 206, first[:7]},
			{"again", "", "", 200, first},
		}
		for _, st := range steps {
			request(&ctx, p+"/"+tc.object)
			ctx.Request.Header.SetHost("a1.example")
			if st.header != "" {
				ctx.Request.Header.Set(st.header, st.value)
			}
			s.Handle(&ctx)
			if ctx.Response.StatusCode() != st.code || st.body != nil && !bytes.Equal(ctx.Response.Body(), st.body) {
				t.Errorf("%s, %s: %d %q, want %d %q", tc.object, st.name, ctx.Response.StatusCode(), ctx.Response.Body(), st.code, st.body)
			}
		}
	}
	if n := s.variants.Len(); n != 2 {
		t.Errorf("%d variants held after ten requests for two manifests, want 2", n)
	}
}

func TestValidateSteeringURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"cp.example", "ftp://cp.example", "https://cp.example/?x=1", `https://cp.example/"`} {
		err := Config{SteeringURL: u}.Validate()
		if err == nil || !strings.Contains(err.Error(), "SteeringURL") {
			t.Errorf("SteeringURL %q: %v, want an error naming SteeringURL", u, err)
		}
	}
	if err := (Config{SteeringURL: "https://cp.example:7000/"}).Validate(); err != nil {
		t.Errorf("a good SteeringURL: %v", err)
	}
}
