// Package dash writes and reads the static MPEG-DASH manifest (MPD) of a
// packaged title. Every representation uses a SegmentTemplate with a
// SegmentTimeline over the same CMAF init and media segments the HLS
// playlists list, so one set of files serves both protocols. The reader
// covers what Fillcast writes, for verification and tests.
package dash

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrSyntax marks a manifest that does not parse.
var ErrSyntax = errors.New("dash: bad manifest")

// Namespace is the MPD schema namespace.
const Namespace = "urn:mpeg:dash:schema:mpd:2011"

// Template strings shared by every representation: the directory is the
// representation id, as in the HLS layout.
const (
	InitTemplate  = "$RepresentationID$/init.mp4"
	MediaTemplate = "$RepresentationID$/seg-$Number%05d$.m4s"
)

// MPD is the root element. Here and in the types below, fields mirror the
// MPD schema's attributes and elements of the same names (ISO/IEC
// 23009-1), so they carry no comments of their own.
type MPD struct {
	XMLName                   xml.Name `xml:"urn:mpeg:dash:schema:mpd:2011 MPD"`
	Profiles                  string   `xml:"profiles,attr"`
	Type                      string   `xml:"type,attr"`
	MediaPresentationDuration string   `xml:"mediaPresentationDuration,attr"`
	MinBufferTime             string   `xml:"minBufferTime,attr"`
	Periods                   []Period `xml:"Period"`
}

// Period is one period; Fillcast writes exactly one.
type Period struct {
	ID             string          `xml:"id,attr,omitempty"`
	Start          string          `xml:"start,attr,omitempty"`
	AdaptationSets []AdaptationSet `xml:"AdaptationSet"`
}

// AdaptationSet groups switchable representations.
type AdaptationSet struct {
	ID               int              `xml:"id,attr"`
	ContentType      string           `xml:"contentType,attr"`
	MimeType         string           `xml:"mimeType,attr"`
	Lang             string           `xml:"lang,attr,omitempty"`
	SegmentAlignment bool             `xml:"segmentAlignment,attr"`
	StartWithSAP     int              `xml:"startWithSAP,attr,omitempty"`
	MaxWidth         int              `xml:"maxWidth,attr,omitempty"`
	MaxHeight        int              `xml:"maxHeight,attr,omitempty"`
	MaxFrameRate     string           `xml:"maxFrameRate,attr,omitempty"`
	Par              string           `xml:"par,attr,omitempty"`
	Roles            []Descriptor     `xml:"Role"`
	Labels           []string         `xml:"Label"`
	Representations  []Representation `xml:"Representation"`
}

// Descriptor is a scheme/value pair such as Role or
// AudioChannelConfiguration.
type Descriptor struct {
	SchemeIDURI string `xml:"schemeIdUri,attr"`
	Value       string `xml:"value,attr"`
}

// Representation is one rendition.
type Representation struct {
	ID                        string           `xml:"id,attr"`
	Bandwidth                 int              `xml:"bandwidth,attr"`
	Codecs                    string           `xml:"codecs,attr"`
	Width                     int              `xml:"width,attr,omitempty"`
	Height                    int              `xml:"height,attr,omitempty"`
	FrameRate                 string           `xml:"frameRate,attr,omitempty"`
	Sar                       string           `xml:"sar,attr,omitempty"`
	AudioSamplingRate         int              `xml:"audioSamplingRate,attr,omitempty"`
	AudioChannelConfiguration []Descriptor     `xml:"AudioChannelConfiguration"`
	SegmentTemplate           *SegmentTemplate `xml:"SegmentTemplate"`
}

// SegmentTemplate addresses segments by number with an explicit timeline.
type SegmentTemplate struct {
	Timescale      uint32    `xml:"timescale,attr"`
	Initialization string    `xml:"initialization,attr"`
	Media          string    `xml:"media,attr"`
	StartNumber    int       `xml:"startNumber,attr"`
	Timeline       *Timeline `xml:"SegmentTimeline"`
}

// Timeline is a SegmentTimeline.
type Timeline struct {
	S []S `xml:"S"`
}

// S is one run of equal-duration segments: start t (only when not
// contiguous), duration d and r repeats after the first.
type S struct {
	T *uint64 `xml:"t,attr"`
	D uint64  `xml:"d,attr"`
	R int     `xml:"r,attr,omitempty"`
}

// NewTimeline run-length encodes contiguous segment durations starting at
// start.
func NewTimeline(start uint64, durations []uint64) *Timeline {
	tl := &Timeline{}
	for i, d := range durations {
		if n := len(tl.S); n > 0 && tl.S[n-1].D == d {
			tl.S[n-1].R++
			continue
		}
		s := S{D: d}
		if i == 0 {
			t := start
			s.T = &t
		}
		tl.S = append(tl.S, s)
	}
	return tl
}

