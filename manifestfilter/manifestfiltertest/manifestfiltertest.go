// Package manifestfiltertest makes the files of a packaged title, with
// the transcoder's own HLS and DASH writers, for the tests of package
// manifestfilter and of the servers that enforce a token's limits (the
// appliance and the origin), the way net/http/httptest serves net/http's
// tests.
package manifestfiltertest

import (
	"strconv"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/transcoder/dash"
	"github.com/fillcast/fillcast/transcoder/hls"
)

// Renditions is the ladder of the title: four video renditions, the
// second with a custom name that says nothing of its height, and an audio
// track.
var Renditions = []fillcast.Rendition{
	{ID: "1080p", Kind: "video", Width: 1920, Height: 1080, Bandwidth: 5_000_000, Codecs: "avc1.640028"},
	{ID: "hd", Kind: "video", Width: 1280, Height: 720, Bandwidth: 3_000_000, Codecs: "avc1.64001f"},
	{ID: "480p", Kind: "video", Width: 854, Height: 480, Bandwidth: 1_200_000, Codecs: "avc1.64001e"},
	{ID: "240p", Kind: "video", Width: 426, Height: 240, Bandwidth: 400_000, Codecs: "avc1.640015"},
	{ID: "audio-en", Kind: "audio", Bandwidth: 128_000, Codecs: "mp4a.40.2", Language: "en"},
}

// Downloads are the heights of the title's progressive downloads.
var Downloads = []int{1080, 240}

// Master returns the title's multivariant playlist.
func Master() []byte {
	m := hls.Master{Independent: true}
	for _, r := range Renditions {
		if r.Kind == "audio" {
			m.Audio = append(m.Audio, hls.Audio{GroupID: "aac", Language: r.Language, Name: "English", Default: true, AutoSelect: true, Channels: 2, URI: r.ID + "/playlist.m3u8"})
		}
	}
	for _, r := range Renditions {
		if r.Kind == "video" {
			m.Variants = append(m.Variants, hls.Variant{URI: r.ID + "/playlist.m3u8", Bandwidth: r.Bandwidth + 128_000, Width: r.Width, Height: r.Height, Codecs: r.Codecs + ",mp4a.40.2", FrameRate: 30, Audio: "aac"})
		}
	}
	return m.Encode()
}

// MPD returns the title's MPD.
func MPD() []byte {
	tl := dash.NewTimeline(0, []uint64{4000, 4000, 2000})
	tmpl := func() *dash.SegmentTemplate {
		return &dash.SegmentTemplate{Timescale: 1000, Initialization: dash.InitTemplate, Media: dash.MediaTemplate, StartNumber: 1, Timeline: tl}
	}
	vs := dash.AdaptationSet{ID: 0, ContentType: "video", MimeType: "video/mp4", SegmentAlignment: true, StartWithSAP: 1, MaxFrameRate: "30"}
	as := dash.AdaptationSet{ID: 1, ContentType: "audio", MimeType: "audio/mp4", Lang: "en", SegmentAlignment: true, StartWithSAP: 1}
	for _, r := range Renditions {
		if r.Kind == "video" {
			vs.MaxWidth, vs.MaxHeight = max(vs.MaxWidth, r.Width), max(vs.MaxHeight, r.Height)
			vs.Representations = append(vs.Representations, dash.Representation{
				ID: r.ID, Bandwidth: r.Bandwidth, Codecs: r.Codecs, Width: r.Width, Height: r.Height, FrameRate: "30", Sar: "1:1", SegmentTemplate: tmpl(),
			})
		} else {
			as.Representations = append(as.Representations, dash.Representation{
				ID: r.ID, Bandwidth: r.Bandwidth, Codecs: r.Codecs, AudioSamplingRate: 48000,
				AudioChannelConfiguration: []dash.Descriptor{{SchemeIDURI: "urn:mpeg:dash:23003:3:audio_channel_configuration:2011", Value: "2"}},
				SegmentTemplate:           tmpl(),
			})
		}
	}
	m := &dash.MPD{
		Profiles: "urn:mpeg:dash:profile:isoff-live:2011", Type: "static", MediaPresentationDuration: dash.FormatDuration(10), MinBufferTime: "PT4S",
		Periods: []dash.Period{{ID: "0", Start: "PT0S", AdaptationSets: []dash.AdaptationSet{vs, as}}},
	}
	b, err := m.Encode()
	if err != nil {
		panic(err)
	}
	return b
}

// Files returns every file of the title by its path inside the title's
// directory: the manifests, each rendition's playlist, init segment and
// first media segment (small placeholders), the downloads and the poster.
func Files() map[string][]byte {
	files := map[string][]byte{"master.m3u8": Master(), "manifest.mpd": MPD(), "poster.jpg": []byte("jpeg")}
	media := hls.Media{MapURI: "init.mp4", Independent: true, Ended: true, Segments: []hls.Segment{{URI: "seg-00001.m4s", Duration: 4}}}
	for _, r := range Renditions {
		files[r.ID+"/playlist.m3u8"] = media.Encode()
		files[r.ID+"/init.mp4"] = []byte("init " + r.ID)
		files[r.ID+"/seg-00001.m4s"] = []byte("segment 1 of " + r.ID)
	}
	for _, h := range Downloads {
		files["download/"+strconv.Itoa(h)+"p.mp4"] = []byte("download " + strconv.Itoa(h))
	}
	return files
}
