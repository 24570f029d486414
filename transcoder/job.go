package transcoder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/transcoder/ffmpeg"
	"github.com/fillcast/fillcast/transcoder/ladder"
	"github.com/fillcast/fillcast/transcoder/pertitle"
	"github.com/fillcast/fillcast/transcoder/probe"
)

// ErrBadInput marks a source that cannot become a title (missing, not
// media, truncated, audio only, zero duration, absurd size). Its message
// is one line meant for the uploader.
var ErrBadInput = probe.ErrBadInput

// ErrOutputExists is returned when the output directory already holds
// files and the job does not allow overwriting them.
var ErrOutputExists = errors.New("transcoder: output exists")

// ErrVerify marks packaged output that failed a check after encoding:
// misaligned segments, a segment not starting on a keyframe, a playlist
// or MPD that does not parse, a duration that does not match the source.
var ErrVerify = errors.New("transcoder: verification failed")

// Job is one title to transcode.
type Job struct {
	// Input is the source file.
	Input string
	// Output is the title directory to create; its parent must be
	// writable, since the job works in a temporary sibling and renames it
	// into place at the end.
	Output string
	// Ladder is the ladder to fit to the source; zero means
	// ladder.Default().
	Ladder ladder.Ladder
	// PerTitle lowers the ladder's bitrates for easy content after test
	// encodes.
	PerTitle bool
	// Segment is the segment (and GOP) duration; default 4s.
	Segment time.Duration
	// Downloads lists the heights of the progressive MP4 downloads, each
	// remuxed from the rendition of that height; default the top and the
	// lowest rendition. Heights the fitted ladder lacks are skipped.
	Downloads []int
	// Overwrite replaces an existing non-empty Output.
	Overwrite bool
	// Progress, if not nil, receives events from the goroutine calling
	// Run, so it must not block for long.
	Progress func(Event)
}

// Stage names, in the order a job moves through them.
const (
	StageProbe    = "probe"
	StageAnalyze  = "analyze"
	StageEncode   = "encode"
	StagePackage  = "package"
	StageDownload = "download"
	StageVerify   = "verify"
	StagePublish  = "publish"
	StageDone     = "done"
)

// Event reports a job's progress.
type Event struct {
	// Stage is one of the Stage constants.
	Stage string
	// Percent is the stage's progress, 0 to 100.
	Percent float64
	// Speed is the media rate relative to real time during encode and
	// analyze stages; 0 when unknown.
	Speed float64
	// ETA estimates the rest of the stage; 0 when unknown.
	ETA time.Duration
	// Elapsed is the time since the job started.
	Elapsed time.Duration
}

// Result describes a published title.
type Result struct {
	// Output is the published title directory.
	Output string
	// Source is the probed input.
	Source probe.Source
	// Renditions lists the video renditions, highest first, then the
	// audio renditions. A video rendition's Bandwidth is the measured
	// peak segment rate of the variant with its default audio, exactly
	// the BANDWIDTH of master.m3u8; an audio rendition's is its own.
	Renditions []fillcast.Rendition
	// Files lists every published file, paths relative to Output, sorted.
	Files []fillcast.File
	// Duration is the packaged duration.
	Duration time.Duration
	// Segments is the number of media segments per rendition.
	Segments int
	// PerTitle is the per-title report, nil unless the job asked for it.
	PerTitle *pertitle.Report
	// Stages records the wall time of each stage.
	Stages map[string]time.Duration
	// Elapsed is the job's wall time.
	Elapsed time.Duration
}

// Transcoder runs jobs with one Config. It holds no per-job state, so
// concurrent Run calls are safe (each starts its own ffmpeg).
type Transcoder struct {
	cfg    Config
	prober probe.Prober
	ffmpeg ffmpeg.Runner
}

// New returns a Transcoder for cfg, after validating it.
func New(cfg Config) (*Transcoder, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Transcoder{
		cfg:    cfg,
		prober: probe.Prober{FFprobe: cfg.FFprobe, Limits: cfg.Limits},
		ffmpeg: ffmpeg.Runner{Bin: cfg.FFmpeg},
	}, nil
}

// Validate checks a job's fields after defaults.
func (j Job) Validate() error {
	switch {
	case j.Input == "":
		return fmt.Errorf("%w: no input file", ErrConfig)
	case j.Output == "":
		return fmt.Errorf("%w: no output directory", ErrConfig)
	case j.Segment != 0 && (j.Segment < time.Second || j.Segment > 20*time.Second):
		return fmt.Errorf("%w: segment duration %v, want 1s to 20s", ErrConfig, j.Segment)
	}
	if len(j.Ladder.Rungs) > 0 {
		if err := j.Ladder.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	return nil
}

// Run transcodes, packages, verifies and publishes one title. On any
// error, including cancellation of ctx (which kills ffmpeg), nothing is
// left behind: the temporary directory is removed and Output is as it was.
func (t *Transcoder) Run(ctx context.Context, job Job) (*Result, error) {
	if err := job.Validate(); err != nil {
		return nil, err
	}
	if job.Segment == 0 {
		job.Segment = 4 * time.Second
	}
	if len(job.Ladder.Rungs) == 0 {
		job.Ladder = ladder.Default()
	}
	in, err := filepath.Abs(job.Input)
	if err != nil {
		return nil, fmt.Errorf("transcoder: %w", err)
	}
	out, err := filepath.Abs(job.Output)
	if err != nil {
		return nil, fmt.Errorf("transcoder: %w", err)
	}
	job.Input, job.Output = in, out
	if err := checkOutput(out, job.Overwrite); err != nil {
		return nil, err
	}
	r := &run{t: t, job: job, start: t.cfg.Now(), res: &Result{Output: out, Stages: map[string]time.Duration{}}}
	res, err := r.do(ctx)
	if err != nil {
		t.cfg.Logger.Warn("transcode failed", "input", job.Input, "err", err)
		return nil, err
	}
	return res, nil
}

// checkOutput refuses a non-empty output unless overwriting, and makes
// sure the parent exists.
func checkOutput(out string, overwrite bool) error {
	entries, err := os.ReadDir(out)
	switch {
	case err == nil && len(entries) > 0 && !overwrite:
		return fmt.Errorf("%w: %s is not empty; remove it or allow overwriting", ErrOutputExists, out)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		if fi, serr := os.Stat(out); serr == nil && !fi.IsDir() {
			return fmt.Errorf("%w: %s is a file, want a directory", ErrOutputExists, out)
		}
		return fmt.Errorf("transcoder: output: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("transcoder: output parent: %w", err)
	}
	return nil
}
