package pertitle

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fillcast/fillcast/transcoder/ffmpeg"
	"github.com/fillcast/fillcast/transcoder/ladder"
	"github.com/fillcast/fillcast/transcoder/probe"
)

// Analyzer runs the test encodes.
type Analyzer struct {
	// Runner runs ffmpeg.
	Runner ffmpeg.Runner
	// Preset is the x264 preset of the test encodes; it should match the
	// real encode so the measured quality carries over.
	Preset string
	// Config tunes the search.
	Config Config
}

// RungReport is the outcome for one rung.
type RungReport struct {
	// Name is the rung's rendition id.
	Name string
	// LadderBitrate is the bitrate before tuning.
	LadderBitrate int
	// Bitrate is the bitrate chosen.
	Bitrate int
	// LadderSSIM and SSIM are the sample's mean SSIM at each bitrate.
	LadderSSIM, SSIM float64
}

// Report is the outcome for a title.
type Report struct {
	// Rungs in ladder order.
	Rungs []RungReport
	// LadderBits and TunedBits sum the rungs' bitrates.
	LadderBits, TunedBits int
	// Elapsed is the analysis time.
	Elapsed time.Duration
}

// Saving is the fraction of ladder bits saved, 0 to 1.
func (r Report) Saving() float64 {
	if r.LadderBits == 0 {
		return 0
	}
	return 1 - float64(r.TunedBits)/float64(r.LadderBits)
}

// Progress reports how far the analysis is.
type Progress struct {
	// Fraction is the share of the analysis done, 0 to 1.
	Fraction float64
	// Speed is the current ffmpeg run's speed relative to real time.
	Speed float64
}

// search is one rung's binary search over the candidate grid: the lowest
// index known to pass is hi, the highest known to fail is lo.
type search struct {
	lo, hi int
	ssim   map[int]float64
}

// update narrows the search after new scores: a candidate passes when its
// SSIM is within tol of the ladder bitrate's (index top).
func (s *search) update(top int, tol float64) {
	target := s.ssim[top] - tol
	for idx, v := range s.ssim {
		if idx == top {
			continue
		}
		if v >= target && idx < s.hi {
			s.hi = idx
		}
		if v < target && idx > s.lo {
			s.lo = idx
		}
	}
	if s.lo >= s.hi {
		// SSIM is not monotonic here: a lower bitrate passed where a
		// higher one failed. Keep the safe side, the lowest tested
		// candidate that passes above the failure.
		s.hi = top
		for idx, v := range s.ssim {
			if idx > s.lo && idx < s.hi && v >= target {
				s.hi = idx
			}
		}
		s.lo = s.hi - 1
	}
}

