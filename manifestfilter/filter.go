// Package manifestfilter rewrites a title's HLS multivariant playlist and
// DASH MPD for the players they are served to. For a playback token with
// a maximum height (auth.Limits) the video renditions taller than the
// limit are left out, so that a player never picks one whose files the
// appliance or the origin would refuse; and the manifests advertise the
// control plane's Content Steering manifest (EXT-X-CONTENT-STEERING, a
// DASH ContentSteering element), so that any standard player follows
// steering while it plays. ("Manifest" is HLS's and DASH's word here, not
// the control plane's fill manifest.) It cuts entries out of and adds
// them to the bytes as written and keeps everything else verbatim, and
// its Cache keeps what it made, so a title is rewritten once per limit,
// steering URL and version, not once per request. The appliance
// (appliance/server) and the origin both serve players' manifests
// through it; the rule for every other file is auth.Limits.Allows.
package manifestfilter

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/fillcast/fillcast/transcoder/hls"
)

// The manifests of a packaged title (docs/design.md §6.3), at the top of
// its directory.
const (
	MasterName = "master.m3u8"
	MPDName    = "manifest.mpd"
)

// ErrNothingLeft is returned when the limit leaves out every video
// rendition a manifest lists: the token opens nothing of the title, and
// the caller answers 403.
var ErrNothingLeft = errors.New("manifestfilter: no video rendition within the limit")

// ErrSyntax marks a manifest that cannot be filtered.
var ErrSyntax = errors.New("manifestfilter: bad manifest")

// Applies reports whether object, a path inside a title, is one of the
// manifests Filter rewrites.
func Applies(object string) bool { return object == MasterName || object == MPDName }

// Filter returns data, the title's manifest named object (Applies), with
// the video renditions taller than maxHeight left out; data itself when
// maxHeight is 0 or object is not a manifest.
func Filter(object string, data []byte, maxHeight int) ([]byte, error) {
	if maxHeight <= 0 {
		return data, nil
	}
	switch object {
	case MasterName:
		return Master(data, maxHeight)
	case MPDName:
		return MPD(data, maxHeight)
	}
	return data, nil
}

const (
	tagStreamInf = "#EXT-X-STREAM-INF:"
	tagIFrameInf = "#EXT-X-I-FRAME-STREAM-INF:"
	tagMedia     = "#EXT-X-MEDIA:"
)

// Master returns a multivariant playlist without the EXT-X-STREAM-INF
// entries (the tag and its URI line) and EXT-X-I-FRAME-STREAM-INF tags
// whose RESOLUTION is taller than maxHeight. An entry whose attributes do
// not parse is left out too, as is an I-frame entry without a RESOLUTION;
// a variant without one (audio only) stays. It fails with ErrNothingLeft
// when it left out variants and none remains.
func Master(data []byte, maxHeight int) ([]byte, error) {
	if !bytes.HasPrefix(data, []byte("#EXTM3U")) {
		return nil, ErrSyntax
	}
	out := make([]byte, 0, len(data))
	kept, dropped := 0, 0
	dropURI := false // the URI line of a variant left out is next
	for rest := data; len(rest) > 0; {
		var line []byte
		line, rest = nextLine(rest)
		text := string(bytes.TrimSpace(line))
		switch {
		case strings.HasPrefix(text, tagStreamInf):
			dropURI = false
			if !within(text[len(tagStreamInf):], maxHeight, true) {
				dropped++
				dropURI = true
				continue
			}
			kept++
		case strings.HasPrefix(text, tagIFrameInf):
			if !within(text[len(tagIFrameInf):], maxHeight, false) {
				continue
			}
		case dropURI && text != "" && text[0] != '#':
			dropURI = false
			continue
		}
		out = append(out, line...)
	}
	if dropped > 0 && kept == 0 {
		return nil, ErrNothingLeft
	}
	return out, nil
}

// nextLine splits off the first line of b, with its line break.
func nextLine(b []byte) (line, rest []byte) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i+1], b[i+1:]
	}
	return b, nil
}

// within reports whether the entry with attribute list attrs is no taller
// than maxHeight; one without a RESOLUTION is within when noResolution.
func within(attrs string, maxHeight int, noResolution bool) bool {
	a, err := hls.ParseAttributes(attrs)
	if err != nil {
		return false
	}
	res, ok := a["RESOLUTION"]
	if !ok {
		return noResolution
	}
	h, ok := resolutionHeight(res)
	return ok && h <= maxHeight
}

// resolutionHeight parses the height of an HLS RESOLUTION, "1280x720".
func resolutionHeight(res string) (int, bool) {
	w, h, ok := strings.Cut(res, "x")
	if !ok {
		return 0, false
	}
	wn, err1 := strconv.Atoi(w)
	hn, err2 := strconv.Atoi(h)
	if err1 != nil || err2 != nil || wn < 0 || hn < 0 {
		return 0, false
	}
	return hn, true
}

