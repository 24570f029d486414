package hls

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestMediaRoundTrip(t *testing.T) {
	t.Parallel()
	m := Media{MapURI: "init.mp4", Independent: true, Ended: true, Segments: []Segment{
		{URI: "seg-00001.m4s", Duration: 4}, {URI: "seg-00002.m4s", Duration: 4.0107}, {URI: "seg-00003.m4s", Duration: 1.5},
	}}
	data := m.Encode()
	for _, want := range []string{"#EXT-X-TARGETDURATION:4\n", "#EXT-X-PLAYLIST-TYPE:VOD\n", "#EXT-X-ENDLIST\n", `#EXT-X-MAP:URI="init.mp4"`, "#EXT-X-VERSION:7\n"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("playlist lacks %q:\n%s", want, data)
		}
	}
	got, err := ParseMedia(data)
	if err != nil {
		t.Fatalf("ParseMedia: %v", err)
	}
	m.TargetDuration = 4
	if !reflect.DeepEqual(got, m) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, m)
	}
}

func TestMasterRoundTrip(t *testing.T) {
	t.Parallel()
	m := Master{
		Independent: true,
		Audio: []Audio{
			{GroupID: "aac", Language: "en", Name: "English", Default: true, AutoSelect: true, Channels: 2, URI: "audio-en/playlist.m3u8"},
			{GroupID: "aac", Language: "fr", Name: "Français, 5.1", AutoSelect: true, Channels: 2, URI: "audio-fr/playlist.m3u8"},
		},
		Variants: []Variant{
			{URI: "720p/playlist.m3u8", Bandwidth: 3400000, AverageBandwidth: 3100000, Width: 1280, Height: 720, Codecs: "avc1.64001f,mp4a.40.2", FrameRate: 30, Audio: "aac"},
			{URI: "240p/playlist.m3u8", Bandwidth: 450000, AverageBandwidth: 420000, Width: 426, Height: 240, Codecs: "avc1.640015,mp4a.40.2", FrameRate: 29.97, Audio: "aac"},
		},
	}
	data := m.Encode()
	if !strings.Contains(string(data), `#EXT-X-STREAM-INF:BANDWIDTH=3400000,AVERAGE-BANDWIDTH=3100000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2",FRAME-RATE=30.000,AUDIO="aac"`) {
		t.Errorf("unexpected variant line in\n%s", data)
	}
	got, err := ParseMaster(data)
	if err != nil {
		t.Fatalf("ParseMaster: %v", err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, m)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		master   bool
	}{
		{"no header", "#EXTINF:4,\nseg.m4s\n", false},
		{"uri without extinf", "#EXTM3U\nseg.m4s\n", false},
		{"bad extinf", "#EXTM3U\n#EXTINF:abc,\nseg.m4s\n", false},
		{"dangling extinf", "#EXTM3U\n#EXTINF:4,\n", false},
		{"master tag in media", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nx.m3u8\n", false},
		{"no variants", "#EXTM3U\n", true},
		{"no bandwidth", "#EXTM3U\n#EXT-X-STREAM-INF:CODECS=\"avc1\"\nx.m3u8\n", true},
		{"bad resolution", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=1280\nx.m3u8\n", true},
		{"unterminated quote", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"avc1\nx.m3u8\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.master {
				_, err = ParseMaster([]byte(tt.in))
			} else {
				_, err = ParseMedia([]byte(tt.in))
			}
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("got %v, want ErrSyntax", err)
			}
		})
	}
}

func TestParseAttributes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    map[string]string
		wantErr bool
	}{
		{`BANDWIDTH=1,CODECS="a,b",RESOLUTION=2x2`, map[string]string{"BANDWIDTH": "1", "CODECS": "a,b", "RESOLUTION": "2x2"}, false},
		{`URI=""`, map[string]string{"URI": ""}, false},
		{``, map[string]string{}, false},
		{`A=1,A=2`, nil, true},
		{`A`, nil, true},
		{`A="x"B=1`, nil, true},
	}
	for _, tt := range tests {
		got, err := ParseAttributes(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseAttributes(%q): err %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseAttributes(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseMedia(f *testing.F) {
	f.Add(Media{MapURI: "init.mp4", Segments: []Segment{{URI: "a.m4s", Duration: 4}}}.Encode())
	f.Add([]byte("#EXTM3U\n#EXTINF:1e400,\nx\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMedia(data)
		if err != nil {
			return
		}
		// What parses must survive a round trip with the same segments.
		m2, err := ParseMedia(m.Encode())
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if len(m2.Segments) != len(m.Segments) {
			t.Fatalf("round trip changed %d segments to %d", len(m.Segments), len(m2.Segments))
		}
	})
}

func FuzzParseMaster(f *testing.F) {
	f.Add(Master{Variants: []Variant{{URI: "a.m3u8", Bandwidth: 1, Codecs: "avc1.64001f", Width: 2, Height: 2}}, Audio: []Audio{{GroupID: "g", Name: "n", URI: "b.m3u8"}}}.Encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseMaster(data)
	})
}

func FuzzParseAttributes(f *testing.F) {
	f.Add(`BANDWIDTH=1,CODECS="a,b",RESOLUTION=2x2`)
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseAttributes(s)
	})
}
