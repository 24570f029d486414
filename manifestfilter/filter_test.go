package manifestfilter_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fillcast/fillcast/manifestfilter"
	"github.com/fillcast/fillcast/manifestfilter/manifestfiltertest"
	"github.com/fillcast/fillcast/transcoder/dash"
	"github.com/fillcast/fillcast/transcoder/hls"
)

// TestMaster filters the transcoder's own multivariant playlist: what
// stays still parses, lists only the variants within the limit, and keeps
// the audio.
func TestMaster(t *testing.T) {
	t.Parallel()
	master := manifestfiltertest.Master()
	tests := []struct {
		max  int
		want []string // the variants' URIs left
		err  error
	}{
		{2160, []string{"1080p/playlist.m3u8", "hd/playlist.m3u8", "480p/playlist.m3u8", "240p/playlist.m3u8"}, nil},
		{1080, []string{"1080p/playlist.m3u8", "hd/playlist.m3u8", "480p/playlist.m3u8", "240p/playlist.m3u8"}, nil},
		{720, []string{"hd/playlist.m3u8", "480p/playlist.m3u8", "240p/playlist.m3u8"}, nil},
		{480, []string{"480p/playlist.m3u8", "240p/playlist.m3u8"}, nil},
		{479, []string{"240p/playlist.m3u8"}, nil},
		{144, nil, manifestfilter.ErrNothingLeft},
	}
	for _, tt := range tests {
		got, err := manifestfilter.Filter("master.m3u8", master, tt.max)
		if !errors.Is(err, tt.err) {
			t.Errorf("max %d: err %v, want %v", tt.max, err, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		m, err := hls.ParseMaster(got)
		if err != nil {
			t.Errorf("max %d: the filtered playlist does not parse: %v\n%s", tt.max, err, got)
			continue
		}
		var uris []string
		for _, v := range m.Variants {
			uris = append(uris, v.URI)
		}
		if !slices.Equal(uris, tt.want) {
			t.Errorf("max %d: variants %q, want %q", tt.max, uris, tt.want)
		}
		if len(m.Audio) != 1 || !m.Independent {
			t.Errorf("max %d: audio %+v, independent %v: want the rest kept", tt.max, m.Audio, m.Independent)
		}
		if len(tt.want) == 4 && !bytes.Equal(got, master) {
			t.Errorf("max %d: nothing left out, yet the bytes changed", tt.max)
		}
	}
}

// TestMasterEntries: each kind of entry, on playlists written by hand.
func TestMasterEntries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"i-frame entries",
			"#EXTM3U\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,RESOLUTION=1920x1080,URI=\"1080p/if.m3u8\"\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,RESOLUTION=640x360,URI=\"360p/if.m3u8\"\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=640x360\n360p/p.m3u8\n",
			"#EXTM3U\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,RESOLUTION=640x360,URI=\"360p/if.m3u8\"\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=640x360\n360p/p.m3u8\n", nil},
		{"i-frame entry without a resolution",
			"#EXTM3U\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"x/if.m3u8\"\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=640x360\n360p/p.m3u8\n",
			"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=640x360\n360p/p.m3u8\n", nil},
		{"audio-only variant stays",
			"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"mp4a.40.2\"\naudio/p.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=1920x1080\n1080p/p.m3u8\n",
			"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"mp4a.40.2\"\naudio/p.m3u8\n", nil},
		{"bad resolution is left out",
			"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=big\nx/p.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=640x360\n360p/p.m3u8\n",
			"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=640x360\n360p/p.m3u8\n", nil},
		{"bad attributes are left out",
			"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"avc1\nx/p.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=640x360\n360p/p.m3u8\n",
			"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=640x360\n360p/p.m3u8\n", nil},
		{"a tag between a variant and its URI stays",
			"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=1920x1080\n# a comment\n\n1080p/p.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=640x360\n360p/p.m3u8\n",
			"#EXTM3U\n# a comment\n\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=640x360\n360p/p.m3u8\n", nil},
		{"a second variant tag is judged on its own",
			"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=1920x1080\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=3840x2160\n2160p/p.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=640x360\n360p/p.m3u8\n",
			"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=640x360\n360p/p.m3u8\n", nil},
		{"CRLF",
			"#EXTM3U\r\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=1920x1080\r\n1080p/p.m3u8\r\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=640x360\r\n360p/p.m3u8\r\n",
			"#EXTM3U\r\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=640x360\r\n360p/p.m3u8\r\n", nil},
		{"nothing left", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=1920x1080\n1080p/p.m3u8\n", "", manifestfilter.ErrNothingLeft},
		{"no variants to begin with", "#EXTM3U\n#EXT-X-VERSION:7\n", "#EXTM3U\n#EXT-X-VERSION:7\n", nil},
		{"not a playlist", "<MPD/>", "", manifestfilter.ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := manifestfilter.Master([]byte(tt.in), 480)
			if !errors.Is(err, tt.err) || string(got) != tt.want {
				t.Errorf("Master = %q, %v\nwant %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

// TestMPD filters the transcoder's own MPD: what stays still parses,
// lists only the representations within the limit, and keeps the audio.
func TestMPD(t *testing.T) {
	t.Parallel()
	mpd := manifestfiltertest.MPD()
	tests := []struct {
		max  int
		want []string // video representation ids left
		err  error
	}{
		{2160, []string{"1080p", "hd", "480p", "240p"}, nil},
		{720, []string{"hd", "480p", "240p"}, nil},
		{480, []string{"480p", "240p"}, nil},
		{240, []string{"240p"}, nil},
		{239, nil, manifestfilter.ErrNothingLeft},
	}
	for _, tt := range tests {
		got, err := manifestfilter.Filter("manifest.mpd", mpd, tt.max)
		if !errors.Is(err, tt.err) {
			t.Errorf("max %d: err %v, want %v", tt.max, err, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		m, err := dash.Parse(got)
		if err != nil {
			t.Errorf("max %d: the filtered MPD does not parse: %v\n%s", tt.max, err, got)
			continue
		}
		sets := m.Periods[0].AdaptationSets
		if len(sets) != 2 || len(sets[1].Representations) != 1 || sets[1].Representations[0].ID != "audio-en" {
			t.Fatalf("max %d: adaptation sets %+v, want the video and the audio one", tt.max, sets)
		}
		var ids []string
		for _, r := range sets[0].Representations {
			ids = append(ids, r.ID)
			if r.SegmentTemplate == nil || r.SegmentTemplate.Timeline == nil {
				t.Errorf("max %d: representation %s lost its template", tt.max, r.ID)
			}
		}
		if !slices.Equal(ids, tt.want) {
			t.Errorf("max %d: video representations %q, want %q", tt.max, ids, tt.want)
		}
		if len(tt.want) == 4 && !bytes.Equal(got, mpd) {
			t.Errorf("max %d: nothing left out, yet the bytes changed", tt.max)
		}
		if strings.Contains(string(got), "\n\n") || strings.Contains(string(got), "  \n") {
			t.Errorf("max %d: blank lines where representations were:\n%s", tt.max, got)
		}
	}
}

// TestMPDElements: how each kind of element is judged, on MPDs written
// by hand.
func TestMPDElements(t *testing.T) {
	t.Parallel()
	wrap := func(sets string) string {
		return `<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static"><Period>` + sets + `</Period></MPD>`
	}
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"height on the set",
			wrap(`<AdaptationSet contentType="video" height="1080"><Representation id="a"/></AdaptationSet><AdaptationSet contentType="video" height="360"><Representation id="b"/></AdaptationSet>`),
			wrap(`<AdaptationSet contentType="video" height="360"><Representation id="b"/></AdaptationSet>`), nil},
		{"video told by the representation's mimeType",
			wrap(`<AdaptationSet><Representation id="a" mimeType="video/mp4" height="720"></Representation><Representation id="b" mimeType="video/mp4" height="360"></Representation></AdaptationSet>`),
			wrap(`<AdaptationSet><Representation id="b" mimeType="video/mp4" height="360"></Representation></AdaptationSet>`), nil},
		{"unknown kind with a height is video",
			wrap(`<AdaptationSet><Representation id="a" height="720"/><Representation id="b" height="360"/></AdaptationSet>`),
			wrap(`<AdaptationSet><Representation id="b" height="360"/></AdaptationSet>`), nil},
		{"video without a height is left out",
			wrap(`<AdaptationSet contentType="video"><Representation id="a"/><Representation id="b" height="360"/></AdaptationSet>`),
			wrap(`<AdaptationSet contentType="video"><Representation id="b" height="360"/></AdaptationSet>`), nil},
		{"bad height is left out",
			wrap(`<AdaptationSet contentType="video"><Representation id="a" height="x"/><Representation id="b" height="360"/></AdaptationSet>`),
			wrap(`<AdaptationSet contentType="video"><Representation id="b" height="360"/></AdaptationSet>`), nil},
		{"images and audio stay",
			wrap(`<AdaptationSet contentType="image" mimeType="image/jpeg"><Representation id="t" width="3840" height="2160"/></AdaptationSet><AdaptationSet mimeType="audio/mp4"><Representation id="au"/></AdaptationSet><AdaptationSet contentType="video"><Representation id="v" height="480"/></AdaptationSet>`),
			wrap(`<AdaptationSet contentType="image" mimeType="image/jpeg"><Representation id="t" width="3840" height="2160"/></AdaptationSet><AdaptationSet mimeType="audio/mp4"><Representation id="au"/></AdaptationSet><AdaptationSet contentType="video"><Representation id="v" height="480"/></AdaptationSet>`), nil},
		{"nothing left",
			wrap(`<AdaptationSet contentType="video"><Representation id="a" height="720"/></AdaptationSet><AdaptationSet contentType="audio"><Representation id="au"/></AdaptationSet>`),
			"", manifestfilter.ErrNothingLeft},
		{"not XML", `<MPD><Period></MPD>`, "", manifestfilter.ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := manifestfilter.MPD([]byte(tt.in), 480)
			if !errors.Is(err, tt.err) || string(got) != tt.want {
				t.Errorf("MPD = %q, %v\nwant %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestHeights(t *testing.T) {
	t.Parallel()
	got := manifestfilter.Heights(manifestfiltertest.Master())
	want := map[string]int{"1080p": 1080, "hd": 720, "480p": 480, "240p": 240, "audio-en": 0}
	if !maps.Equal(got, want) {
		t.Errorf("Heights = %v, want %v", got, want)
	}
	hand := "#EXTM3U\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,RESOLUTION=1920x1080,URI=\"x/if.m3u8\"\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=640x360\nx/p.m3u8\n" + // x gets the taller of its two
		"#EXT-X-STREAM-INF:BANDWIDTH=1\nnores/p.m3u8\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=640x360\nhttps://elsewhere/p.m3u8\n" +
		"#EXT-X-MEDIA:TYPE=VIDEO,GROUP-ID=\"v\",NAME=\"v\",URI=\"angle/p.m3u8\"\n" +
		"#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"s\",NAME=\"s\",URI=\"subs-en/p.m3u8\"\n"
	if got, want := manifestfilter.Heights([]byte(hand)), map[string]int{"x": 1080, "subs-en": 0}; !maps.Equal(got, want) {
		t.Errorf("Heights of a hand-written playlist = %v, want %v", got, want)
	}
}

// maxVideoHeight returns the tallest video a filtered manifest still
// lists for sure (a variant's RESOLUTION, a representation's own height
// and video mimeType), and whether it reads.
func maxVideoHeight(object string, data []byte) (int, bool) {
	tallest := 0
	if object == manifestfilter.MasterName {
		for _, l := range strings.Split(string(data), "\n") {
			l = strings.TrimSpace(l)
			for _, tag := range []string{"#EXT-X-STREAM-INF:", "#EXT-X-I-FRAME-STREAM-INF:"} {
				if rest, ok := strings.CutPrefix(l, tag); ok {
					a, err := hls.ParseAttributes(rest)
					if err != nil {
						return 0, false
					}
					if res := a["RESOLUTION"]; res != "" {
						_, hs, _ := strings.Cut(res, "x")
						h, err := strconv.Atoi(hs)
						if err != nil {
							return 0, false
						}
						tallest = max(tallest, h)
					}
				}
			}
		}
		return tallest, true
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := d.Token()
		if err != nil {
			return tallest, err == io.EOF
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "Representation" {
			continue
		}
		var video bool
		height := -1
		for _, a := range se.Attr {
			switch {
			case a.Name.Space != "":
			case a.Name.Local == "mimeType":
				video = strings.HasPrefix(a.Value, "video/")
			case a.Name.Local == "height":
				if h, err := strconv.Atoi(a.Value); err == nil {
					height = h
				}
			}
		}
		if video {
			tallest = max(tallest, height)
		}
	}
}

func fuzzFilter(f *testing.F, object string, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s, 480)
	}
	f.Fuzz(func(t *testing.T, data []byte, maxHeight int) {
		maxHeight = 1 + abs(maxHeight)%4000
		got, err := manifestfilter.Filter(object, data, maxHeight)
		if err != nil {
			return
		}
		again, err := manifestfilter.Filter(object, got, maxHeight)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("filtering twice differs: %q, %v\nfirst %q", again, err, got)
		}
		if len(got) > len(data) {
			t.Fatalf("filtered manifest grew: %d bytes from %d", len(got), len(data))
		}
		if h, ok := maxVideoHeight(object, got); ok && h > maxHeight {
			t.Fatalf("max %d: the filtered manifest still lists height %d:\n%s", maxHeight, h, got)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		if n == -n { // the most negative int
			return 0
		}
		return -n
	}
	return n
}

// FuzzMaster: whatever playlist comes in, a filtered one lists nothing
// taller than the limit, is no longer than the input, and filtering it
// again changes nothing.
func FuzzMaster(f *testing.F) {
	fuzzFilter(f, manifestfilter.MasterName, manifestfiltertest.Master(),
		[]byte("#EXTM3U\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,RESOLUTION=1920x1080,URI=\"a/b\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\nx\n"),
		[]byte("#EXTM3U\r\n#EXT-X-STREAM-INF:RESOLUTION=1x2000\r\n#EXT-X-STREAM-INF:RESOLUTION=1x2\r\nb\r\n"))
}

// FuzzMPD: whatever MPD comes in, a filtered one lists no video
// representation taller than the limit, is no longer than the input, and
// filtering it again changes nothing.
func FuzzMPD(f *testing.F) {
	fuzzFilter(f, manifestfilter.MPDName, manifestfiltertest.MPD(),
		[]byte(`<MPD><Period><AdaptationSet contentType="video"><Representation height="720"/><Representation height="360"/></AdaptationSet></Period></MPD>`),
		[]byte(`<MPD><Representation height="720"/><AdaptationSet height="1080"><Representation/></AdaptationSet></MPD>`),
		[]byte(`<MPD><AdaptationSet><Representation mimeType="video/mp4" height="2160"/><Representation mimeType="video/mp4" height="240"/></AdaptationSet></MPD>`))
}
