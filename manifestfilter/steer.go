package manifestfilter

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/fillcast/fillcast/steering/contentsteering"
	"github.com/fillcast/fillcast/transcoder/hls"
)

// ErrServerURI is a steering server URI that a manifest cannot
// advertise: not an absolute URL, or holding a quote, a line break or
// another control character.
var ErrServerURI = errors.New("manifestfilter: bad steering server URI")

// ErrOwnPathways is a manifest that names its own locations (every
// variant its own PATHWAY-ID, or top-level BaseURLs): the default pathway
// "." that the steering server's PATHWAY-CLONES copy would not be its
// locations, so it is served without steering.
var ErrOwnPathways = errors.New(`manifestfilter: the manifest names its own pathways or base URLs, not the default pathway "."`)

const tagContentSteering = "#EXT-X-CONTENT-STEERING"

// checkServerURI reports why uri cannot be advertised, if it cannot.
func checkServerURI(uri string) error {
	if !utf8.ValidString(uri) {
		return fmt.Errorf("%w %q: not UTF-8", ErrServerURI, uri)
	}
	for _, r := range uri {
		if r < ' ' || r == 0x7f || r == '"' {
			return fmt.Errorf("%w %q: no quote or control character may appear in it", ErrServerURI, uri)
		}
	}
	if u, err := url.Parse(uri); err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("%w %q: want an absolute URL", ErrServerURI, uri)
	}
	return nil
}

// SteerMaster returns master, a multivariant playlist, advertising the
// Content Steering manifest at serverURI (RFC 8216bis §4.4.6.6) with
//
//	#EXT-X-CONTENT-STEERING:SERVER-URI="{serverURI}",PATHWAY-ID="."
//
// after the header tags (EXTM3U, EXT-X-VERSION,
// EXT-X-INDEPENDENT-SEGMENTS, EXT-X-START, EXT-X-DEFINE), with the
// playlist's own line break. PATHWAY-ID is the pathway a player starts on
// (shaka-player ignores the tag without it): the default pathway "."
// (contentsteering.DefaultBaseID), to which every variant without a
// PATHWAY-ID attribute belongs and which the steering server's
// PATHWAY-CLONES copy with another host, so the variants need no
// attribute. A playlist with the tag already is returned as is: the
// packager's steering wins. It fails with ErrSyntax for what is not a
// playlist, ErrServerURI for a serverURI it cannot carry, and
// ErrOwnPathways when every variant names a pathway other than ".".
func SteerMaster(master []byte, serverURI string) ([]byte, error) {
	if !bytes.HasPrefix(master, []byte("#EXTM3U")) {
		return nil, ErrSyntax
	}
	if err := checkServerURI(serverURI); err != nil {
		return nil, err
	}
	at := -1 // where the tag goes: the first line after the header
	variants, inDefault := 0, 0
	pos := 0
	for rest := master; len(rest) > 0; {
		var line []byte
		line, rest = nextLine(rest)
		text := string(bytes.TrimSpace(line))
		if name, _, _ := strings.Cut(text, ":"); name == tagContentSteering {
			return master, nil
		}
		if strings.HasPrefix(text, tagStreamInf) {
			variants++
			a, err := hls.ParseAttributes(text[len(tagStreamInf):])
			if id := a["PATHWAY-ID"]; err != nil || id == "" || id == contentsteering.DefaultBaseID {
				inDefault++
			}
		}
		if at < 0 && pos > 0 && !headerTag(text) { // the first line is #EXTM3U…
			at = pos
		}
		pos += len(line)
	}
	if variants > 0 && inDefault == 0 {
		return nil, ErrOwnPathways
	}
	eol := "\n"
	if first, _ := nextLine(master); bytes.HasSuffix(first, []byte("\r\n")) {
		eol = "\r\n"
	}
	out := make([]byte, 0, len(master)+len(serverURI)+64)
	if at < 0 { // the header alone
		at = len(master)
	}
	out = append(out, master[:at]...)
	if at > 0 && master[at-1] != '\n' {
		out = append(out, eol...)
	}
	out = append(out, tagContentSteering+`:SERVER-URI="`...)
	out = append(out, serverURI...)
	out = append(out, `",PATHWAY-ID="`+contentsteering.DefaultBaseID+`"`...)
	out = append(out, eol...)
	return append(out, master[at:]...), nil
}

// headerTag reports whether a multivariant playlist's line is one of the
// tags that open it, after which the steering tag goes.
func headerTag(text string) bool {
	name, _, _ := strings.Cut(text, ":")
	switch name {
	case "#EXTM3U", "#EXT-X-VERSION", "#EXT-X-INDEPENDENT-SEGMENTS", "#EXT-X-START", "#EXT-X-DEFINE":
		return true
	}
	return false
}

// baseURLText is the text of the BaseURL SteerMPD adds: the MPD's own
// directory, so that every URL in it resolves as before.
const baseURLText = "./"

