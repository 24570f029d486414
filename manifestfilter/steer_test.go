package manifestfilter_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/fillcast/fillcast/manifestfilter"
	"github.com/fillcast/fillcast/manifestfilter/manifestfiltertest"
	"github.com/fillcast/fillcast/transcoder/dash"
	"github.com/fillcast/fillcast/transcoder/hls"
)

const (
	hlsURI  = "https://cp.example/v1/steering/t1?protocol=hls"
	dashURI = "https://cp.example/v1/steering/t1?protocol=dash"
	hlsTag  = `#EXT-X-CONTENT-STEERING:SERVER-URI="` + hlsURI + `",PATHWAY-ID="."`
)

// TestSteerMaster: where the tag goes, on playlists written by hand, and
// what is refused.
func TestSteerMaster(t *testing.T) {
	t.Parallel()
	variant := "#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=640x360\n360p/p.m3u8\n"
	tests := []struct {
		name, in, uri, want string
		err                 error
	}{
		{"after the header", "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n" + variant, hlsURI,
			"#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n" + hlsTag + "\n" + variant, nil},
		{"before the renditions", "#EXTM3U\n#EXT-X-START:TIME-OFFSET=0\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"a/p.m3u8\"\n" + variant, hlsURI,
			"#EXTM3U\n#EXT-X-START:TIME-OFFSET=0\n" + hlsTag + "\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"a/p.m3u8\"\n" + variant, nil},
		{"CRLF", "#EXTM3U\r\n#EXT-X-VERSION:7\r\n#EXT-X-STREAM-INF:BANDWIDTH=1\r\nx/p.m3u8\r\n", hlsURI,
			"#EXTM3U\r\n#EXT-X-VERSION:7\r\n" + hlsTag + "\r\n#EXT-X-STREAM-INF:BANDWIDTH=1\r\nx/p.m3u8\r\n", nil},
		{"header alone, no last line break", "#EXTM3U\n#EXT-X-VERSION:7", hlsURI,
			"#EXTM3U\n#EXT-X-VERSION:7\n" + hlsTag + "\n", nil},
		{"the packager's tag stays", "#EXTM3U\n#EXT-X-CONTENT-STEERING:SERVER-URI=\"/s.json\"\n" + variant, hlsURI,
			"#EXTM3U\n#EXT-X-CONTENT-STEERING:SERVER-URI=\"/s.json\"\n" + variant, nil},
		{"variants in the default pathway by name", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,PATHWAY-ID=\".\"\nx/p.m3u8\n", hlsURI,
			"#EXTM3U\n" + hlsTag + "\n#EXT-X-STREAM-INF:BANDWIDTH=1,PATHWAY-ID=\".\"\nx/p.m3u8\n", nil},
		{"some variants in a pathway of their own", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,PATHWAY-ID=\"cdn-b\"\nhttps://b/x/p.m3u8\n" + variant, hlsURI,
			"#EXTM3U\n" + hlsTag + "\n#EXT-X-STREAM-INF:BANDWIDTH=1,PATHWAY-ID=\"cdn-b\"\nhttps://b/x/p.m3u8\n" + variant, nil},
		{"a query with &", "#EXTM3U\n" + variant, "https://cp.example/s?a=1&b=2",
			"#EXTM3U\n#EXT-X-CONTENT-STEERING:SERVER-URI=\"https://cp.example/s?a=1&b=2\",PATHWAY-ID=\".\"\n" + variant, nil},
		{"every variant in a pathway of its own", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,PATHWAY-ID=\"cdn-a\"\nx/p.m3u8\n", hlsURI, "", manifestfilter.ErrOwnPathways},
		{"not a playlist", "<MPD/>", hlsURI, "", manifestfilter.ErrSyntax},
		{"empty", "", hlsURI, "", manifestfilter.ErrSyntax},
		{"relative server URI", "#EXTM3U\n" + variant, "/v1/steering/t1", "", manifestfilter.ErrServerURI},
		{"empty server URI", "#EXTM3U\n" + variant, "", "", manifestfilter.ErrServerURI},
		{"a quote in the server URI", "#EXTM3U\n" + variant, `https://cp.example/"x`, "", manifestfilter.ErrServerURI},
		{"a line break in the server URI", "#EXTM3U\n" + variant, "https://cp.example/\nx", "", manifestfilter.ErrServerURI},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := manifestfilter.SteerMaster([]byte(tt.in), tt.uri)
			if !errors.Is(err, tt.err) || string(got) != tt.want {
				t.Fatalf("SteerMaster = %q, %v\nwant %q, %v", got, err, tt.want, tt.err)
			}
			if err != nil {
				return
			}
			if again, err := manifestfilter.SteerMaster(got, tt.uri); err != nil || !bytes.Equal(again, got) {
				t.Errorf("steering twice = %q, %v; want the first answer", again, err)
			}
		})
	}
}

