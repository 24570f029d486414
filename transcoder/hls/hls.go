// Package hls writes and reads the HLS playlists of a packaged title: one
// multivariant (master) playlist with an audio group, and one VOD media
// playlist per rendition pointing at CMAF (fMP4) segments through
// EXT-X-MAP. The reader exists so the transcoder can check what it wrote
// and so tests can check what players will see; it understands the tags
// Fillcast writes, not all of RFC 8216.
package hls

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrSyntax marks a playlist that does not parse.
var ErrSyntax = errors.New("hls: bad playlist")

// Version is the EXT-X-VERSION written: 7 covers EXT-X-MAP in playlists
// without I-frames only and the fMP4 segments (RFC 8216 section 7).
const Version = 7

// Segment is one media segment of a media playlist.
type Segment struct {
	// URI is relative to the playlist.
	URI string
	// Duration is in seconds.
	Duration float64
}

// Media is a VOD media playlist.
type Media struct {
	// TargetDuration is EXT-X-TARGETDURATION; Encode computes it from the
	// segments when zero.
	TargetDuration int
	// MapURI is the init segment (EXT-X-MAP).
	MapURI string
	// Segments in order; the first has media sequence 1.
	Segments []Segment
	// Ended reports EXT-X-ENDLIST (always written by Encode).
	Ended bool
	// Independent reports EXT-X-INDEPENDENT-SEGMENTS.
	Independent bool
}

// Encode renders m as a VOD playlist with EXT-X-ENDLIST.
func (m Media) Encode() []byte {
	target := m.TargetDuration
	if target == 0 {
		for _, s := range m.Segments {
			// RFC 8216 4.3.3.1: each EXTINF rounded to the nearest
			// integer must not exceed the target.
			target = max(target, int(math.Round(s.Duration)))
		}
		target = max(target, 1)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:%d\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-PLAYLIST-TYPE:VOD\n", Version, target)
	if m.Independent {
		b.WriteString("#EXT-X-INDEPENDENT-SEGMENTS\n")
	}
	fmt.Fprintf(&b, "#EXT-X-MAP:URI=%s\n", quoted(m.MapURI))
	for _, s := range m.Segments {
		fmt.Fprintf(&b, "#EXTINF:%.6f,\n%s\n", s.Duration, s.URI)
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	return b.Bytes()
}

// ParseMedia reads a media playlist.
func ParseMedia(data []byte) (Media, error) {
	var m Media
	lines, err := splitLines(data)
	if err != nil {
		return Media{}, err
	}
	var pending *float64
	for i, l := range lines {
		tag, value, _ := strings.Cut(l, ":")
		switch {
		case tag == "#EXT-X-TARGETDURATION":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 {
				return Media{}, fmt.Errorf("%w: line %d: bad target duration %q", ErrSyntax, i+1, value)
			}
			m.TargetDuration = n
		case tag == "#EXT-X-MAP":
			attrs, err := ParseAttributes(value)
			if err != nil {
				return Media{}, fmt.Errorf("%w: line %d: %v", ErrSyntax, i+1, err)
			}
			m.MapURI = attrs["URI"]
		case tag == "#EXTINF":
			d, _, _ := strings.Cut(value, ",")
			f, err := strconv.ParseFloat(d, 64)
			if err != nil || f < 0 || math.IsInf(f, 0) {
				return Media{}, fmt.Errorf("%w: line %d: bad EXTINF %q", ErrSyntax, i+1, value)
			}
			pending = &f
		case tag == "#EXT-X-ENDLIST":
			m.Ended = true
		case tag == "#EXT-X-INDEPENDENT-SEGMENTS":
			m.Independent = true
		case tag == "#EXT-X-STREAM-INF" || tag == "#EXT-X-MEDIA":
			return Media{}, fmt.Errorf("%w: line %d: multivariant tag in a media playlist", ErrSyntax, i+1)
		case strings.HasPrefix(l, "#"):
		default:
			if pending == nil {
				return Media{}, fmt.Errorf("%w: line %d: URI without EXTINF", ErrSyntax, i+1)
			}
			m.Segments = append(m.Segments, Segment{URI: l, Duration: *pending})
			pending = nil
		}
	}
	if pending != nil {
		return Media{}, fmt.Errorf("%w: EXTINF without URI at the end", ErrSyntax)
	}
	return m, nil
}

// splitLines checks the #EXTM3U header and returns the non-blank lines
// after it.
func splitLines(data []byte) ([]string, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	var lines []string
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	if len(lines) == 0 || lines[0] != "#EXTM3U" {
		return nil, fmt.Errorf("%w: missing #EXTM3U", ErrSyntax)
	}
	return lines[1:], nil
}

// quoted renders s as an HLS quoted-string, which cannot hold a double
// quote or a line break (RFC 8216 4.2): those are dropped.
func quoted(s string) string {
	return `"` + strings.Map(func(r rune) rune {
		if r == '"' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s) + `"`
}

// ParseAttributes parses an attribute list (RFC 8216 4.2):
// NAME=VALUE pairs separated by commas, where a value may be a quoted
// string containing commas. Quotes are removed from quoted values.
func ParseAttributes(s string) (map[string]string, error) {
	out := map[string]string{}
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("attribute without a value in %q", s)
		}
		name := strings.TrimSpace(s[:eq])
		s = s[eq+1:]
		var value string
		if strings.HasPrefix(s, `"`) {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("unterminated quoted string for %s", name)
			}
			value, s = s[1:1+end], s[end+2:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			value, s = strings.TrimSpace(s[:end]), s[end:]
			if strings.ContainsRune(value, '"') {
				return nil, fmt.Errorf("stray quote in %s", name)
			}
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("duplicate attribute %s", name)
		}
		out[name] = value
		if len(s) > 0 {
			if s[0] != ',' {
				return nil, fmt.Errorf("want ',' after %s", name)
			}
			s = s[1:]
		}
	}
	return out, nil
}