// SteerMPD returns mpd advertising the Content Steering manifest at
// serverURI (DASH-IF Content Steering) with two elements of the MPD:
//
//	<BaseURL serviceLocation=".">./</BaseURL>
//	<ContentSteering defaultServiceLocation="." queryBeforeStart="false">{serverURI}</ContentSteering>
//
// the BaseURL first among the children after any ProgramInformation (the
// schema's order), indented like them, and the ContentSteering last. The
// BaseURL, the MPD's own directory, puts the presentation in the service
// location "." that the steering server's PATHWAY-CLONES copy
// (contentsteering.DefaultBaseID), and defaultServiceLocation starts
// players there; queryBeforeStart="false" lets playback start before the
// steering server answers. The servers make the BaseURL absolute per
// request (Variant.BodyFor), as shaka-player needs to clone it. An MPD
// with a ContentSteering element already is returned as is. It fails with
// ErrSyntax for what is not an MPD, ErrServerURI for a serverURI it
// cannot carry, and ErrOwnPathways when the MPD has BaseURLs of its own.
func SteerMPD(mpd []byte, serverURI string) ([]byte, error) {
	out, _, err := steerMPD(mpd, serverURI)
	return out, err
}

// steerMPD is SteerMPD, which also returns where the text of the BaseURL
// it added is in its output (an empty span when it added none).
func steerMPD(data []byte, serverURI string) ([]byte, span, error) {
	if err := checkServerURI(serverURI); err != nil {
		return nil, span{}, err
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	var (
		depth              int
		rootStart, rootEnd int64 = -1, -1 // the root's start tag, and its end tag
		baseAt             int64 = -1     // the first child after ProgramInformation
		ownBase, steered   bool
	)
	for {
		start := d.InputOffset()
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, span{}, ErrSyntax
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case depth == 0 && (rootStart >= 0 || t.Name.Local != "MPD"):
				return nil, span{}, ErrSyntax
			case depth == 0:
				rootStart = start
			case depth == 1:
				switch t.Name.Local {
				case "ContentSteering":
					steered = true
				case "BaseURL":
					ownBase = true
				}
				if baseAt < 0 && t.Name.Local != "ProgramInformation" {
					baseAt = start
				}
			}
			depth++
		case xml.EndElement:
			depth--
			if depth == 0 {
				rootEnd = start
			}
		}
	}
	switch {
	case rootEnd < 0 || !bytes.HasPrefix(data[rootEnd:], []byte("</")):
		return nil, span{}, ErrSyntax // none, or <MPD/>: no Period, no MPD
	case steered:
		return data, span{}, nil
	case ownBase:
		return nil, span{}, ErrOwnPathways
	case baseAt < 0:
		baseAt = rootEnd
	}
	prefix := elementPrefix(data[rootStart:])
	indent, eol, own := lineOf(data, baseAt)
	var out []byte
	out = append(out, data[:baseAt]...)
	out = append(out, '<')
	out = append(out, prefix...)
	out = append(out, `BaseURL serviceLocation="`+contentsteering.DefaultBaseID+`">`...)
	text := span{int64(len(out)), int64(len(out) + len(baseURLText))}
	out = append(out, baseURLText+"</"...)
	out = append(out, prefix...)
	out = append(out, "BaseURL>"...)
	if own && baseAt < rootEnd {
		out = append(out, eol...)
		out = append(out, indent...)
	}
	// ContentSteering goes on a line of its own before the end tag's
	// when the children have lines of their own, else right before it.
	at := rootEnd
	_, _, endOwn := lineOf(data, rootEnd)
	ownLine := endOwn && own && baseAt < rootEnd
	if ownLine {
		at = lineStart(data, rootEnd)
	}
	out = append(out, data[baseAt:at]...)
	if ownLine {
		out = append(out, indent...)
	}
	out = append(out, '<')
	out = append(out, prefix...)
	out = append(out, `ContentSteering defaultServiceLocation="`+contentsteering.DefaultBaseID+`" queryBeforeStart="false">`...)
	xml.EscapeText(appendWriter{&out}, []byte(serverURI))
	out = append(out, "</"...)
	out = append(out, prefix...)
	out = append(out, "ContentSteering>"...)
	if ownLine {
		out = append(out, eol...)
	}
	return append(out, data[at:]...), text, nil
}

// appendWriter is an io.Writer appending to a slice.
type appendWriter struct{ b *[]byte }

func (w appendWriter) Write(p []byte) (int, error) { *w.b = append(*w.b, p...); return len(p), nil }

// elementPrefix returns the namespace prefix with its colon ("mpd:") of
// the start tag tag begins with, or "".
func elementPrefix(tag []byte) []byte {
	end := bytes.IndexAny(tag, " \t\r\n/>")
	if end < 0 {
		return nil
	}
	if i := bytes.IndexByte(tag[:end], ':'); i >= 0 {
		return tag[1 : i+1]
	}
	return nil
}

// lineStart returns the offset of the first blank before at on its line.
func lineStart(data []byte, at int64) int64 {
	for at > 0 && (data[at-1] == ' ' || data[at-1] == '\t') {
		at--
	}
	return at
}

// lineOf tells of the element at offset at whether it starts its line
// (own), the blanks before it there, and the line break before them.
func lineOf(data []byte, at int64) (indent []byte, eol string, own bool) {
	ls := lineStart(data, at)
	if ls == 0 || data[ls-1] != '\n' {
		return nil, "", false
	}
	eol = "\n"
	if ls >= 2 && data[ls-2] == '\r' {
		eol = "\r\n"
	}
	return data[ls:at], eol, true
}
