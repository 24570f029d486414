// Package contentsteering builds the JSON Steering Manifest of HLS Content
// Steering (Apple, draft-pantos-hls-rfc8216bis §4.4.6.6 and the HLS
// Content Steering specification), which DASH-IF Content Steering reuses:
// the body of GET /v1/steering/{title}. Players reload it every TTL and
// move to the next pathway mid-stream when the one they use fails or
// drops in priority, so a dead appliance costs a player one reload at
// most.
//
// Variants without a PATHWAY-ID attribute belong to HLS's default pathway
// "."; by default each appliance becomes a pathway cloned from it
// (PATHWAY-CLONES) whose URI-REPLACEMENT swaps in the appliance's host, so
// the packaged playlists need no steering-specific attributes. Clones keep the scheme and path of the URI they copy,
// and the signed token lives in the path, so one token serves every
// pathway. ServerURI is the manifest's address that the master playlists
// and MPDs served by appliances and the origin advertise (package
// manifestfilter). The package is pure: it formats and does no I/O.
package contentsteering

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fillcast/fillcast/internal/jsonappend"
)

// Version is the steering manifest version this package writes.
const Version = 1

// DefaultTTL is the reload interval used when Manifest.TTL is zero, the
// specification's default.
const DefaultTTL = 300 * time.Second

// DefaultBaseID is the pathway of variants that carry no PATHWAY-ID: the
// one every clone copies unless Manifest.BaseID says otherwise.
const DefaultBaseID = "."

// ErrManifest is wrapped by the errors of Validate and AppendJSON.
var ErrManifest = errors.New("contentsteering: bad manifest")

// Pathway is one entry of the priority list.
type Pathway struct {
	// ID names the pathway: letters, digits, '.', '-' and '_'.
	ID string
	// Host, when set, makes the pathway a clone of the base pathway whose
	// URIs point at this host ("oca1.isp.example" or "10.0.0.7:8080").
	// Empty means the pathway already exists in the playlist.
	Host string
}

// Manifest is a steering manifest before encoding.
type Manifest struct {
	// TTL is how long a player waits before reloading the manifest,
	// rounded up to whole seconds. Zero means DefaultTTL.
	TTL time.Duration
	// ReloadURI is where the next reload goes, absolute or relative to
	// the current manifest's URI. Empty omits it (reload the same URI).
	ReloadURI string
	// BaseID is the pathway clones copy. Empty means DefaultBaseID.
	BaseID string
	// Pathways are ranked best first. At least one is needed.
	Pathways []Pathway
}

// ValidPathwayID reports whether id may name a pathway.
func ValidPathwayID(id string) bool {
	if id == "" {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validHost accepts a host or host:port with nothing a URI-REPLACEMENT
// could not carry: no scheme, path, user, space or control character.
func validHost(h string) bool {
	if h == "" || !utf8.ValidString(h) {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; c <= ' ' || c == 0x7f || strings.IndexByte("/\\?#@\"", c) >= 0 {
			return false
		}
	}
	return true
}

// Validate reports the first problem that would make a player reject or
// misread the manifest.
func (m Manifest) Validate() error {
	if m.TTL < 0 {
		return fmt.Errorf("%w: ttl %v: want a positive duration, or 0 for %v", ErrManifest, m.TTL, DefaultTTL)
	}
	base := m.BaseID
	if base == "" {
		base = DefaultBaseID
	}
	if !ValidPathwayID(base) {
		return fmt.Errorf("%w: base id %q: want letters, digits, '.', '-' or '_'", ErrManifest, base)
	}
	if m.ReloadURI != "" {
		if !utf8.ValidString(m.ReloadURI) {
			return fmt.Errorf("%w: reload uri %q is not UTF-8", ErrManifest, m.ReloadURI)
		}
		if _, err := url.Parse(m.ReloadURI); err != nil {
			return fmt.Errorf("%w: reload uri: %v", ErrManifest, err)
		}
	}
	if len(m.Pathways) == 0 {
		return fmt.Errorf("%w: no pathways: a player needs at least one", ErrManifest)
	}
	for i, p := range m.Pathways {
		if !ValidPathwayID(p.ID) {
			return fmt.Errorf("%w: pathway %d id %q: want letters, digits, '.', '-' or '_'", ErrManifest, i, p.ID)
		}
		for _, q := range m.Pathways[:i] {
			if q.ID == p.ID {
				return fmt.Errorf("%w: pathway %q is listed twice", ErrManifest, p.ID)
			}
		}
		if p.Host == "" {
			continue
		}
		if p.ID == base {
			return fmt.Errorf("%w: pathway %q clones itself: give the clone another id", ErrManifest, p.ID)
		}
		if !validHost(p.Host) {
			return fmt.Errorf("%w: pathway %q host %q: want a host or host:port", ErrManifest, p.ID, p.Host)
		}
	}
	return nil
}

// AppendJSON validates m and appends its JSON encoding to dst:
//
//	{"VERSION":1,"TTL":300,"RELOAD-URI":"...","PATHWAY-PRIORITY":["a","b","."],
//	 "PATHWAY-CLONES":[{"BASE-ID":".","ID":"a","URI-REPLACEMENT":{"HOST":"..."}},...]}
//
// RELOAD-URI and PATHWAY-CLONES are left out when there is nothing to put
// in them.
func (m Manifest) AppendJSON(dst []byte) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return dst, err
	}
	ttl := m.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	secs := int64((ttl + time.Second - 1) / time.Second)
	base := m.BaseID
	if base == "" {
		base = DefaultBaseID
	}
	dst = append(dst, `{"VERSION":`...)
	dst = strconv.AppendInt(dst, Version, 10)
	dst = append(dst, `,"TTL":`...)
	dst = strconv.AppendInt(dst, secs, 10)
	if m.ReloadURI != "" {
		dst = append(dst, `,"RELOAD-URI":`...)
		dst = jsonappend.String(dst, m.ReloadURI)
	}
	dst = append(dst, `,"PATHWAY-PRIORITY":[`...)
	for i, p := range m.Pathways {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonappend.String(dst, p.ID)
	}
	dst = append(dst, ']')
	clones := 0
	for _, p := range m.Pathways {
		if p.Host == "" {
			continue
		}
		if clones == 0 {
			dst = append(dst, `,"PATHWAY-CLONES":[`...)
		} else {
			dst = append(dst, ',')
		}
		clones++
		dst = append(dst, `{"BASE-ID":`...)
		dst = jsonappend.String(dst, base)
		dst = append(dst, `,"ID":`...)
		dst = jsonappend.String(dst, p.ID)
		dst = append(dst, `,"URI-REPLACEMENT":{"HOST":`...)
		dst = jsonappend.String(dst, p.Host)
		dst = append(dst, `}}`...)
	}
	if clones > 0 {
		dst = append(dst, ']')
	}
	return append(dst, '}'), nil
}