// maxSegments bounds Expand so a hostile r cannot exhaust memory.
const maxSegments = 1 << 20

// Expand returns the start time and duration of every segment.
func (tl *Timeline) Expand() (starts, durations []uint64, err error) {
	var t uint64
	for i, s := range tl.S {
		if s.T != nil {
			if i > 0 && *s.T < t {
				return nil, nil, fmt.Errorf("%w: S %d starts at %d, before %d", ErrSyntax, i, *s.T, t)
			}
			t = *s.T
		}
		if s.D == 0 || s.R < 0 {
			return nil, nil, fmt.Errorf("%w: S %d has d=%d r=%d", ErrSyntax, i, s.D, s.R)
		}
		if len(durations)+s.R+1 > maxSegments {
			return nil, nil, fmt.Errorf("%w: more than %d segments", ErrSyntax, maxSegments)
		}
		for k := 0; k <= s.R; k++ {
			starts = append(starts, t)
			durations = append(durations, s.D)
			t += s.D
		}
	}
	return starts, durations, nil
}

// Encode renders m with an XML header.
func (m *MPD) Encode() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("dash: encode: %w", err)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// Parse reads an MPD.
func Parse(data []byte) (*MPD, error) {
	var m MPD
	if err := xml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	if m.Type != "static" && m.Type != "dynamic" {
		return nil, fmt.Errorf("%w: type %q", ErrSyntax, m.Type)
	}
	if len(m.Periods) == 0 {
		return nil, fmt.Errorf("%w: no Period", ErrSyntax)
	}
	return &m, nil
}

// ExpandTemplate fills $RepresentationID$, $Number$ (with an optional
// printf width such as %05d) and $$ in a SegmentTemplate string.
func ExpandTemplate(tmpl, id string, number int) (string, error) {
	var b strings.Builder
	for {
		i := strings.IndexByte(tmpl, '$')
		if i < 0 {
			b.WriteString(tmpl)
			return b.String(), nil
		}
		b.WriteString(tmpl[:i])
		rest := tmpl[i+1:]
		j := strings.IndexByte(rest, '$')
		if j < 0 {
			return "", fmt.Errorf("%w: unterminated $ in %q", ErrSyntax, tmpl)
		}
		ident := rest[:j]
		tmpl = rest[j+1:]
		name, format, _ := strings.Cut(ident, "%")
		switch name {
		case "":
			b.WriteByte('$')
		case "RepresentationID":
			b.WriteString(id)
		case "Number":
			s := strconv.Itoa(number)
			if format != "" {
				w, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(format, "0"), "d"))
				if err != nil || !strings.HasSuffix(format, "d") || w < 0 || w > 16 {
					return "", fmt.Errorf("%w: bad format %q", ErrSyntax, format)
				}
				for len(s) < w {
					s = "0" + s
				}
			}
			b.WriteString(s)
		default:
			return "", fmt.Errorf("%w: unsupported identifier $%s$", ErrSyntax, ident)
		}
	}
}

// FormatDuration writes seconds as an xs:duration such as "PT20.000S".
func FormatDuration(sec float64) string {
	return "PT" + strconv.FormatFloat(math.Max(sec, 0), 'f', 3, 64) + "S"
}

// ParseDuration reads the xs:duration forms used in MPDs: PT[nH][nM][n.nS]
// with an optional nD day part.
func ParseDuration(s string) (float64, error) {
	rest, ok := strings.CutPrefix(s, "P")
	if !ok {
		return 0, fmt.Errorf("%w: duration %q", ErrSyntax, s)
	}
	total := 0.0
	inTime := false
	units := map[bool]map[byte]float64{false: {'D': 86400}, true: {'H': 3600, 'M': 60, 'S': 1}}
	for len(rest) > 0 {
		if rest[0] == 'T' && !inTime {
			inTime, rest = true, rest[1:]
			continue
		}
		i := strings.IndexAny(rest, "DHMS")
		if i <= 0 {
			return 0, fmt.Errorf("%w: duration %q", ErrSyntax, s)
		}
		mult, ok := units[inTime][rest[i]]
		n, err := strconv.ParseFloat(rest[:i], 64)
		if !ok || err != nil || n < 0 || math.IsInf(n, 0) || math.IsNaN(n) {
			return 0, fmt.Errorf("%w: duration %q", ErrSyntax, s)
		}
		total += n * mult
		rest = rest[i+1:]
	}
	return total, nil
}