// Analyze runs the search for rungs of src, using dir for scratch files,
// and returns the report and the rungs with tuned rates.
func (a Analyzer) Analyze(ctx context.Context, src probe.Source, rungs []ladder.Rendition, dir string, onProgress func(Progress)) (Report, []ladder.Rendition, error) {
	cfg := a.Config.withDefaults()
	if err := cfg.Validate(); err != nil {
		return Report{}, nil, err
	}
	if onProgress == nil {
		onProgress = func(Progress) {}
	}
	grid := cfg.grid()
	top := len(grid) - 1
	clips := Clips(src.Video.Duration, cfg.Clips, cfg.ClipSeconds)
	sampleDur := 0.0
	for _, c := range clips {
		sampleDur += c[1]
	}
	// Each round halves the interval between the highest failing and
	// the lowest passing candidate; round 0 also measures the target.
	rounds := max(1, int(math.Ceil(math.Log2(float64(len(grid))))))
	searches := make([]search, len(rungs))
	for i := range searches {
		searches[i] = search{lo: -1, hi: top, ssim: map[int]float64{}}
	}
	// Round 0 measures the ladder bitrate (the target) and the middle of
	// the grid; later rounds halve each rung's interval.
	for round := 0; ; round++ {
		var jobs []candidate
		for i, s := range searches {
			if round == 0 {
				jobs = append(jobs, candidate{rung: i, index: top})
			}
			if s.hi-s.lo > 1 {
				jobs = append(jobs, candidate{rung: i, index: (s.lo + s.hi) / 2})
			}
		}
		if len(jobs) == 0 {
			break
		}
		base := float64(round) / float64(rounds)
		report := func(p ffmpeg.Progress, half float64) {
			f := math.Min(p.OutTime.Seconds()/sampleDur, 1)
			onProgress(Progress{Fraction: base + (half+f/2)/float64(rounds), Speed: p.Speed})
		}
		scores, err := a.round(ctx, src, clips, rungs, grid, jobs, filepath.Join(dir, "r"+strconv.Itoa(round)), report)
		if err != nil {
			return Report{}, nil, err
		}
		for k, j := range jobs {
			s := &searches[j.rung]
			s.ssim[j.index] = scores[k]
		}
		for i := range searches {
			searches[i].update(top, cfg.Tolerance)
		}
	}
	rep := Report{}
	out := make([]ladder.Rendition, len(rungs))
	for i, r := range rungs {
		s := searches[i]
		f := grid[s.hi]
		t := r
		t.Bitrate = int(math.Round(float64(r.Bitrate) * f))
		t.MaxRate = int(math.Round(float64(r.MaxRate) * f))
		t.BufSize = int(math.Round(float64(r.BufSize) * f))
		out[i] = t
		rep.Rungs = append(rep.Rungs, RungReport{
			Name: r.Name, LadderBitrate: r.Bitrate, Bitrate: t.Bitrate,
			LadderSSIM: s.ssim[top], SSIM: s.ssim[s.hi],
		})
		rep.LadderBits += r.Bitrate
		rep.TunedBits += t.Bitrate
	}
	onProgress(Progress{Fraction: 1})
	return rep, out, nil
}

// candidate is one test encode: a rung at a grid index.
type candidate struct {
	rung, index int
}

// Clips spreads n clips of length secs evenly over a source of duration
// d and returns their [start, length] pairs; a source shorter than the
// clips together is used whole.
func Clips(d float64, n int, secs float64) [][2]float64 {
	if d <= float64(n)*secs {
		return [][2]float64{{0, d}}
	}
	out := make([][2]float64, n)
	for k := range out {
		start := (float64(k)+0.5)*d/float64(n) - secs/2
		start = math.Max(0, math.Min(start, d-secs))
		out[k] = [2]float64{math.Round(start*1000) / 1000, secs}
	}
	return out
}

