package ladder

import (
	"math"
	"strconv"
)

// Rendition is a rung fitted to one source: the exact picture size and
// rates ffmpeg is asked for.
type Rendition struct {
	// Name is the rendition id and directory, such as "720p".
	Name string
	// Width and Height are even and keep the source's display aspect
	// ratio.
	Width, Height int
	// Bitrate, MaxRate and BufSize are in bits per second (BufSize in
	// bits), after the frame-rate correction.
	Bitrate, MaxRate, BufSize int
}

// topUpRatio is how much taller than the highest kept rung a source must
// be before the ladder gains a rung at the source's own size: a 1000x562
// source gets a 562p rung above 480p rather than stopping at 480p.
const topUpRatio = 1.15

// filmFPS is the frame rate from which the ladder's bitrates apply as
// written; below it they are scaled down.
const filmFPS = 23.5

// Fit fits the ladder to a source of the given display size and frame
// rate: rungs taller than the source are dropped (never upscale), a rung
// at the source's size is added when the source sits well above the
// highest remaining rung or below every rung, widths follow the aspect
// ratio rounded to even numbers, and bitrates shrink for frame rates below
// 23.5 fps by (fps/30)^0.75, since fewer frames carry fewer bits but each
// frame differs more from the last. The ladder is assumed valid.
func Fit(l Ladder, width, height int, fps float64) []Rendition {
	l = l.normalise()
	if width < 2 || height < 2 {
		return nil
	}
	aspect := float64(width) / float64(height)
	factor := 1.0
	if fps > 0 && fps < filmFPS {
		factor = math.Pow(fps/30, 0.75)
	}
	scale := func(b Bitrate) int { return int(math.Round(float64(b) * factor)) }

	var out []Rendition
	var above *Rung // the smallest rung taller than the source
	for i := range l.Rungs {
		r := l.Rungs[i]
		if r.Height > height {
			above = &l.Rungs[i]
			continue
		}
		out = append(out, Rendition{
			Name: r.Name, Width: even(float64(r.Height) * aspect), Height: even(float64(r.Height)),
			Bitrate: scale(r.Bitrate), MaxRate: scale(r.MaxRate), BufSize: scale(r.BufSize),
		})
	}
	srcH := even(float64(height))
	srcW := even(float64(srcH) * aspect)
	if width%2 == 0 && height%2 == 0 {
		srcW = width // keep an even source's exact size
	}
	switch {
	case len(out) == 0:
		// Smaller than every rung: one rendition at the source's size,
		// its rates scaled from the smallest rung by pixel count.
		low := l.Rungs[len(l.Rungs)-1]
		k := math.Max(float64(srcW*srcH)/(float64(low.Height)*float64(low.Height)*aspect), 0.25)
		out = append(out, top(srcW, srcH, low, k*factor))
	case above != nil && float64(height) >= topUpRatio*float64(out[0].Height):
		// Between two rungs: interpolate rates by pixel count.
		lo := out[0]
		pix := float64(srcW * srcH)
		loPix := float64(lo.Width * lo.Height)
		hiPix := float64(above.Height) * float64(above.Height) * aspect
		t := (pix - loPix) / (hiPix - loPix)
		mix := func(a, b int) int { return int(math.Round(float64(a) + t*(float64(b)-float64(a)))) }
		r := Rendition{
			Name: strconv.Itoa(srcH) + "p", Width: srcW, Height: srcH,
			Bitrate: mix(lo.Bitrate, scale(above.Bitrate)),
			MaxRate: mix(lo.MaxRate, scale(above.MaxRate)),
			BufSize: mix(lo.BufSize, scale(above.BufSize)),
		}
		if r.Name == lo.Name || r.Name == above.Name {
			r.Name += "-src"
		}
		out = append([]Rendition{r}, out...)
	}
	return out
}

func top(w, h int, low Rung, k float64) Rendition {
	f := func(b Bitrate) int { return int(math.Round(float64(b) * k)) }
	return Rendition{Name: strconv.Itoa(h) + "p", Width: w, Height: h, Bitrate: f(low.Bitrate), MaxRate: f(low.MaxRate), BufSize: f(low.BufSize)}
}

// even rounds x to the nearest even integer of at least 2.
func even(x float64) int {
	n := 2 * int(math.Round(x/2))
	if n < 2 {
		n = 2
	}
	return n
}
