// Package probe inspects a source file with ffprobe before the transcoder
// spends any time on it. It turns ffprobe's JSON into a small Source
// description (display size, frame rate, duration, audio tracks) and
// refuses inputs that cannot become a title: missing files, files that are
// not media, truncated containers, audio-only input, zero duration and
// absurd dimensions. Every refusal wraps ErrBadInput and reads as one line.
package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// ErrBadInput marks a source that cannot be transcoded. Callers branch on
// it with errors.Is to show the message to the uploader instead of paging
// an operator.
var ErrBadInput = errors.New("bad input")

// Limits bound what a source may look like. The zero value of a field
// means the default given in its comment.
type Limits struct {
	// MinSide is the smallest width or height accepted; default 16.
	MinSide int
	// MaxSide is the largest width or height accepted; default 8192.
	MaxSide int
	// MaxPixels bounds width×height; default 8192×4320.
	MaxPixels int
	// MaxFPS is the highest frame rate accepted; default 240.
	MaxFPS float64
	// MinDuration is the shortest source accepted, in seconds; default
	// one frame's worth (any positive duration of at least one frame).
	MinDuration float64
}

func (l Limits) withDefaults() Limits {
	if l.MinSide == 0 {
		l.MinSide = 16
	}
	if l.MaxSide == 0 {
		l.MaxSide = 8192
	}
	if l.MaxPixels == 0 {
		l.MaxPixels = 8192 * 4320
	}
	if l.MaxFPS == 0 {
		l.MaxFPS = 240
	}
	return l
}

// Prober runs ffprobe. The zero value uses "ffprobe" from PATH and the
// default Limits.
type Prober struct {
	// FFprobe is the ffprobe executable; default "ffprobe".
	FFprobe string
	// Limits bounds acceptable sources.
	Limits Limits
}

// Probe inspects path and returns its description, or an error wrapping
// ErrBadInput that says in one line what is wrong with the file. Errors
// that are not the input's fault (ffprobe missing, context canceled) do
// not wrap ErrBadInput.
func (p Prober) Probe(ctx context.Context, path string) (Source, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return Source{}, fmt.Errorf("%w: %s: no such file", ErrBadInput, path)
	case err != nil:
		return Source{}, fmt.Errorf("%w: %s: %v", ErrBadInput, path, unwrapPath(err))
	case fi.IsDir():
		return Source{}, fmt.Errorf("%w: %s: is a directory, want a media file", ErrBadInput, path)
	case fi.Size() == 0:
		return Source{}, fmt.Errorf("%w: %s: empty file", ErrBadInput, path)
	}
	bin := p.FFprobe
	if bin == "" {
		bin = "ffprobe"
	}
	// -xerror is not used: ffprobe would then fail on benign warnings.
	// Truncation is caught by comparing container and stream facts below
	// and by ffprobe's own errors on a broken index.
	cmd := exec.CommandContext(ctx, bin, "-v", "warning", "-of", "json",
		"-show_format", "-show_streams", "--", path)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return Source{}, fmt.Errorf("probe: %w", ctx.Err())
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return Source{}, fmt.Errorf("probe: run %s: %w", bin, err)
		}
		return Source{}, fmt.Errorf("%w: %s: not a media file ffprobe can read (%s)", ErrBadInput, path, lastLine(stderr.String(), path))
	}
	src, err := Parse(stdout.Bytes(), p.Limits)
	if err != nil {
		return Source{}, fmt.Errorf("%w: %s: %w", ErrBadInput, path, err)
	}
	for _, line := range strings.Split(stderr.String(), "\n") {
		if msg := lastLine(line, path); msg != "" && looksTruncated(msg) {
			return Source{}, fmt.Errorf("%w: %s: truncated or damaged file (%s)", ErrBadInput, path, msg)
		}
	}
	src.Path = path
	src.Size = fi.Size()
	return src, nil
}

// looksTruncated reports whether an ffprobe error line says the file ends
// early or its index is broken.
func looksTruncated(msg string) bool {
	m := strings.ToLower(msg)
	for _, s := range []string{"truncat", "ended prematurely", "moov atom not found", "end of file", "invalid data", "incomplete", "partial file"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// lastLine returns the last non-empty line of ffprobe's stderr with the
// file name and the "[demuxer @ 0x...]" prefix removed, so it fits in a
// one-line error.
func lastLine(s, path string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" {
			continue
		}
		if strings.HasPrefix(l, "[") {
			if j := strings.Index(l, "] "); j > 0 {
				l = l[j+2:]
			}
		}
		l = strings.TrimPrefix(l, path+": ")
		return l
	}
	return ""
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
