package transcoder

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/transcoder/dash"
	"github.com/fillcast/fillcast/transcoder/hls"
	"github.com/fillcast/fillcast/transcoder/mp4"
	"github.com/fillcast/fillcast/transcoder/probe"
)

// File names inside a title directory (docs/design.md §6.3).
const (
	masterName   = "master.m3u8"
	mpdName      = "manifest.mpd"
	playlistName = "playlist.m3u8"
	initName     = "init.mp4"
	downloadDir  = "download"
	audioGroup   = "aac"
)

// segmentName is the file name of media segment n (from 1).
func segmentName(n int) string { return fmt.Sprintf("seg-%05d.m4s", n) }

// track is one encoded rendition as found on disk.
type track struct {
	name          string
	video         bool
	width, height int
	language      string
	label         string
	init          mp4.Track
	frags         []mp4.Fragment
	sizes         []int64
}

// seconds converts ticks of the track's timescale.
func (t *track) seconds(ticks uint64) float64 { return float64(ticks) / float64(t.init.Timescale) }

// end is the track's last segment end in seconds, from its first start.
func (t *track) end() float64 {
	last := t.frags[len(t.frags)-1]
	return t.seconds(last.Start + last.Duration - t.frags[0].Start)
}

// packaged is the encoded title: video tracks first, then audio.
type packaged struct {
	tracks  []*track // the video tracks in the ladder's order, highest first, then audio
	nVideo  int
	fps     float64
	segment time.Duration
}

// scan renames ffmpeg's init segments to init.mp4, drops its scratch
// playlists and parses every init and media segment.
func (r *run) scan() (*packaged, error) {
	pkg := &packaged{fps: r.src.Video.FPS, segment: r.job.Segment}
	add := func(name string, video bool) (*track, error) {
		dir := filepath.Join(r.title, name)
		inits, _ := filepath.Glob(filepath.Join(dir, "init*.mp4"))
		if len(inits) != 1 {
			return nil, fmt.Errorf("%w: %s: want one init segment, found %d", ErrVerify, name, len(inits))
		}
		if err := os.Rename(inits[0], filepath.Join(dir, initName)); err != nil {
			return nil, fmt.Errorf("transcoder: %w", err)
		}
		if err := os.Remove(filepath.Join(dir, "ffmpeg.m3u8")); err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("transcoder: %w", err)
		}
		data, err := os.ReadFile(filepath.Join(dir, initName))
		if err != nil {
			return nil, fmt.Errorf("transcoder: %w", err)
		}
		t := &track{name: name, video: video}
		if t.init, err = mp4.ParseInit(data); err != nil {
			return nil, fmt.Errorf("%w: %s/%s: %w", ErrVerify, name, initName, err)
		}
		segs, _ := filepath.Glob(filepath.Join(dir, "seg-*.m4s"))
		sort.Strings(segs)
		for i, s := range segs {
			if filepath.Base(s) != segmentName(i+1) {
				return nil, fmt.Errorf("%w: %s: segment %d is named %s", ErrVerify, name, i+1, filepath.Base(s))
			}
			data, err := os.ReadFile(s)
			if err != nil {
				return nil, fmt.Errorf("transcoder: %w", err)
			}
			f, err := mp4.ParseSegment(data, t.init)
			if err != nil {
				return nil, fmt.Errorf("%w: %s/%s: %w", ErrVerify, name, filepath.Base(s), err)
			}
			t.frags = append(t.frags, f)
			t.sizes = append(t.sizes, int64(len(data)))
		}
		if len(t.frags) == 0 {
			return nil, fmt.Errorf("%w: %s: no media segments", ErrVerify, name)
		}
		pkg.tracks = append(pkg.tracks, t)
		return t, nil
	}
	for _, v := range r.video {
		t, err := add(v.Name, true)
		if err != nil {
			return nil, err
		}
		t.width, t.height = v.Width, v.Height
		pkg.nVideo++
	}
	for _, a := range r.audio {
		t, err := add(a.Name, false)
		if err != nil {
			return nil, err
		}
		t.language, t.label = a.Language, a.Label
	}
	return pkg, nil
}

