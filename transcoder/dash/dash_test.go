package dash

import (
	"errors"
	"reflect"
	"testing"
)

func TestTimeline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		start uint64
		durs  []uint64
		want  int // S elements
	}{
		{"equal then short", 0, []uint64{4, 4, 4, 1}, 2},
		{"all different", 10, []uint64{1, 2, 3}, 3},
		{"one", 0, []uint64{5}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := NewTimeline(tt.start, tt.durs)
			if len(tl.S) != tt.want {
				t.Errorf("got %d S, want %d", len(tl.S), tt.want)
			}
			starts, durs, err := tl.Expand()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(durs, tt.durs) {
				t.Errorf("durations: got %v, want %v", durs, tt.durs)
			}
			if starts[0] != tt.start {
				t.Errorf("start: got %d, want %d", starts[0], tt.start)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	m := &MPD{Profiles: "urn:mpeg:dash:profile:isoff-live:2011", Type: "static", MediaPresentationDuration: FormatDuration(20), MinBufferTime: "PT4S",
		Periods: []Period{{ID: "0", AdaptationSets: []AdaptationSet{{ContentType: "video", MimeType: "video/mp4", SegmentAlignment: true,
			Representations: []Representation{{ID: "720p", Bandwidth: 3000000, Codecs: "avc1.64001f", Width: 1280, Height: 720,
				SegmentTemplate: &SegmentTemplate{Timescale: 15360, Initialization: InitTemplate, Media: MediaTemplate, StartNumber: 1, Timeline: NewTimeline(0, []uint64{61440, 61440})}}}}}}}}
	data, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, data)
	}
	got.XMLName = m.XMLName
	if !reflect.DeepEqual(got, m) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, m)
	}
}

func TestExpandTemplate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tmpl, id string
		n        int
		want     string
		wantErr  bool
	}{
		{MediaTemplate, "720p", 7, "720p/seg-00007.m4s", false},
		{InitTemplate, "audio-en", 0, "audio-en/init.mp4", false},
		{"$Number$-$$.m4s", "x", 123, "123-$.m4s", false},
		{"$Time$.m4s", "x", 1, "", true},
		{"$Number%x$", "x", 1, "", true},
		{"$Number", "x", 1, "", true},
	}
	for _, tt := range tests {
		got, err := ExpandTemplate(tt.tmpl, tt.id, tt.n)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ExpandTemplate(%q, %q, %d) = %q, %v; want %q, error %v", tt.tmpl, tt.id, tt.n, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{"PT20.000S", 20, false},
		{"PT1H2M3.5S", 3723.5, false},
		{"P1DT1S", 86401, false},
		{"PT", 0, false},
		{"20S", 0, true},
		{"PT-1S", 0, true},
		{"PT1X", 0, true},
		{"P1H", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "<MPD/>", `<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static"></MPD>`, "not xml"} {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q): got %v, want ErrSyntax", in, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static"><Period><AdaptationSet><Representation id="a"><SegmentTemplate timescale="1"><SegmentTimeline><S t="0" d="4" r="3"/></SegmentTimeline></SegmentTemplate></Representation></AdaptationSet></Period></MPD>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		for _, p := range m.Periods {
			for _, as := range p.AdaptationSets {
				for _, r := range as.Representations {
					if r.SegmentTemplate != nil && r.SegmentTemplate.Timeline != nil {
						_, _, _ = r.SegmentTemplate.Timeline.Expand()
					}
				}
			}
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	f.Add("PT1H2M3.5S")
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := ParseDuration(s); err == nil && d < 0 {
			t.Fatalf("negative duration %v from %q", d, s)
		}
	})
}

func FuzzExpandTemplate(f *testing.F) {
	f.Add(MediaTemplate, 42)
	f.Fuzz(func(t *testing.T, tmpl string, n int) {
		_, _ = ExpandTemplate(tmpl, "id", n)
	})
}
