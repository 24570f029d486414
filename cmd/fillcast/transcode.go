package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/fillcast/fillcast/transcoder"
	"github.com/fillcast/fillcast/transcoder/ladder"
)

// runTranscode is "fillcast transcode": one title, no control plane.
func runTranscode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("transcode", "--in FILE --out DIR [flags]", stderr)
	in := fs.String("in", "", "source video `FILE`")
	out := fs.String("out", "", "title `DIR` to create (work happens in a temporary sibling)")
	ladderFlag := fs.String("ladder", "default", "bitrate ladder: default, per-title, or a JSON `FILE`")
	segment := fs.Duration("segment", 4*time.Second, "segment and GOP duration")
	preset := fs.String("preset", "veryfast", "x264 preset")
	force := fs.Bool("force", false, "replace --out if it already holds a title")
	ffmpegBin := fs.String("ffmpeg", "ffmpeg", "ffmpeg executable")
	ffprobeBin := fs.String("ffprobe", "ffprobe", "ffprobe executable")
	quiet := fs.Bool("quiet", false, "no progress line")
	lf := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *in == "" || *out == "" {
		fs.Usage()
		return fmt.Errorf("%w: --in and --out are required", errUsage)
	}
	logger, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	job := transcoder.Job{Input: *in, Output: *out, Segment: *segment, Overwrite: *force}
	switch *ladderFlag {
	case "default":
	case "per-title":
		job.PerTitle = true
	default:
		if job.Ladder, err = ladder.Load(*ladderFlag); err != nil {
			return fmt.Errorf("%w: --ladder: %v", errUsage, err)
		}
	}
	cfg := transcoder.DefaultConfig()
	cfg.FFmpeg, cfg.FFprobe, cfg.Preset, cfg.Logger = *ffmpegBin, *ffprobeBin, *preset, logger
	tc, err := transcoder.New(cfg)
	if err != nil {
		return err
	}
	pl := &progressLine{w: stderr, tty: isTerminal(stderr)}
	if !*quiet {
		job.Progress = pl.show
	}
	res, err := tc.Run(ctx, job)
	pl.finish()
	if err != nil {
		return err
	}
	printSummary(stdout, res)
	return nil
}

// progressLine draws one status line, rewritten in place on a terminal
// and printed at most once a second otherwise.
type progressLine struct {
	w     io.Writer
	tty   bool
	last  time.Time
	stage string
	drawn bool
}

func (p *progressLine) show(ev transcoder.Event) {
	if ev.Stage == transcoder.StageDone {
		return
	}
	now := time.Now()
	if ev.Stage == p.stage && ev.Percent < 100 && now.Sub(p.last) < p.interval() {
		return
	}
	p.stage, p.last = ev.Stage, now
	line := fmt.Sprintf("%-8s %5.1f%%", ev.Stage, ev.Percent)
	if ev.Speed > 0 {
		line += fmt.Sprintf("  speed %.2fx", ev.Speed)
	}
	if ev.ETA > 0 && ev.Percent < 100 {
		line += fmt.Sprintf("  ETA %s", ev.ETA)
	}
	line += fmt.Sprintf("  elapsed %s", ev.Elapsed.Round(100*time.Millisecond))
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.drawn = true
		return
	}
	fmt.Fprintln(p.w, line)
}

func (p *progressLine) interval() time.Duration {
	if p.tty {
		return 100 * time.Millisecond
	}
	return time.Second
}

func (p *progressLine) finish() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}

// isTerminal reports whether w is a character device.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func printSummary(w io.Writer, res *transcoder.Result) {
	fmt.Fprintf(w, "published %s: %d renditions, %d segments of each, %s, %d files in %s\n",
		res.Output, len(res.Renditions), res.Segments, res.Duration.Round(time.Millisecond), len(res.Files), res.Elapsed.Round(10*time.Millisecond))
	for _, r := range res.Renditions {
		if r.Kind == "video" {
			fmt.Fprintf(w, "  %-10s video %4dx%-4d %8.0f kb/s peak  %s\n", r.ID, r.Width, r.Height, float64(r.Bandwidth)/1000, r.Codecs)
		} else {
			fmt.Fprintf(w, "  %-10s audio %-9s %8.0f kb/s peak  %s\n", r.ID, r.Language, float64(r.Bandwidth)/1000, r.Codecs)
		}
	}
	if pt := res.PerTitle; pt != nil {
		fmt.Fprintf(w, "per-title: %.0f kb/s instead of %.0f kb/s across the ladder, %.1f%% saved (analysis %s)\n",
			float64(pt.TunedBits)/1000, float64(pt.LadderBits)/1000, 100*pt.Saving(), pt.Elapsed.Round(100*time.Millisecond))
		for _, r := range pt.Rungs {
			fmt.Fprintf(w, "  %-10s %6.0fk -> %6.0fk  SSIM %.4f -> %.4f\n", r.Name, float64(r.LadderBitrate)/1000, float64(r.Bitrate)/1000, r.LadderSSIM, r.SSIM)
		}
	}
	var stages []string
	for _, s := range []string{transcoder.StageProbe, transcoder.StageAnalyze, transcoder.StageEncode, transcoder.StagePackage, transcoder.StageDownload, transcoder.StageVerify, transcoder.StagePublish} {
		if d, ok := res.Stages[s]; ok {
			stages = append(stages, fmt.Sprintf("%s %s", s, d.Round(10*time.Millisecond)))
		}
	}
	fmt.Fprintf(w, "stages: %v\n", stages)
}