// check verifies alignment: every rendition has the same number of
// segments with the same start times and durations as the first video
// rendition, within a frame (or an AAC frame for audio); every video
// segment starts with a keyframe; the total matches the source.
func (p *packaged) check(src probe.Source) error {
	ref := p.tracks[0]
	frame := 1 / p.fps
	got, wantDur := ref.end(), src.Video.Duration
	if math.Abs(got-wantDur) > 2*frame+0.01 {
		if got < 0.9*wantDur {
			// ffprobe believed the header; the data ran out.
			return fmt.Errorf("transcoder: %w: %s: decodes to %.3fs of the %.3fs it declares: truncated or damaged", ErrBadInput, src.Path, got, wantDur)
		}
		return fmt.Errorf("%w: packaged %.3fs, source says %.3fs", ErrVerify, got, wantDur)
	}
	for _, t := range p.tracks {
		tol := frame + 1e-3
		if !t.video {
			tol = math.Max(frame, 1024/float64(max(t.init.SampleRate, 8000))) + 1e-3
		}
		if len(t.frags) != len(ref.frags) {
			return fmt.Errorf("%w: %s has %d segments, %s has %d", ErrVerify, t.name, len(t.frags), ref.name, len(ref.frags))
		}
		for i, f := range t.frags {
			if t.video && !f.FirstSync {
				return fmt.Errorf("%w: %s/%s does not start with a keyframe", ErrVerify, t.name, segmentName(i+1))
			}
			if i > 0 {
				prev := t.frags[i-1]
				if prev.Start+prev.Duration != f.Start {
					return fmt.Errorf("%w: %s/%s starts at %d, previous ends at %d", ErrVerify, t.name, segmentName(i+1), f.Start, prev.Start+prev.Duration)
				}
			}
			g := ref.frags[i]
			start, refStart := t.seconds(f.Start-t.frags[0].Start), ref.seconds(g.Start-ref.frags[0].Start)
			if math.Abs(start-refStart) > tol || math.Abs(t.seconds(f.Duration)-ref.seconds(g.Duration)) > tol {
				return fmt.Errorf("%w: %s/%s spans %.3fs+%.3fs, %s spans %.3fs+%.3fs", ErrVerify,
					t.name, segmentName(i+1), start, t.seconds(f.Duration), ref.name, refStart, ref.seconds(g.Duration))
			}
		}
	}
	// Segments must be cut at the segment duration: all but the last
	// within a frame of it.
	want := p.segment.Seconds()
	for i, f := range ref.frags[:len(ref.frags)-1] {
		if d := ref.seconds(f.Duration); math.Abs(d-want) > frame+1e-3 {
			return fmt.Errorf("%w: %s/%s lasts %.3fs, want %.3fs", ErrVerify, ref.name, segmentName(i+1), d, want)
		}
	}
	return nil
}

// duration is the packaged duration of the first video rendition.
func (p *packaged) duration() time.Duration {
	return time.Duration(p.tracks[0].end() * float64(time.Second))
}

// rates returns the peak and average bit rate of the given tracks
// played together, segment by segment. A short last segment is measured
// over at least half the segment duration, since players estimate
// throughput over windows of that order and a lone keyframe would
// otherwise dominate the peak.
func (p *packaged) rates(ts ...*track) (peak, avg int) {
	floor := p.segment.Seconds() / 2
	var totalBits, totalSec float64
	for i := range ts[0].frags {
		bits := 0.0
		for _, t := range ts {
			bits += 8 * float64(t.sizes[i])
		}
		d := ts[0].seconds(ts[0].frags[i].Duration)
		totalBits += bits
		totalSec += d
		if len(ts[0].frags) > 1 && d < floor {
			d = floor
		}
		if d > 0 {
			peak = max(peak, int(math.Ceil(bits/d)))
		}
	}
	if totalSec > 0 {
		avg = int(math.Ceil(totalBits / totalSec))
	}
	return max(peak, avg), avg
}

// defaultAudio is the first audio track, or nil.
func (p *packaged) defaultAudio() *track {
	if len(p.tracks) > p.nVideo {
		return p.tracks[p.nVideo]
	}
	return nil
}

// variant returns the tracks a video variant plays: itself and the
// default audio.
func (p *packaged) variant(v *track) []*track {
	if a := p.defaultAudio(); a != nil {
		return []*track{v, a}
	}
	return []*track{v}
}

// renditions describes the tracks in the catalog's vocabulary.
func (p *packaged) renditions() []fillcast.Rendition {
	var out []fillcast.Rendition
	for _, t := range p.tracks {
		r := fillcast.Rendition{ID: t.name, Codecs: t.init.Codec}
		if t.video {
			r.Kind, r.Width, r.Height = "video", t.width, t.height
			r.Bandwidth, _ = p.rates(p.variant(t)...)
		} else {
			r.Kind, r.Language = "audio", t.language
			r.Bandwidth, _ = p.rates(t)
		}
		out = append(out, r)
	}
	return out
}

