package probe

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Source describes a probed input file.
type Source struct {
	// Path is the file that was probed.
	Path string
	// Size is the file size in bytes.
	Size int64
	// Format is ffprobe's format_name, such as "mov,mp4,m4a,3gp,3g2,mj2".
	Format string
	// Duration is the container duration in seconds.
	Duration float64
	// Video is the first video stream that is not a cover picture.
	Video Video
	// Audio lists the audio streams in file order.
	Audio []Audio
}

// Video describes the video stream the ladder is made from.
type Video struct {
	// Index is the stream's index in the file (for ffmpeg's -map 0:N).
	Index int
	// Codec is ffprobe's codec_name, such as "h264".
	Codec string
	// Width and Height are the display size: the coded size corrected
	// for a non-square sample aspect ratio and for a ±90° rotation,
	// since ffmpeg applies both before the ladder's scalers.
	Width, Height int
	// CodedWidth and CodedHeight are the stored picture size.
	CodedWidth, CodedHeight int
	// FPS is the average frame rate in frames per second.
	FPS float64
	// Duration is the stream duration in seconds, or the container's
	// when the container does not record one per stream.
	Duration float64
	// PixFmt is ffprobe's pix_fmt, such as "yuv420p".
	PixFmt string
	// Rotation is the display rotation in degrees (0, 90, 180, 270).
	Rotation int
}

// Audio describes one audio stream.
type Audio struct {
	// Index is the stream's index in the file.
	Index int
	// Codec is ffprobe's codec_name, such as "aac".
	Codec string
	// Channels is the channel count.
	Channels int
	// SampleRate is in Hz.
	SampleRate int
	// Language is the ISO 639 tag from the file, "und" when absent.
	Language string
	// Title is the stream's title tag, if any.
	Title string
}

// ffprobe's -of json output, only the fields used.
type ffprobeOutput struct {
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
		Size       string `json:"size"`
	} `json:"format"`
	Streams []struct {
		Index             int               `json:"index"`
		CodecName         string            `json:"codec_name"`
		CodecType         string            `json:"codec_type"`
		Width             int               `json:"width"`
		Height            int               `json:"height"`
		SampleAspectRatio string            `json:"sample_aspect_ratio"`
		PixFmt            string            `json:"pix_fmt"`
		RFrameRate        string            `json:"r_frame_rate"`
		AvgFrameRate      string            `json:"avg_frame_rate"`
		Duration          string            `json:"duration"`
		BitRate           string            `json:"bit_rate"`
		Channels          int               `json:"channels"`
		SampleRate        string            `json:"sample_rate"`
		Disposition       map[string]int    `json:"disposition"`
		Tags              map[string]string `json:"tags"`
		SideDataList      []struct {
			Rotation *float64 `json:"rotation"`
		} `json:"side_data_list"`
	} `json:"streams"`
}