// TestSteerTranscoderOutput steers the transcoder's own playlist and
// MPD, filtered or not: what comes out still parses with the same
// renditions, and carries the steering once.
func TestSteerTranscoderOutput(t *testing.T) {
	t.Parallel()
	for _, max := range []int{0, 480} {
		master, err := manifestfilter.Filter(manifestfilter.MasterName, manifestfiltertest.Master(), max)
		if err != nil {
			t.Fatal(err)
		}
		got, err := manifestfilter.SteerMaster(master, hlsURI)
		if err != nil {
			t.Fatalf("max %d: SteerMaster: %v", max, err)
		}
		if n := strings.Count(string(got), "#EXT-X-CONTENT-STEERING:"); n != 1 || !strings.Contains(string(got), "\n"+hlsTag+"\n") {
			t.Errorf("max %d: %d steering tags in\n%s\nwant one: %s", max, n, got, hlsTag)
		}
		before, _ := hls.ParseMaster(master)
		after, err := hls.ParseMaster(got)
		if err != nil || !slices.Equal(uris(after), uris(before)) || len(after.Audio) != len(before.Audio) {
			t.Errorf("max %d: the steered playlist parses to %+v, %v; want %+v", max, after, err, before)
		}

		mpd, err := manifestfilter.Filter(manifestfilter.MPDName, manifestfiltertest.MPD(), max)
		if err != nil {
			t.Fatal(err)
		}
		got, err = manifestfilter.SteerMPD(mpd, dashURI)
		if err != nil {
			t.Fatalf("max %d: SteerMPD: %v", max, err)
		}
		for _, want := range []string{
			"\">\n  <BaseURL serviceLocation=\".\">./</BaseURL>\n  <Period ",
			"</Period>\n  <ContentSteering defaultServiceLocation=\".\" queryBeforeStart=\"false\">" + dashURI + "</ContentSteering>\n</MPD>",
		} {
			if !strings.Contains(string(got), want) {
				t.Errorf("max %d: the steered MPD lacks %q:\n%s", max, want, got)
			}
		}
		m1, _ := dash.Parse(mpd)
		m2, err := dash.Parse(got)
		if err != nil || len(m2.Periods) != 1 || !slices.Equal(reps(m2), reps(m1)) {
			t.Errorf("max %d: the steered MPD parses to %v, %v; want %v", max, reps(m2), err, reps(m1))
		}
		if again, err := manifestfilter.SteerMPD(got, dashURI); err != nil || !bytes.Equal(again, got) {
			t.Errorf("max %d: steering the MPD twice changed it: %v", max, err)
		}
		if refiltered, err := manifestfilter.Filter(manifestfilter.MPDName, got, max); max > 0 && (err != nil || !bytes.Equal(refiltered, got)) {
			t.Errorf("max %d: filtering the steered MPD again changed it: %v", max, err)
		}
	}
}

func uris(m hls.Master) []string {
	var out []string
	for _, v := range m.Variants {
		out = append(out, v.URI)
	}
	return out
}

func reps(m *dash.MPD) []string {
	if m == nil {
		return nil
	}
	var out []string
	for _, p := range m.Periods {
		for _, as := range p.AdaptationSets {
			for _, r := range as.Representations {
				out = append(out, r.ID)
			}
		}
	}
	return out
}

