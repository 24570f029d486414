// Package ffmpeg runs ffmpeg as a subprocess for the transcoder: it adds
// the flags every run needs (no banner, no stdin, machine-readable
// progress on stdout), turns the -progress key=value stream into Progress
// values, keeps the tail of stderr for error messages, and kills the
// process when the context ends.
package ffmpeg

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Progress is one block of ffmpeg's -progress output.
type Progress struct {
	// Frame is the number of frames written so far.
	Frame int64
	// FPS is the current encoding speed in frames per second.
	FPS float64
	// OutTime is the media time written so far.
	OutTime time.Duration
	// Speed is OutTime's rate relative to real time (2.0 means twice
	// real time); 0 when ffmpeg does not know yet.
	Speed float64
	// End is true for the last block.
	End bool
}

// maxProgressLine bounds one line of -progress output.
const maxProgressLine = 4096

// ReadProgress parses ffmpeg's -progress stream from r, calling fn once per
// block (a block ends with a "progress=continue" or "progress=end" line).
// Unknown keys and malformed values are ignored, since the format grows
// between ffmpeg versions. It returns r's read error, if any, other than
// io.EOF.
func ReadProgress(r io.Reader, fn func(Progress)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxProgressLine)
	var p Progress
	for sc.Scan() {
		key, value, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch key {
		case "frame":
			if n, err := strconv.ParseInt(value, 10, 64); err == nil && n >= 0 {
				p.Frame = n
			}
		case "fps":
			if f, err := strconv.ParseFloat(value, 64); err == nil && f >= 0 {
				p.FPS = f
			}
		case "out_time_us", "out_time_ms": // both are microseconds
			if n, err := strconv.ParseInt(value, 10, 64); err == nil && n >= 0 && n < 1<<62/1000 {
				p.OutTime = time.Duration(n) * time.Microsecond
			}
		case "speed":
			if f, err := strconv.ParseFloat(strings.TrimSuffix(value, "x"), 64); err == nil && f >= 0 && f < 1e6 {
				p.Speed = f
			}
		case "progress":
			p.End = value == "end"
			fn(p)
			p.End = false
		}
	}
	return sc.Err()
}

// Runner runs ffmpeg. The zero value runs "ffmpeg" from PATH.
type Runner struct {
	// Bin is the ffmpeg executable; default "ffmpeg".
	Bin string
	// Dir is the working directory of the process; default the
	// caller's. Relative paths in arguments and filter graphs resolve
	// against it, which spares escaping directory names in filter
	// options.
	Dir string
	// KillDelay is how long to wait for ffmpeg's pipes after killing it
	// on cancellation; default 5s.
	KillDelay time.Duration
}

// Error is a failed ffmpeg run.
type Error struct {
	// Err is the exec error (usually an *exec.ExitError).
	Err error
	// Stderr is the end of ffmpeg's stderr, on one line.
	Stderr string
}

// Error formats the failure with ffmpeg's last words.
func (e *Error) Error() string {
	if e.Stderr == "" {
		return "ffmpeg: " + e.Err.Error()
	}
	return "ffmpeg: " + e.Err.Error() + ": " + e.Stderr
}

// Unwrap returns the exec error.
func (e *Error) Unwrap() error { return e.Err }

// Run runs ffmpeg with args (input and output options, not the common
// flags) and calls onProgress, if not nil, from the calling goroutine for
// each progress block. It returns when ffmpeg has exited; when ctx ends
// first, ffmpeg is killed and Run returns an error wrapping ctx.Err().
func (r Runner) Run(ctx context.Context, args []string, onProgress func(Progress)) error {
	bin := r.Bin
	if bin == "" {
		bin = "ffmpeg"
	}
	full := append([]string{"-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-progress", "pipe:1", "-y"}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Dir = r.Dir
	cmd.WaitDelay = r.KillDelay
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 5 * time.Second
	}
	tail := &tailWriter{max: 8 << 10}
	cmd.Stderr = tail
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("ffmpeg: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("ffmpeg: start %s: %w", bin, err)
	}
	// Reading progress here, not in a goroutine, keeps the run's only
	// concurrent work inside exec (the stderr copier), which Wait joins.
	if onProgress == nil {
		onProgress = func(Progress) {}
	}
	readErr := ReadProgress(stdout, onProgress)
	if readErr != nil {
		_, _ = io.Copy(io.Discard, stdout)
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		return fmt.Errorf("ffmpeg: %w", ctx.Err())
	}
	if err != nil {
		return &Error{Err: err, Stderr: tail.lastLines(3)}
	}
	if readErr != nil && !errors.Is(readErr, io.ErrClosedPipe) {
		return fmt.Errorf("ffmpeg: read progress: %w", readErr)
	}
	return nil
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
}

// Write keeps the end of p and never fails.
func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// lastLines returns the last n non-empty lines joined by "; ".
func (t *tailWriter) lastLines(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(t.buf)), "\n")
	var out []string
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			out = append([]string{l}, out...)
		}
	}
	return strings.Join(out, "; ")
}
