package transcoder

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fillcast/fillcast/transcoder/ladder"
	"github.com/fillcast/fillcast/transcoder/probe"
)

// audioTrack is one audio rendition: a source audio stream re-encoded
// once to AAC stereo.
type audioTrack struct {
	// Name is the rendition id and directory, "audio-{lang}".
	Name string
	// Stream is the source stream index.
	Stream int
	// Language is the rendition's language tag ("und" when unknown).
	Language string
	// Label is the player-facing name.
	Label string
}

// audioTracks names the source's audio streams. Two streams with the same
// language get "-2", "-3" suffixes so directories stay unique.
func audioTracks(src []probe.Audio) []audioTrack {
	seen := map[string]int{}
	out := make([]audioTrack, 0, len(src))
	for _, a := range src {
		lang := sanitizeLang(a.Language)
		seen[lang]++
		name := "audio-" + lang
		if n := seen[lang]; n > 1 {
			name += "-" + strconv.Itoa(n)
		}
		label := a.Title
		if label == "" {
			label = languageName(lang)
			if n := seen[lang]; n > 1 {
				label += " " + strconv.Itoa(n)
			}
		}
		out = append(out, audioTrack{Name: name, Stream: a.Index, Language: lang, Label: label})
	}
	return out
}

// iso6391 maps the ISO 639-2 codes that MP4 and Matroska store to the
// shorter RFC 5646 tags players expect in HLS LANGUAGE and DASH lang.
var iso6391 = map[string]string{
	"eng": "en", "fra": "fr", "fre": "fr", "deu": "de", "ger": "de", "spa": "es", "ita": "it",
	"nld": "nl", "dut": "nl", "por": "pt", "jpn": "ja", "zho": "zh", "chi": "zh", "kor": "ko",
	"rus": "ru", "ara": "ar", "hin": "hi", "pol": "pl", "swe": "sv", "nor": "no", "dan": "da",
	"fin": "fi", "tur": "tr", "ces": "cs", "cze": "cs", "ell": "el", "gre": "el", "heb": "he",
}

// sanitizeLang keeps a language tag usable as a directory name and an
// HLS LANGUAGE value: lower-case letters, digits and '-', at most 16,
// with common ISO 639-2 codes shortened to ISO 639-1.
func sanitizeLang(s string) string {
	if short, ok := iso6391[strings.ToLower(s)]; ok {
		return short
	}
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		if b.Len() >= 16 {
			break
		}
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' {
			b.WriteRune(c)
		}
	}
	if b.Len() == 0 {
		return "und"
	}
	return b.String()
}

// languageName gives a few common ISO 639 codes a readable name for
// player menus; other codes are shown as they are.
func languageName(lang string) string {
	names := map[string]string{
		"en": "English", "fr": "Français", "de": "Deutsch", "es": "Español", "it": "Italiano",
		"nl": "Nederlands", "pt": "Português", "ja": "日本語", "zh": "中文", "ko": "한국어",
		"ru": "Русский", "pl": "Polski", "sv": "Svenska", "und": "Original",
	}
	if n, ok := names[lang]; ok {
		return n
	}
	return lang
}

// encodePlan is everything the single ffmpeg run needs.
type encodePlan struct {
	Input   string
	Source  probe.Source
	Video   []ladder.Rendition
	Audio   []audioTrack
	Segment time.Duration
	Preset  string
	// AudioBitrate and AudioRate configure the AAC encoder.
	AudioBitrate, AudioRate int
}