// TestSteerMPD: where the elements go, on MPDs written by hand, and what
// is refused.
func TestSteerMPD(t *testing.T) {
	t.Parallel()
	const (
		base     = `<BaseURL serviceLocation=".">./</BaseURL>`
		steering = `<ContentSteering defaultServiceLocation="." queryBeforeStart="false">` + dashURI + `</ContentSteering>`
	)
	tests := []struct {
		name, in, uri, want string
		err                 error
	}{
		{"one line", `<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"><Period/></MPD>`, dashURI,
			`<MPD xmlns="urn:mpeg:dash:schema:mpd:2011">` + base + `<Period/>` + steering + `</MPD>`, nil},
		{"after ProgramInformation, CRLF", "<?xml version=\"1.0\"?>\r\n<MPD>\r\n\t<ProgramInformation><Title>x</Title></ProgramInformation>\r\n\t<Period/>\r\n</MPD>\r\n", dashURI,
			"<?xml version=\"1.0\"?>\r\n<MPD>\r\n\t<ProgramInformation><Title>x</Title></ProgramInformation>\r\n\t" + base + "\r\n\t<Period/>\r\n\t" + steering + "\r\n</MPD>\r\n", nil},
		{"a namespace prefix", `<m:MPD xmlns:m="urn:mpeg:dash:schema:mpd:2011"><m:Period/></m:MPD>`, dashURI,
			`<m:MPD xmlns:m="urn:mpeg:dash:schema:mpd:2011"><m:BaseURL serviceLocation=".">./</m:BaseURL><m:Period/>` +
				`<m:ContentSteering defaultServiceLocation="." queryBeforeStart="false">` + dashURI + `</m:ContentSteering></m:MPD>`, nil},
		{"a query with & is escaped", `<MPD><Period/></MPD>`, "https://cp.example/s?a=1&b=2",
			`<MPD>` + base + `<Period/><ContentSteering defaultServiceLocation="." queryBeforeStart="false">https://cp.example/s?a=1&amp;b=2</ContentSteering></MPD>`, nil},
		{"the packager's steering stays", `<MPD><BaseURL serviceLocation="a">https://a/</BaseURL><Period/><ContentSteering>https://s/</ContentSteering></MPD>`, dashURI,
			`<MPD><BaseURL serviceLocation="a">https://a/</BaseURL><Period/><ContentSteering>https://s/</ContentSteering></MPD>`, nil},
		{"a BaseURL of its own", `<MPD><BaseURL>https://cdn.example/t1/</BaseURL><Period/></MPD>`, dashURI, "", manifestfilter.ErrOwnPathways},
		{"not XML", `<MPD><Period></MPD>`, dashURI, "", manifestfilter.ErrSyntax},
		{"not an MPD", `<Manifest><Period/></Manifest>`, dashURI, "", manifestfilter.ErrSyntax},
		{"an empty element", `<MPD/>`, dashURI, "", manifestfilter.ErrSyntax},
		{"two roots", `<MPD><Period/></MPD><MPD/>`, dashURI, "", manifestfilter.ErrSyntax},
		{"a playlist", "#EXTM3U\n", dashURI, "", manifestfilter.ErrSyntax},
		{"relative server URI", `<MPD><Period/></MPD>`, "steering.json", "", manifestfilter.ErrServerURI},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := manifestfilter.SteerMPD([]byte(tt.in), tt.uri)
			if !errors.Is(err, tt.err) || string(got) != tt.want {
				t.Fatalf("SteerMPD = %q, %v\nwant %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

// TestVariantBodyFor: a steered MPD's BaseURL is made absolute per
// request, escaped; a master playlist is shared as it is.
func TestVariantBodyFor(t *testing.T) {
	t.Parallel()
	c := manifestfilter.NewCache(0)
	o := manifestfilter.Options{SteeringURL: "https://cp.example"}
	mpd := manifestfiltertest.MPD()
	v, err := c.Get("t1/manifest.mpd", `"v1"`, o, func() ([]byte, error) { return mpd, nil })
	if err != nil {
		t.Fatal(err)
	}
	got := v.BodyFor("https://a1.example/c/tok&en/t1/")
	want := strings.Replace(string(v.Body), `<BaseURL serviceLocation=".">./</BaseURL>`, `<BaseURL serviceLocation=".">https://a1.example/c/tok&amp;en/t1/</BaseURL>`, 1)
	if string(got) != want || bytes.Equal(got, v.Body) {
		t.Errorf("BodyFor =\n%s\nwant\n%s", got, want)
	}
	if !bytes.Equal(v.BodyFor(""), v.Body) {
		t.Error("BodyFor(\"\") is not the body")
	}
	mpd[0] = '!' // the variant holds its own bytes
	if v.Body[0] != '<' {
		t.Error("the variant shares the loaded bytes")
	}
	m, err := c.Get("t1/master.m3u8", `"v1"`, o, func() ([]byte, error) { return manifestfiltertest.Master(), nil })
	if err != nil {
		t.Fatal(err)
	}
	if b := m.BodyFor("https://a1.example/c/token/t1/"); &b[0] != &m.Body[0] {
		t.Error("a master playlist's body is copied per request")
	}
	if !strings.Contains(string(m.Body), hlsTag) {
		t.Errorf("the master playlist variant lacks %s:\n%s", hlsTag, m.Body)
	}
	// A manifest that cannot be steered is served as it was.
	own := []byte(`<MPD><BaseURL>https://cdn.example/</BaseURL><Period/></MPD>`)
	u, err := c.Get("t2/manifest.mpd", `"v1"`, o, func() ([]byte, error) { return own, nil })
	if err != nil || !bytes.Equal(u.Body, own) || !errors.Is(u.Unsteered, manifestfilter.ErrOwnPathways) {
		t.Errorf("an MPD with its own BaseURL: %q, unsteered %v, %v; want it as it was, ErrOwnPathways", u.Body, u.Unsteered, err)
	}
}