// round encodes every candidate in one ffmpeg run, scores them all in a
// second run and returns the SSIM of each candidate in order.
func (a Analyzer) round(ctx context.Context, src probe.Source, clips [][2]float64, rungs []ladder.Rendition, grid []float64, jobs []candidate, dir string, report func(ffmpeg.Progress, float64)) ([]float64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("pertitle: %w", err)
	}
	// Scratch files are named relative to dir, where ffmpeg runs, so no
	// path ever needs filter-graph escaping.
	run := a.Runner
	run.Dir = dir
	inputs, concat := clipInputs(src, clips)
	n := len(jobs)
	var graph strings.Builder
	fmt.Fprintf(&graph, "%s,split=%d", concat, n)
	for k := range jobs {
		fmt.Fprintf(&graph, "[s%d]", k)
	}
	args := append([]string{}, inputs...)
	var outputs []string
	for k, j := range jobs {
		r := rungs[j.rung]
		f := grid[j.index]
		fmt.Fprintf(&graph, ";[s%d]scale=%d:%d:flags=bicubic,setsar=1[o%d]", k, r.Width, r.Height, k)
		file := fmt.Sprintf("c%d.nut", k)
		outputs = append(outputs, "-map", fmt.Sprintf("[o%d]", k),
			"-c:v", "libx264", "-preset", a.Preset, "-profile:v", "high",
			"-b:v", itoa(float64(r.Bitrate)*f), "-maxrate", itoa(float64(r.MaxRate)*f), "-bufsize", itoa(float64(r.BufSize)*f),
			"-an", "-fps_mode", "passthrough", "-f", "nut", file)
	}
	args = append(args, "-filter_complex", graph.String())
	args = append(args, outputs...)
	if err := run.Run(ctx, args, func(p ffmpeg.Progress) { report(p, 0) }); err != nil {
		return nil, fmt.Errorf("pertitle: test encode: %w", err)
	}

	// Score: the same clips scaled to each rung against the decoded
	// candidates, with timestamps renumbered on both sides so frames
	// pair one to one. (The encode passes frames through one to one,
	// where ffmpeg's default would drop or repeat some at the joins of
	// the clips, and NUT keeps its timestamps exactly, where Matroska's
	// millisecond ones made frames pair off by one.)
	step := renumber(src.Video.FPS)
	args = append([]string{}, inputs...)
	graph.Reset()
	fmt.Fprintf(&graph, "%s,split=%d", concat, n)
	for k := range jobs {
		fmt.Fprintf(&graph, "[s%d]", k)
	}
	var maps []string
	for k, j := range jobs {
		r := rungs[j.rung]
		args = append(args, "-i", fmt.Sprintf("c%d.nut", k))
		in := len(clips) + k
		stats := fmt.Sprintf("c%d.ssim", k)
		fmt.Fprintf(&graph, ";[s%d]scale=%d:%d:flags=bicubic,setsar=1,%s[r%d]", k, r.Width, r.Height, step, k)
		fmt.Fprintf(&graph, ";[%d:v:0]format=yuv420p,setsar=1,%s[d%d]", in, step, k)
		fmt.Fprintf(&graph, ";[d%d][r%d]ssim=stats_file=%s[q%d]", k, k, stats, k)
		maps = append(maps, "-map", fmt.Sprintf("[q%d]", k))
	}
	args = append(args, "-filter_complex", graph.String())
	args = append(args, maps...)
	args = append(args, "-f", "null", "-")
	if err := run.Run(ctx, args, func(p ffmpeg.Progress) { report(p, 0.5) }); err != nil {
		return nil, fmt.Errorf("pertitle: score: %w", err)
	}
	scores := make([]float64, n)
	for k := range jobs {
		data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("c%d.ssim", k)))
		if err != nil {
			return nil, fmt.Errorf("pertitle: %w", err)
		}
		if scores[k], _, err = ParseSSIMStats(data); err != nil {
			return nil, err
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("pertitle: %w", err)
	}
	return scores, nil
}

// clipInputs returns the -ss/-t/-i arguments for the clips and a filter
// chain that joins their video into one yuv420p stream with one
// timestamp per frame.
func clipInputs(src probe.Source, clips [][2]float64) ([]string, string) {
	var args []string
	var chain strings.Builder
	for i, c := range clips {
		args = append(args, "-ss", strconv.FormatFloat(c[0], 'f', 3, 64), "-t", strconv.FormatFloat(c[1], 'f', 3, 64), "-i", src.Path)
		fmt.Fprintf(&chain, "[%d:%d]", i, src.Video.Index)
	}
	if len(clips) > 1 {
		fmt.Fprintf(&chain, "concat=n=%d:v=1:a=0,", len(clips))
	}
	// Renumbered timestamps make every frame unique: a seek can yield
	// two frames at one timestamp, and the test encode would drop one
	// of them and pair every later frame with its neighbour.
	chain.WriteString("format=yuv420p," + renumber(src.Video.FPS))
	return args, chain.String()
}

func itoa(f float64) string { return strconv.Itoa(int(math.Round(f))) }

// renumber is a filter chain that gives frame n the timestamp n/fps in
// integer microseconds. Integer steps in a fine time base keep every
// timestamp exact on both sides of the comparison; a float step such as
// 0.0333333 in a 1/30 time base truncates n to n-1 and pairs each frame
// with its predecessor.
func renumber(fps float64) string {
	return fmt.Sprintf("settb=1/1000000,setpts=N*%d", int64(math.Round(1e6/fps)))
}