// write renders the media playlists, the master playlist and the MPD.
func (p *packaged) write(dir string) error {
	for _, t := range p.tracks {
		m := hls.Media{MapURI: initName, Independent: true, Ended: true}
		for i, f := range t.frags {
			m.Segments = append(m.Segments, hls.Segment{URI: segmentName(i + 1), Duration: t.seconds(f.Duration)})
		}
		if err := os.WriteFile(filepath.Join(dir, t.name, playlistName), m.Encode(), 0o644); err != nil {
			return fmt.Errorf("transcoder: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, masterName), p.master().Encode(), 0o644); err != nil {
		return fmt.Errorf("transcoder: %w", err)
	}
	mpd, err := p.mpd().Encode()
	if err != nil {
		return fmt.Errorf("transcoder: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, mpdName), mpd, 0o644); err != nil {
		return fmt.Errorf("transcoder: %w", err)
	}
	return nil
}

func (p *packaged) master() hls.Master {
	m := hls.Master{Independent: true}
	audio := p.defaultAudio()
	for i, t := range p.tracks[p.nVideo:] {
		lang := t.language
		if lang == "und" {
			lang = ""
		}
		m.Audio = append(m.Audio, hls.Audio{
			GroupID: audioGroup, Language: lang, Name: t.label, Default: i == 0, AutoSelect: true,
			Channels: t.init.Channels, URI: t.name + "/" + playlistName,
		})
	}
	for _, t := range p.tracks[:p.nVideo] {
		v := hls.Variant{URI: t.name + "/" + playlistName, Width: t.width, Height: t.height, Codecs: t.init.Codec, FrameRate: p.fps}
		v.Bandwidth, v.AverageBandwidth = p.rates(p.variant(t)...)
		if audio != nil {
			v.Codecs += "," + audio.init.Codec
			v.Audio = audioGroup
		}
		m.Variants = append(m.Variants, v)
	}
	return m
}

func (p *packaged) mpd() *dash.MPD {
	seg := strconv.FormatFloat(p.segment.Seconds(), 'f', -1, 64)
	m := &dash.MPD{
		Profiles: "urn:mpeg:dash:profile:isoff-live:2011", Type: "static",
		MediaPresentationDuration: dash.FormatDuration(p.tracks[0].end()),
		MinBufferTime:             "PT" + seg + "S",
	}
	period := dash.Period{ID: "0", Start: "PT0S"}
	template := func(t *track) *dash.SegmentTemplate {
		durs := make([]uint64, len(t.frags))
		for i, f := range t.frags {
			durs[i] = f.Duration
		}
		return &dash.SegmentTemplate{
			Timescale: t.init.Timescale, Initialization: dash.InitTemplate, Media: dash.MediaTemplate,
			StartNumber: 1, Timeline: dash.NewTimeline(t.frags[0].Start, durs),
		}
	}
	fr := frameRate(p.fps)
	vs := dash.AdaptationSet{ID: 0, ContentType: "video", MimeType: "video/mp4", SegmentAlignment: true, StartWithSAP: 1, MaxFrameRate: fr}
	for _, t := range p.tracks[:p.nVideo] {
		bw, _ := p.rates(t)
		vs.MaxWidth, vs.MaxHeight = max(vs.MaxWidth, t.width), max(vs.MaxHeight, t.height)
		vs.Representations = append(vs.Representations, dash.Representation{
			ID: t.name, Bandwidth: bw, Codecs: t.init.Codec, Width: t.width, Height: t.height,
			FrameRate: fr, Sar: "1:1", SegmentTemplate: template(t),
		})
	}
	period.AdaptationSets = append(period.AdaptationSets, vs)
	for i, t := range p.tracks[p.nVideo:] {
		bw, _ := p.rates(t)
		as := dash.AdaptationSet{ID: 1 + i, ContentType: "audio", MimeType: "audio/mp4", SegmentAlignment: true, StartWithSAP: 1, Labels: []string{t.label}}
		if t.language != "und" {
			as.Lang = t.language
		}
		role := "alternate"
		if i == 0 {
			role = "main"
		}
		as.Roles = []dash.Descriptor{{SchemeIDURI: "urn:mpeg:dash:role:2011", Value: role}}
		as.Representations = []dash.Representation{{
			ID: t.name, Bandwidth: bw, Codecs: t.init.Codec, AudioSamplingRate: t.init.SampleRate,
			AudioChannelConfiguration: []dash.Descriptor{{
				SchemeIDURI: "urn:mpeg:dash:23003:3:audio_channel_configuration:2011", Value: strconv.Itoa(t.init.Channels),
			}},
			SegmentTemplate: template(t),
		}}
		period.AdaptationSets = append(period.AdaptationSets, as)
	}
	m.Periods = []dash.Period{period}
	return m
}

// frameRate writes fps as a DASH FrameRateType: "30", "25",
// "30000/1001" or a reduced fraction over 1000 such as "25/2".
func frameRate(fps float64) string {
	if n := math.Round(fps); math.Abs(fps-n) < 1e-3 {
		return strconv.Itoa(int(n))
	}
	if n := math.Round(fps * 1.001); math.Abs(fps*1.001-n) < 1e-2 {
		return strconv.Itoa(int(n)*1000) + "/1001"
	}
	num, den := int(math.Round(fps*1000)), 1000
	a, b := num, den
	for b != 0 {
		a, b = b, a%b
	}
	if a == 0 {
		return "0"
	}
	return strconv.Itoa(num/a) + "/" + strconv.Itoa(den/a)
}