// args returns ffmpeg's arguments for the plan, writing each rendition to
// "{name}/seg-NNNNN.m4s" (numbered from 1) with its init segment and a
// scratch playlist in the same directory, relative to ffmpeg's working
// directory. One process decodes the source once, splits and scales it to
// every rung and encodes the audio once per track; keyframes are forced
// at multiples of the segment duration with scene-cut detection off, so
// every rung cuts segments at identical timestamps.
func (p encodePlan) args() []string {
	seg := strconv.FormatFloat(p.Segment.Seconds(), 'f', -1, 64)
	gop := int(p.Source.Video.FPS*p.Segment.Seconds() + 0.5)
	args := []string{"-i", p.Input}

	var g strings.Builder
	fmt.Fprintf(&g, "[0:%d]format=yuv420p", p.Source.Video.Index)
	if len(p.Video) > 1 {
		fmt.Fprintf(&g, ",split=%d", len(p.Video))
		for i := range p.Video {
			fmt.Fprintf(&g, "[s%d]", i)
		}
	} else {
		g.WriteString("[s0]")
	}
	for i, r := range p.Video {
		fmt.Fprintf(&g, ";[s%d]scale=%d:%d:flags=bicubic,setsar=1[v%d]", i, r.Width, r.Height, i)
	}
	// Audio is padded or trimmed so that, once the AAC encoder has added
	// its 1024 samples of priming and padded the last frame, it ends
	// within one AAC frame before the video: every audio rendition then
	// has as many segments as the video ones, with no sliver of a last
	// segment.
	dur := strconv.FormatFloat(p.Source.Video.Duration, 'f', 6, 64)
	for i, a := range p.Audio {
		fmt.Fprintf(&g, ";[0:%d]aresample=%d,apad=whole_dur=%s,atrim=end_sample=%d[a%d]",
			a.Stream, p.AudioRate, dur, audioSamples(p.Source.Video.Duration, p.AudioRate), i)
	}
	args = append(args, "-filter_complex", g.String())
	for i := range p.Video {
		args = append(args, "-map", fmt.Sprintf("[v%d]", i))
	}
	for i := range p.Audio {
		args = append(args, "-map", fmt.Sprintf("[a%d]", i))
	}
	args = append(args,
		"-c:v", "libx264", "-preset", p.Preset, "-profile:v", "high",
		"-force_key_frames", "expr:gte(t,n_forced*"+seg+")", "-forced-idr", "1",
		"-sc_threshold", "0", "-g", strconv.Itoa(2*gop), "-keyint_min", strconv.Itoa(gop),
	)
	for i, r := range p.Video {
		n := strconv.Itoa(i)
		args = append(args, "-b:v:"+n, strconv.Itoa(r.Bitrate), "-maxrate:v:"+n, strconv.Itoa(r.MaxRate), "-bufsize:v:"+n, strconv.Itoa(r.BufSize))
	}
	if len(p.Audio) > 0 {
		args = append(args, "-c:a", "aac", "-b:a", strconv.Itoa(p.AudioBitrate), "-ac", "2")
	}
	var vsm []string
	for i, r := range p.Video {
		s := fmt.Sprintf("v:%d,name:%s", i, r.Name)
		if len(p.Audio) > 0 {
			s += ",agroup:aac"
		}
		vsm = append(vsm, s)
	}
	for i, a := range p.Audio {
		vsm = append(vsm, fmt.Sprintf("a:%d,agroup:aac,name:%s", i, a.Name))
	}
	args = append(args,
		"-f", "hls", "-hls_time", seg, "-hls_playlist_type", "vod",
		"-hls_segment_type", "fmp4", "-hls_flags", "independent_segments",
		"-hls_fmp4_init_filename", "init.mp4", "-start_number", "1",
		"-hls_segment_filename", "%v/seg-%05d.m4s",
		"-var_stream_map", strings.Join(vsm, " "),
		"%v/ffmpeg.m3u8",
	)
	return args
}

// aacFrame is the AAC-LC frame size, which is also the priming delay of
// ffmpeg's encoder.
const aacFrame = 1024

// audioSamples is how many input samples to encode so that the encoded
// track (priming included, last frame padded) is a whole number of AAC
// frames no longer than d seconds.
func audioSamples(d float64, rate int) int {
	frames := int(d * float64(rate) / aacFrame)
	return max(frames-1, 1) * aacFrame
}
