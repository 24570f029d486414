package ladder

import (
	"errors"
	"fmt"
	"testing"
)

func TestFit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		width, height int
		fps           float64
		want          []string // "name WxH bitrate"
	}{
		{"1080p", 1920, 1080, 30, []string{"1080p 1920x1080 5000000", "720p 1280x720 3000000", "480p 854x480 1200000", "360p 640x360 700000", "240p 426x240 300000"}},
		{"720p never upscales", 1280, 720, 30, []string{"720p 1280x720 3000000", "480p 854x480 1200000", "360p 640x360 700000", "240p 426x240 300000"}},
		{"360p", 640, 360, 25, []string{"360p 640x360 700000", "240p 426x240 300000"}},
		{"odd 1000x562 gains a source rung", 1000, 562, 30, []string{"562p 1000x562 1734135", "480p 854x480 1200000", "360p 640x360 700000", "240p 428x240 300000"}},
		{"odd 1001x563 rounds to even", 1001, 563, 30, []string{"564p 1002x564 1745885", "480p 854x480 1200000", "360p 640x360 700000", "240p 426x240 300000"}},
		{"just above a rung adds nothing", 1300, 730, 30, []string{"720p 1282x720 3000000", "480p 854x480 1200000", "360p 642x360 700000", "240p 428x240 300000"}},
		{"4:3", 1440, 1080, 30, []string{"1080p 1440x1080 5000000", "720p 960x720 3000000", "480p 640x480 1200000", "360p 480x360 700000", "240p 320x240 300000"}},
		{"portrait keeps aspect", 720, 1280, 30, []string{"1080p 608x1080 5000000", "720p 406x720 3000000", "480p 270x480 1200000", "360p 202x360 700000", "240p 136x240 300000"}},
		{"tiny source gets one rung", 160, 90, 30, []string{"90p 160x90 75000"}},
		{"15 fps lowers bitrates", 640, 360, 15, []string{"360p 640x360 416222", "240p 426x240 178381"}},
		{"24 fps keeps bitrates", 640, 360, 24, []string{"360p 640x360 700000", "240p 426x240 300000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, r := range Fit(Default(), tt.width, tt.height, tt.fps) {
				if r.Width%2 != 0 || r.Height%2 != 0 {
					t.Errorf("%s: odd size %dx%d", r.Name, r.Width, r.Height)
				}
				if r.Height > tt.height+1 {
					t.Errorf("%s: upscales %d to %d", r.Name, tt.height, r.Height)
				}
				if r.MaxRate < r.Bitrate || r.BufSize < r.Bitrate {
					t.Errorf("%s: VBV %d/%d below bitrate %d", r.Name, r.MaxRate, r.BufSize, r.Bitrate)
				}
				got = append(got, fmt.Sprintf("%s %dx%d %d", r.Name, r.Width, r.Height, r.Bitrate))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Fit(%dx%d@%g)\n got %q\nwant %q", tt.width, tt.height, tt.fps, got, tt.want)
			}
		})
	}
}

func TestFitAspectRatio(t *testing.T) {
	t.Parallel()
	for _, src := range [][2]int{{1920, 1080}, {1000, 562}, {1440, 1080}, {720, 1280}, {2048, 858}, {1920, 800}} {
		aspect := float64(src[0]) / float64(src[1])
		for _, r := range Fit(Default(), src[0], src[1], 30) {
			got := float64(r.Width) / float64(r.Height)
			// Rounding to even moves the width by at most one pixel.
			if d := got - aspect; d*float64(r.Height) > 1.01 || d*float64(r.Height) < -1.01 {
				t.Errorf("%dx%d -> %s %dx%d: aspect %.4f, want %.4f", src[0], src[1], r.Name, r.Width, r.Height, got, aspect)
			}
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{"strings and numbers", `{"rungs":[{"height":360,"bitrate":"700k"},{"height":720,"bitrate":3000000}]}`, "720p:3000k/3300k/6000k 360p:700k/770k/1400k", false},
		{"explicit VBV and name", `{"rungs":[{"name":"hd","height":720,"bitrate":"2.5M","maxrate":"3M","bufsize":"3M"}]}`, "hd:2500k/3000k/3000k", false},
		{"empty", `{"rungs":[]}`, "", true},
		{"unknown field", `{"rungs":[{"height":360,"bitrate":"700k","crf":20}]}`, "", true},
		{"duplicate height", `{"rungs":[{"height":360,"bitrate":"700k"},{"height":360,"bitrate":"900k"}]}`, "", true},
		{"maxrate below bitrate", `{"rungs":[{"height":360,"bitrate":"700k","maxrate":"500k"}]}`, "", true},
		{"bad bitrate", `{"rungs":[{"height":360,"bitrate":"fast"}]}`, "", true},
		{"absurd height", `{"rungs":[{"height":100000,"bitrate":"700k"}]}`, "", true},
		{"reserved name", `{"rungs":[{"name":"download","height":360,"bitrate":"700k"}]}`, "", true},
		{"path in name", `{"rungs":[{"name":"../x","height":360,"bitrate":"700k"}]}`, "", true},
		{"trailing data", `{"rungs":[{"height":360,"bitrate":"700k"}]} {}`, "", true},
		{"not json", `rungs: 360`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Parse([]byte(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrBadLadder) {
					t.Fatalf("Parse: got err %v, want ErrBadLadder", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := ""
			for i, r := range l.Rungs {
				if i > 0 {
					got += " "
				}
				got += fmt.Sprintf("%s:%s/%s/%s", r.Name, r.Bitrate, r.MaxRate, r.BufSize)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"rungs":[{"height":360,"bitrate":"700k"},{"height":720,"bitrate":3000000}]}`))
	f.Add([]byte(`{"rungs":[{"name":"hd","height":720,"bitrate":"2.5M","maxrate":"3M","bufsize":"3M"}]}`))
	f.Add([]byte(`{"rungs":[{"height":1e9,"bitrate":-1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Parse(data)
		if err != nil {
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("Parse accepted a ladder Validate rejects: %v", err)
		}
		for _, src := range [][2]int{{1920, 1080}, {1000, 562}, {64, 64}} {
			for _, r := range Fit(l, src[0], src[1], 30) {
				if r.Width < 2 || r.Height < 2 || r.Width%2 != 0 || r.Height%2 != 0 || r.Height > src[1]+1 || r.Bitrate <= 0 {
					t.Fatalf("Fit(%v) gave %+v", src, r)
				}
			}
		}
	})
}
