// Package pertitle lowers a ladder's bitrates for content that is easy to
// encode. It cuts a few short clips from the source, test-encodes every
// rung at candidate fractions of its ladder bitrate, measures each
// candidate's SSIM against the source scaled to the rung (ffmpeg's own
// ssim filter; Debian's ffmpeg has no libvmaf), and keeps for each rung
// the lowest bitrate whose SSIM stays within a tolerance of what the full
// ladder bitrate achieves. A rung is never raised above its ladder
// bitrate. Each search round is one ffmpeg process that decodes the clips
// once and encodes every rung's candidate, then one that scores them.
package pertitle

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Config tunes the analysis. Zero fields take the default in their
// comment.
type Config struct {
	// Clips is how many sample clips are cut from the source; default 3.
	Clips int
	// ClipSeconds is each clip's length; default 2.
	ClipSeconds float64
	// MinFactor is the lowest fraction of a rung's bitrate tried;
	// default 0.3.
	MinFactor float64
	// Step is the spacing of the candidate fractions between MinFactor
	// and 1; default 0.1, so a binary search needs three rounds.
	Step float64
	// Tolerance is how far below the full bitrate's SSIM a candidate may
	// score and still count as the same quality; default 0.002.
	Tolerance float64
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Clips: 3, ClipSeconds: 2, MinFactor: 0.3, Step: 0.1, Tolerance: 0.002}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Clips == 0 {
		c.Clips = d.Clips
	}
	if c.ClipSeconds == 0 {
		c.ClipSeconds = d.ClipSeconds
	}
	if c.MinFactor == 0 {
		c.MinFactor = d.MinFactor
	}
	if c.Step == 0 {
		c.Step = d.Step
	}
	if c.Tolerance == 0 {
		c.Tolerance = d.Tolerance
	}
	return c
}

// Validate reports the first invalid field after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Clips < 1 || c.Clips > 20:
		return fmt.Errorf("pertitle: %d clips, want 1 to 20", c.Clips)
	case !(c.ClipSeconds >= 0.5 && c.ClipSeconds <= 30):
		return fmt.Errorf("pertitle: clip length %gs, want 0.5 to 30", c.ClipSeconds)
	case !(c.MinFactor >= 0.05 && c.MinFactor < 1):
		return fmt.Errorf("pertitle: min factor %g, want 0.05 to below 1", c.MinFactor)
	case !(c.Step >= 0.01 && c.Step <= 1-c.MinFactor):
		return fmt.Errorf("pertitle: step %g, want 0.01 to %g", c.Step, 1-c.MinFactor)
	case !(c.Tolerance >= 0 && c.Tolerance < 0.1):
		return fmt.Errorf("pertitle: tolerance %g, want 0 to 0.1", c.Tolerance)
	}
	return nil
}

// grid returns the candidate fractions, ascending, ending at exactly 1.
func (c Config) grid() []float64 {
	var g []float64
	for f := 1.0; f >= c.MinFactor-1e-9; f -= c.Step {
		g = append([]float64{math.Round(f*1000) / 1000}, g...)
	}
	return g
}

// ErrNoSSIM marks a stats file without a usable SSIM line.
var ErrNoSSIM = errors.New("pertitle: no ssim values")

// ParseSSIMStats averages the "All:" values of an ssim filter stats file,
// whose lines look like
//
//	n:1 Y:0.993451 U:0.995284 V:0.995105 All:0.994004 (22.217063)
func ParseSSIMStats(data []byte) (mean float64, frames int, err error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<10)
	sum := 0.0
	for sc.Scan() {
		for _, field := range strings.Fields(sc.Text()) {
			v, ok := strings.CutPrefix(field, "All:")
			if !ok {
				continue
			}
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f >= -1 && f <= 1) {
				return 0, 0, fmt.Errorf("%w: bad value %q", ErrNoSSIM, field)
			}
			sum += f
			frames++
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("pertitle: read ssim stats: %w", err)
	}
	if frames == 0 {
		return 0, 0, ErrNoSSIM
	}
	return sum / float64(frames), frames, nil
}
