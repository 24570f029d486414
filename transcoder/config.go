// Package transcoder turns one uploaded video into a packaged Fillcast
// title: an aligned H.264/AAC bitrate ladder encoded by a single ffmpeg
// process, one set of CMAF (fMP4) segments referenced by both an HLS
// multivariant playlist and a static DASH MPD, and progressive MP4
// downloads remuxed from the encoded renditions. It drives ffprobe and
// ffmpeg as subprocesses (package ffmpeg), fits the ladder to the source
// (package ladder), optionally tunes bitrates per title (package
// pertitle), verifies the result (packages mp4, hls and dash) and
// publishes it atomically: work happens in a temporary directory beside
// the output and is renamed into place only when every check passed.
//
// The control plane runs a Job per ingest; the fillcast transcode
// subcommand runs one from the command line.
package transcoder

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fillcast/fillcast/transcoder/pertitle"
	"github.com/fillcast/fillcast/transcoder/probe"
)

// Config holds the settings shared by every job a Transcoder runs. Zero
// fields take the default given in their comment; DefaultConfig returns
// them filled in.
type Config struct {
	// FFmpeg is the ffmpeg executable; default "ffmpeg".
	FFmpeg string
	// FFprobe is the ffprobe executable; default "ffprobe".
	FFprobe string
	// Preset is the x264 preset; default "veryfast".
	Preset string
	// AudioBitrate is the AAC bitrate of every audio rendition in bits
	// per second; default 128000.
	AudioBitrate int
	// AudioSampleRate is the AAC sample rate in Hz; default 48000.
	AudioSampleRate int
	// Limits bounds acceptable sources; the zero value means
	// probe's defaults.
	Limits probe.Limits
	// PerTitle tunes the per-title analysis; zero fields take
	// pertitle's defaults.
	PerTitle pertitle.Config
	// Logger receives one line per stage; default slog.Default().
	Logger *slog.Logger
	// Now is the clock used for speed and ETA; default time.Now.
	Now func() time.Time
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{
		FFmpeg:          "ffmpeg",
		FFprobe:         "ffprobe",
		Preset:          "veryfast",
		AudioBitrate:    128_000,
		AudioSampleRate: 48_000,
		PerTitle:        pertitle.DefaultConfig(),
		Logger:          slog.Default(),
		Now:             time.Now,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.FFmpeg == "" {
		c.FFmpeg = d.FFmpeg
	}
	if c.FFprobe == "" {
		c.FFprobe = d.FFprobe
	}
	if c.Preset == "" {
		c.Preset = d.Preset
	}
	if c.AudioBitrate == 0 {
		c.AudioBitrate = d.AudioBitrate
	}
	if c.AudioSampleRate == 0 {
		c.AudioSampleRate = d.AudioSampleRate
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	return c
}

// x264 presets, fastest first.
var presets = map[string]bool{
	"ultrafast": true, "superfast": true, "veryfast": true, "faster": true, "fast": true,
	"medium": true, "slow": true, "slower": true, "veryslow": true, "placebo": true,
}

// ErrConfig marks an invalid Config or Job.
var ErrConfig = errors.New("transcoder: bad config")

// Validate reports the first invalid field after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case !presets[c.Preset]:
		return fmt.Errorf("%w: preset %q is not an x264 preset", ErrConfig, c.Preset)
	case c.AudioBitrate < 16_000 || c.AudioBitrate > 512_000:
		return fmt.Errorf("%w: audio bitrate %d, want 16000 to 512000", ErrConfig, c.AudioBitrate)
	case c.AudioSampleRate != 44_100 && c.AudioSampleRate != 48_000:
		return fmt.Errorf("%w: audio sample rate %d, want 44100 or 48000", ErrConfig, c.AudioSampleRate)
	}
	if err := c.PerTitle.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}