// Parse turns ffprobe's "-of json -show_format -show_streams" output into a
// Source and checks it against limits (the zero Limits means defaults). Its
// errors describe what is wrong with the file in a few words; Probe
// prefixes them with ErrBadInput and the path.
func Parse(data []byte, limits Limits) (Source, error) {
	limits = limits.withDefaults()
	var out ffprobeOutput
	if err := json.Unmarshal(data, &out); err != nil {
		return Source{}, fmt.Errorf("unreadable ffprobe output: %v", err)
	}
	src := Source{Format: out.Format.FormatName, Duration: parseFloat(out.Format.Duration)}
	size, _ := strconv.ParseInt(out.Format.Size, 10, 64)
	video := -1
	var declaredBytes float64
	allRates := true
	for i, st := range out.Streams {
		switch st.CodecType {
		case "video":
			if video >= 0 || st.Disposition["attached_pic"] == 1 || st.Disposition["still_image"] == 1 {
				continue
			}
			video = i
		case "audio":
			lang := strings.ToLower(strings.TrimSpace(st.Tags["language"]))
			if lang == "" {
				lang = "und"
			}
			sr, _ := strconv.Atoi(st.SampleRate)
			src.Audio = append(src.Audio, Audio{
				Index: st.Index, Codec: st.CodecName, Channels: st.Channels,
				SampleRate: sr, Language: lang, Title: st.Tags["title"],
			})
		default:
			continue
		}
		br, d := parseFloat(st.BitRate), parseFloat(st.Duration)
		if br > 0 && d > 0 {
			declaredBytes += br * d / 8
		} else {
			allRates = false
		}
	}
	if video < 0 {
		if len(src.Audio) > 0 {
			return Source{}, fmt.Errorf("audio only, want a video stream")
		}
		if src.Duration <= 0 {
			return Source{}, fmt.Errorf("zero duration and no video stream")
		}
		return Source{}, fmt.Errorf("no video stream")
	}
	st := out.Streams[video]
	v := Video{
		Index: st.Index, Codec: st.CodecName, PixFmt: st.PixFmt,
		CodedWidth: st.Width, CodedHeight: st.Height,
		Duration: parseFloat(st.Duration),
	}
	v.FPS = parseRatio(st.AvgFrameRate)
	if v.FPS <= 0 || math.IsInf(v.FPS, 0) || math.IsNaN(v.FPS) {
		v.FPS = parseRatio(st.RFrameRate)
	}
	if v.Duration <= 0 {
		v.Duration = src.Duration
	}
	if src.Duration <= 0 {
		src.Duration = v.Duration
	}
	if v.CodedWidth <= 0 || v.CodedHeight <= 0 {
		return Source{}, fmt.Errorf("video stream has no picture size")
	}
	v.Width, v.Height = v.CodedWidth, v.CodedHeight
	if sar := parseRatio(st.SampleAspectRatio); sar > 0 && sar != 1 && sar < 100 && sar > 0.01 {
		v.Width = int(math.Round(float64(v.CodedWidth) * sar))
	}
	v.Rotation = rotation(st.Tags["rotate"], st.SideDataList)
	if v.Rotation == 90 || v.Rotation == 270 {
		v.Width, v.Height = v.Height, v.Width
	}
	src.Video = v

	switch {
	case v.Width < limits.MinSide || v.Height < limits.MinSide:
		return Source{}, fmt.Errorf("picture %dx%d is too small, want at least %dx%d", v.Width, v.Height, limits.MinSide, limits.MinSide)
	case v.Width > limits.MaxSide || v.Height > limits.MaxSide || v.Width*v.Height > limits.MaxPixels:
		return Source{}, fmt.Errorf("picture %dx%d is too large, want at most %d pixels a side and %d pixels", v.Width, v.Height, limits.MaxSide, limits.MaxPixels)
	case !(v.FPS > 0) || v.FPS > limits.MaxFPS:
		return Source{}, fmt.Errorf("frame rate %q is unusable, want 1 to %g fps", st.AvgFrameRate, limits.MaxFPS)
	case !(src.Duration > 0) || !(v.Duration > 0):
		return Source{}, fmt.Errorf("zero duration")
	}
	minDur := limits.MinDuration
	if minDur == 0 {
		minDur = 1 / v.FPS
	}
	if v.Duration < minDur {
		return Source{}, fmt.Errorf("duration %.3fs is too short, want at least %.3fs", v.Duration, minDur)
	}
	// A container whose index promises more media than the file holds was
	// cut short (an upload that stopped, a copy that failed).
	if allRates && size > 0 && declaredBytes > float64(size)*1.01+1024 {
		return Source{}, fmt.Errorf("truncated: the streams declare %.0f bytes but the file has %d", declaredBytes, size)
	}
	return src, nil
}

func rotation(tag string, side []struct {
	Rotation *float64 `json:"rotation"`
}) int {
	r := parseFloat(tag)
	for _, s := range side {
		if s.Rotation != nil {
			r = *s.Rotation
		}
	}
	d := int(math.Round(r)) % 360
	if d < 0 {
		d += 360
	}
	return d
}

func parseFloat(s string) float64 {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// parseRatio parses "30000/1001" or "1:1" or "25"; 0 when unusable.
func parseRatio(s string) float64 {
	s = strings.TrimSpace(s)
	i := strings.IndexAny(s, "/:")
	if i < 0 {
		return parseFloat(s)
	}
	n, d := parseFloat(s[:i]), parseFloat(s[i+1:])
	if d == 0 {
		return 0
	}
	return n / d
}
