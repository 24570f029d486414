// Package ladder holds the bitrate ladders the transcoder encodes and fits
// a ladder to one source: it never upscales, keeps the display aspect
// ratio with even dimensions, lowers bitrates for low frame rates and caps
// the VBV so that a playlist's BANDWIDTH is honest. A ladder is either the
// built-in default or a JSON file.
package ladder

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Rung is one configured step of a ladder.
type Rung struct {
	// Name names the rendition and its directory; default "{Height}p".
	Name string `json:"name,omitempty"`
	// Height is the picture height in pixels; the width follows the
	// source's display aspect ratio.
	Height int `json:"height"`
	// Bitrate is the average video bitrate for 24–30 fps content.
	Bitrate Bitrate `json:"bitrate"`
	// MaxRate is the VBV peak rate; default 110 % of Bitrate.
	MaxRate Bitrate `json:"maxrate,omitempty"`
	// BufSize is the VBV buffer; default 200 % of Bitrate, so that a
	// segment of a few seconds never exceeds MaxRate by much.
	BufSize Bitrate `json:"bufsize,omitempty"`
}

// Ladder is an ordered set of rungs, highest first once normalised.
type Ladder struct {
	// Rungs are the steps; order does not matter in a file.
	Rungs []Rung `json:"rungs"`
}

// Default returns the built-in H.264 ladder: 1080p 5000k, 720p 3000k, 480p
// 1200k, 360p 700k, 240p 300k.
func Default() Ladder {
	return Ladder{Rungs: []Rung{
		{Height: 1080, Bitrate: 5_000_000},
		{Height: 720, Bitrate: 3_000_000},
		{Height: 480, Bitrate: 1_200_000},
		{Height: 360, Bitrate: 700_000},
		{Height: 240, Bitrate: 300_000},
	}}
}

// Bitrate is bits per second. In JSON it is a number (3000000) or a string
// with an optional k or M suffix ("3000k", "3M", "2.5M").
type Bitrate int

// ParseBitrate parses "3000000", "3000k" or "2.5M".
func ParseBitrate(s string) (Bitrate, error) {
	t := strings.TrimSpace(s)
	mult := 1.0
	switch {
	case strings.HasSuffix(t, "k") || strings.HasSuffix(t, "K"):
		mult, t = 1e3, t[:len(t)-1]
	case strings.HasSuffix(t, "M") || strings.HasSuffix(t, "m"):
		mult, t = 1e6, t[:len(t)-1]
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || !(f >= 0) || f*mult > 1e10 {
		return 0, fmt.Errorf("ladder: bad bitrate %q: want bits per second such as 3000000, 3000k or 3M", s)
	}
	return Bitrate(f * mult), nil
}

// UnmarshalJSON accepts a number or a string such as "3000k".
func (b *Bitrate) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("ladder: bad bitrate %s: %w", data, err)
		}
		v, err := ParseBitrate(s)
		*b = v
		return err
	}
	v, err := ParseBitrate(string(data))
	*b = v
	return err
}

// String formats b as "3000k".
func (b Bitrate) String() string {
	if b%1000 == 0 {
		return strconv.Itoa(int(b)/1000) + "k"
	}
	return strconv.Itoa(int(b))
}

// Limits on a ladder file, generous but enough to reject nonsense.
const (
	maxRungs   = 16
	minHeight  = 16
	maxHeight  = 4320
	minBitrate = 16_000
	maxBitrate = 200_000_000
)

// ErrBadLadder marks a ladder that cannot be used.
var ErrBadLadder = errors.New("ladder: bad ladder")

// Parse reads a JSON ladder such as
//
//	{"rungs": [{"height": 720, "bitrate": "3000k"}, {"height": 360, "bitrate": "700k"}]}
//
// fills defaults and validates it.
func Parse(data []byte) (Ladder, error) {
	var l Ladder
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return Ladder{}, fmt.Errorf("%w: %v", ErrBadLadder, err)
	}
	if dec.More() {
		return Ladder{}, fmt.Errorf("%w: trailing data after the JSON object", ErrBadLadder)
	}
	l = l.normalise()
	if err := l.Validate(); err != nil {
		return Ladder{}, err
	}
	return l, nil
}

// Load reads and parses a ladder file.
func Load(path string) (Ladder, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Ladder{}, fmt.Errorf("ladder: %w", err)
	}
	l, err := Parse(data)
	if err != nil {
		return Ladder{}, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

// normalise fills defaulted fields and sorts rungs highest first.
func (l Ladder) normalise() Ladder {
	rungs := make([]Rung, len(l.Rungs))
	copy(rungs, l.Rungs)
	for i := range rungs {
		r := &rungs[i]
		if r.Name == "" {
			r.Name = strconv.Itoa(r.Height) + "p"
		}
		if r.MaxRate == 0 {
			r.MaxRate = r.Bitrate * 11 / 10
		}
		if r.BufSize == 0 {
			r.BufSize = r.Bitrate * 2
		}
	}
	sort.SliceStable(rungs, func(i, j int) bool { return rungs[i].Height > rungs[j].Height })
	return Ladder{Rungs: rungs}
}

// Validate checks every rung and that names and heights are unique.
func (l Ladder) Validate() error {
	if len(l.Rungs) == 0 {
		return fmt.Errorf("%w: no rungs", ErrBadLadder)
	}
	if len(l.Rungs) > maxRungs {
		return fmt.Errorf("%w: %d rungs, want at most %d", ErrBadLadder, len(l.Rungs), maxRungs)
	}
	names := map[string]bool{}
	heights := map[int]bool{}
	for i, r := range l.Rungs {
		switch {
		case r.Height < minHeight || r.Height > maxHeight:
			return fmt.Errorf("%w: rung %d: height %d, want %d to %d", ErrBadLadder, i, r.Height, minHeight, maxHeight)
		case r.Bitrate < minBitrate || r.Bitrate > maxBitrate:
			return fmt.Errorf("%w: rung %d: bitrate %d, want %d to %d bits per second", ErrBadLadder, i, r.Bitrate, minBitrate, maxBitrate)
		case r.MaxRate != 0 && r.MaxRate < r.Bitrate:
			return fmt.Errorf("%w: rung %d: maxrate %d is below bitrate %d", ErrBadLadder, i, r.MaxRate, r.Bitrate)
		case r.BufSize < 0:
			return fmt.Errorf("%w: rung %d: negative bufsize", ErrBadLadder, i)
		case !validName(r.Name):
			return fmt.Errorf("%w: rung %d: name %q, want letters, digits, '-' or '_'", ErrBadLadder, i, r.Name)
		case names[r.Name]:
			return fmt.Errorf("%w: rung %d: duplicate name %q", ErrBadLadder, i, r.Name)
		case heights[r.Height]:
			return fmt.Errorf("%w: rung %d: duplicate height %d", ErrBadLadder, i, r.Height)
		}
		names[r.Name], heights[r.Height] = true, true
	}
	return nil
}

// validName allows the names that are safe as a directory and a URL path
// segment; "download" and audio directory names are reserved.
func validName(s string) bool {
	if s == "" || len(s) > 32 || s == "download" || strings.HasPrefix(s, "audio") || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