// Heights reads the rendition directories of a title from its
// multivariant playlist: the first path segment of each variant's URI
// (and each I-frame variant's) maps to its RESOLUTION height, that of
// each audio or subtitle rendition (EXT-X-MEDIA) to 0. A directory named
// with two heights gets the taller; variants without a RESOLUTION, video
// EXT-X-MEDIA renditions and absolute URIs are not counted, so a
// restricted token is refused their files. The origin, which has no
// catalog, learns a title's heights so.
func Heights(master []byte) map[string]int {
	out := map[string]int{}
	set := func(uri string, h int) {
		dir, _, ok := strings.Cut(uri, "/")
		if !ok || dir == "" || strings.ContainsAny(dir, ":?#") {
			return
		}
		if old, seen := out[dir]; !seen || h > old {
			out[dir] = h
		}
	}
	pending := -1 // the height of the variant whose URI is next
	for rest := master; len(rest) > 0; {
		var line []byte
		line, rest = nextLine(rest)
		text := string(bytes.TrimSpace(line))
		switch {
		case strings.HasPrefix(text, tagStreamInf):
			pending = -1
			if a, err := hls.ParseAttributes(text[len(tagStreamInf):]); err == nil {
				if h, ok := resolutionHeight(a["RESOLUTION"]); ok {
					pending = h
				}
			}
		case strings.HasPrefix(text, tagIFrameInf):
			if a, err := hls.ParseAttributes(text[len(tagIFrameInf):]); err == nil {
				if h, ok := resolutionHeight(a["RESOLUTION"]); ok {
					set(a["URI"], h)
				}
			}
		case strings.HasPrefix(text, tagMedia):
			if a, err := hls.ParseAttributes(text[len(tagMedia):]); err == nil && (a["TYPE"] == "AUDIO" || a["TYPE"] == "SUBTITLES") {
				set(a["URI"], 0)
			}
		case text == "" || text[0] == '#':
		default:
			if pending >= 0 {
				set(text, pending)
			}
			pending = -1
		}
	}
	return out
}

// span is a byte range [start, end) of a manifest.
type span struct{ start, end int64 }

// element is an AdaptationSet or a Representation being read.
type element struct {
	start                   int64 // offset of its start tag
	depth                   int
	contentType, mime, high string // its attributes of those names (high: height)
	video, kept             int    // of a set: its video representations, and those kept
	cuts                    []span // of a set: the representations left out
}

// MPD returns an MPD without the video Representation elements taller
// than maxHeight, and without a video AdaptationSet all of whose
// representations are so. A representation is video when its mimeType,
// or its set's contentType or mimeType, says so, or when none says what it
// is and it has a height; a video representation without a height (its
// own or its set's) is left out. It fails with ErrNothingLeft when it
// left out representations and no video one remains.
func MPD(data []byte, maxHeight int) ([]byte, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	var (
		depth         int
		set, rep      *element
		cuts          []span
		kept, dropped int
	)
	for {
		start := d.InputOffset()
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, ErrSyntax
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case t.Name.Local == "AdaptationSet" && set == nil:
				set = &element{start: start, depth: depth}
				set.contentType, set.mime, set.high = attr(t, "contentType"), attr(t, "mimeType"), attr(t, "height")
			case t.Name.Local == "Representation" && rep == nil:
				rep = &element{start: start, depth: depth, mime: attr(t, "mimeType"), high: attr(t, "height")}
			}
			depth++
		case xml.EndElement:
			depth--
			switch {
			case rep != nil && depth == rep.depth:
				if keep, video := judge(rep, set, maxHeight); video {
					c := span{rep.start, d.InputOffset()}
					if keep {
						kept++
					} else {
						dropped++
					}
					switch {
					case set != nil:
						set.video++
						if keep {
							set.kept++
						} else {
							set.cuts = append(set.cuts, c)
						}
					case !keep: // outside any set, which the schema does not allow
						cuts = append(cuts, c)
					}
				}
				rep = nil
			case set != nil && depth == set.depth:
				if set.video > 0 && set.kept == 0 {
					cuts = append(cuts, span{set.start, d.InputOffset()})
				} else {
					cuts = append(cuts, set.cuts...)
				}
				set = nil
			}
		}
	}
	if dropped > 0 && kept == 0 {
		return nil, ErrNothingLeft
	}
	return cut(data, cuts), nil
}

// judge says whether a representation is video and, if so, whether it
// stays. set may be nil.
func judge(rep, set *element, maxHeight int) (keep, video bool) {
	kind := majorType(rep.mime)
	high := rep.high
	if set != nil {
		if kind == "" {
			kind = set.contentType
		}
		if kind == "" {
			kind = majorType(set.mime)
		}
		if high == "" {
			high = set.high
		}
	}
	if kind != "video" && (kind != "" || high == "") {
		return true, false
	}
	h, err := strconv.Atoi(high)
	return err == nil && h >= 0 && h <= maxHeight, true
}

// majorType is "video" of "video/mp4".
func majorType(mime string) string {
	t, _, _ := strings.Cut(mime, "/")
	return t
}

// attr returns the value of the attribute named local of e, or "".
func attr(e xml.StartElement, local string) string {
	for _, a := range e.Attr {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// cut returns data without the spans, which are in order and do not
// overlap. A span alone on its lines takes the lines with it.
func cut(data []byte, spans []span) []byte {
	out := make([]byte, 0, len(data))
	var from int64
	for _, s := range spans {
		start, end := s.start, s.end
		ls := start
		for ls > from && (data[ls-1] == ' ' || data[ls-1] == '\t') {
			ls--
		}
		le := end
		for le < int64(len(data)) && (data[le] == ' ' || data[le] == '\t' || data[le] == '\r') {
			le++
		}
		if (ls == 0 || data[ls-1] == '\n') && le < int64(len(data)) && data[le] == '\n' {
			start, end = ls, le+1
		}
		out = append(out, data[from:start]...)
		from = end
	}
	return append(out, data[from:]...)
}
