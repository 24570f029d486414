package transcoder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fillcast/fillcast/transcoder/ffmpeg"
	"github.com/fillcast/fillcast/transcoder/ladder"
	"github.com/fillcast/fillcast/transcoder/pertitle"
	"github.com/fillcast/fillcast/transcoder/probe"
)

// run is the state of one Run call.
type run struct {
	t     *Transcoder
	job   Job
	res   *Result
	start time.Time

	stage      string
	stageStart time.Time

	src   probe.Source
	video []ladder.Rendition
	audio []audioTrack
	// title is the directory that becomes Output; work holds scratch
	// files. Both live under one temporary sibling of Output.
	tmp, title, work string
}

func (r *run) do(ctx context.Context) (*Result, error) {
	r.begin(StageProbe)
	src, err := r.t.prober.Probe(ctx, r.job.Input)
	if err != nil {
		return nil, fmt.Errorf("transcoder: %w", err)
	}
	r.src = src
	r.res.Source = src
	r.video = ladder.Fit(r.job.Ladder, src.Video.Width, src.Video.Height, src.Video.FPS)
	if len(r.video) == 0 {
		return nil, fmt.Errorf("transcoder: %w: %s: no ladder rung fits a %dx%d picture", ErrBadInput, src.Path, src.Video.Width, src.Video.Height)
	}
	r.audio = audioTracks(src.Audio)

	out := r.job.Output
	r.tmp, err = os.MkdirTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("transcoder: temp dir: %w", err)
	}
	published := false
	defer func() {
		if !published {
			os.RemoveAll(r.tmp)
		}
	}()
	r.title, r.work = filepath.Join(r.tmp, "title"), filepath.Join(r.tmp, "work")
	for _, d := range []string{r.title, r.work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, fmt.Errorf("transcoder: %w", err)
		}
	}

	if r.job.PerTitle {
		r.begin(StageAnalyze)
		a := pertitle.Analyzer{Runner: r.t.ffmpeg, Preset: r.t.cfg.Preset, Config: r.t.cfg.PerTitle}
		rep, tuned, err := a.Analyze(ctx, src, r.video, r.work, func(p pertitle.Progress) {
			r.progress(p.Fraction, p.Speed)
		})
		if err != nil {
			return nil, fmt.Errorf("transcoder: per-title: %w", err)
		}
		rep.Elapsed = r.t.cfg.Now().Sub(r.stageStart)
		r.res.PerTitle = &rep
		r.video = tuned
	}

	r.begin(StageEncode)
	if err := r.encode(ctx); err != nil {
		return nil, err
	}

	r.begin(StagePackage)
	pkg, err := r.scan()
	if err != nil {
		return nil, err
	}
	if err := pkg.check(r.src); err != nil {
		return nil, err
	}
	if err := pkg.write(r.title); err != nil {
		return nil, err
	}

	r.begin(StageDownload)
	downloads, err := r.downloads(ctx, pkg)
	if err != nil {
		return nil, err
	}
	if err := r.poster(ctx, pkg); err != nil {
		return nil, err
	}

	r.begin(StageVerify)
	if err := verifyManifests(r.title, pkg); err != nil {
		return nil, err
	}
	if err := verifyDownloads(r.title, downloads, pkg); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("transcoder: %w", err)
	}

	r.begin(StagePublish)
	files, err := hashTree(ctx, r.title)
	if err != nil {
		return nil, err
	}
	r.res.Files = files
	r.res.Renditions = pkg.renditions()
	r.res.Duration = pkg.duration()
	r.res.Segments = len(pkg.tracks[0].frags)
	if err := publish(r.title, out, r.job.Overwrite); err != nil {
		return nil, err
	}
	published = true
	if err := os.RemoveAll(r.tmp); err != nil {
		r.t.cfg.Logger.Warn("transcoder: remove temp dir", "dir", r.tmp, "err", err)
	}
	r.begin(StageDone)
	r.res.Elapsed = r.t.cfg.Now().Sub(r.start)
	return r.res, nil
}

// begin closes the current stage and starts the next one.
func (r *run) begin(stage string) {
	now := r.t.cfg.Now()
	if r.stage != "" {
		d := now.Sub(r.stageStart)
		r.res.Stages[r.stage] = d
		r.t.cfg.Logger.Debug("transcoder: stage done", "stage", r.stage, "took", d)
		r.emit(Event{Stage: r.stage, Percent: 100})
	}
	r.stage, r.stageStart = stage, now
	if stage != StageDone {
		r.emit(Event{Stage: stage})
	}
}

// progress reports the current stage at fraction done (0 to 1).
func (r *run) progress(frac, speed float64) {
	frac = min(max(frac, 0), 1)
	ev := Event{Stage: r.stage, Percent: 100 * frac, Speed: speed}
	if spent := r.t.cfg.Now().Sub(r.stageStart); frac > 0.01 {
		ev.ETA = time.Duration(float64(spent) * (1 - frac) / frac).Round(time.Second)
	}
	r.emit(ev)
}

func (r *run) emit(ev Event) {
	if r.job.Progress == nil {
		return
	}
	ev.Elapsed = r.t.cfg.Now().Sub(r.start)
	r.job.Progress(ev)
}

// encode runs the single ffmpeg process of the ladder.
func (r *run) encode(ctx context.Context) error {
	for _, v := range r.video {
		if err := os.Mkdir(filepath.Join(r.title, v.Name), 0o755); err != nil {
			return fmt.Errorf("transcoder: %w", err)
		}
	}
	for _, a := range r.audio {
		if err := os.Mkdir(filepath.Join(r.title, a.Name), 0o755); err != nil {
			return fmt.Errorf("transcoder: %w", err)
		}
	}
	plan := encodePlan{
		Input: r.src.Path, Source: r.src, Video: r.video, Audio: r.audio,
		Segment: r.job.Segment, Preset: r.t.cfg.Preset,
		AudioBitrate: r.t.cfg.AudioBitrate, AudioRate: r.t.cfg.AudioSampleRate,
	}
	run := r.t.ffmpeg
	run.Dir = r.title
	total := r.src.Video.Duration
	err := run.Run(ctx, plan.args(), func(p ffmpeg.Progress) {
		r.progress(p.OutTime.Seconds()/total, p.Speed)
	})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("transcoder: %w", ctx.Err())
		}
		var fe *ffmpeg.Error
		if errors.As(err, &fe) && damaged(fe.Stderr) {
			// The probe accepted the file but decoding failed, so the
			// source is damaged; ffmpeg's last words say how.
			return fmt.Errorf("transcoder: %w: %s: damaged source: %w", ErrBadInput, r.src.Path, err)
		}
		return fmt.Errorf("transcoder: encode: %w", err)
	}
	return nil
}

// damaged reports whether ffmpeg's error output blames the input data
// rather than the machine (disk full, missing encoder).
func damaged(stderr string) bool {
	m := strings.ToLower(stderr)
	for _, s := range []string{"invalid data", "corrupt", "error while decoding", "truncat", "moov atom", "end of file", "invalid nal"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}
