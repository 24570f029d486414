package auth

import (
	"net/netip"
	"testing"
	"time"
)

// TestAllows: the rule appliances and the origin enforce, for every kind
// of file of a title.
func TestAllows(t *testing.T) {
	t.Parallel()
	heights := map[string]int{"2160p": 2160, "1080p": 1080, "hd": 720, "480p": 480, "audio-en": 0}
	heightOf := func(dir string) (int, bool) { h, ok := heights[dir]; return h, ok }
	var (
		none     = Limits{}
		basic    = Limits{MaxHeight: 480, NoDownloads: true}
		standard = Limits{MaxHeight: 1080}
		noDl     = Limits{NoDownloads: true}
	)
	tests := []struct {
		object string
		l      Limits
		want   bool
	}{
		{"master.m3u8", basic, true},
		{"manifest.mpd", basic, true},
		{"poster.jpg", basic, true},
		{"480p/seg-00001.m4s", basic, true},
		{"480p/init.mp4", basic, true},
		{"480p/playlist.m3u8", basic, true},
		{"audio-en/seg-00001.m4s", basic, true},
		{"hd/seg-00001.m4s", basic, false},
		{"hd/init.mp4", basic, false},
		{"hd/playlist.m3u8", basic, false},
		{"hd/seg-00001.m4s", standard, true},
		{"1080p/seg-00001.m4s", standard, true},
		{"2160p/seg-00001.m4s", standard, false},
		{"2160p/seg-00001.m4s", none, true},
		{"2160p/seg-00001.m4s", noDl, true},
		{"unknown/seg-00001.m4s", standard, false},
		{"unknown/seg-00001.m4s", noDl, true},
		{"download/480p.mp4", basic, false},
		{"download/480p.mp4", noDl, false},
		{"download/1080p.mp4", standard, true},
		{"download/2160p.mp4", standard, false},
		{"download/1080p.mp4", none, true},
		{"download/hd.mp4", standard, false},
		{"download/1080p.mkv", standard, false},
		{"download/0480p.mp4", standard, false},
		{"download/x/480p.mp4", standard, false},
	}
	for _, tt := range tests {
		if got := tt.l.Allows(tt.object, heightOf); got != tt.want {
			t.Errorf("%+v.Allows(%q) = %v, want %v", tt.l, tt.object, got, tt.want)
		}
	}
	calls := 0
	noDl.Allows("2160p/seg-00001.m4s", func(string) (int, bool) { calls++; return 0, false })
	none.Allows("2160p/seg-00001.m4s", func(string) (int, bool) { calls++; return 0, false })
	if calls != 0 {
		t.Errorf("heightOf called %d times without a maximum height, want 0: only a height limit needs the table", calls)
	}
}

func TestNameHeight(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dir  string
		want int
		ok   bool
	}{
		{"720p", 720, true}, {"2160p", 2160, true}, {"99999p", 99999, true},
		{"p", 0, false}, {"0p", 0, false}, {"0720p", 0, false}, {"720", 0, false}, {"720P", 0, false},
		{"1080p-src", 0, false}, {"audio-en", 0, false}, {"100000p", 0, false}, {"-1p", 0, false},
	}
	for _, tt := range tests {
		if got, ok := NameHeight(tt.dir); got != tt.want || ok != tt.ok {
			t.Errorf("NameHeight(%q) = %d, %v; want %d, %v", tt.dir, got, ok, tt.want, tt.ok)
		}
	}
}

// TestFillPassWithLimits: a pass carrying limits, which SignFillPass
// never makes, is refused.
func TestFillPassWithLimits(t *testing.T) {
	t.Parallel()
	ks := mustKeys(t, "k1 "+secretA+"\n")
	now := time.Unix(1_800_000_000, 0)
	tok, err := ks.sign(fillSubject("a1"), now.Add(time.Hour), netip.Prefix{}, Limits{MaxHeight: 480})
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(VerifierConfig{}, ks.Public())
	if err != nil {
		t.Fatal(err)
	}
	if id, err := v.VerifyFillPass(FillPassPrefix+"a1."+tok, now); err == nil {
		t.Errorf("VerifyFillPass of a pass with limits = %q, nil; want an error", id)
	}
}

func TestLimitReason(t *testing.T) {
	t.Parallel()
	for object, want := range map[string]string{
		"download/480p.mp4": "download", "hd/seg-00001.m4s": "rendition", "master.m3u8": "rendition", "downloads/x": "rendition",
	} {
		if got := LimitReason(object); got != want {
			t.Errorf("LimitReason(%q) = %q, want %q", object, got, want)
		}
	}
}
