package targets

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/fillcast/fillcast/transcoder/hls"
)

// maxPlaylistBytes caps the body of a playlist Generate reads: a
// two-hour film in 2 s segments is a rendition playlist of a few hundred
// kB, so a larger body is not a playlist of ours.
const maxPlaylistBytes = 8 << 20

// errNotFound marks a playlist the appliance answers 404 for.
var errNotFound = errors.New("not found")

// rendition is what a session plays of one rendition, each path relative
// to the title's base URL (".../c/{token}/{title}/"), so that the DASH
// sessions, whose base carries another token, fetch the same CMAF
// objects.
type rendition struct {
	playlist string   // the HLS media playlist, e.g. "720p/playlist.m3u8"
	init     string   // the init segment (EXT-X-MAP); "" without one
	segments []string // the media segments, in the playlist's order
}

// playlists reads a title's playlists from an appliance, as a player
// reads them.
type playlists struct {
	hc      *http.Client
	timeout time.Duration // of each request
}

// renditions reads the HLS master playlist at base+"master.m3u8", then
// each rendition playlist it lists (variants and EXT-X-MEDIA renditions,
// each once), and answers the renditions that list segments, by playlist
// path. A master playlist the appliance does not have (404: a title
// without HLS, a download only) answers none; a playlist that cannot be
// read or parsed, or a URI outside base, is an error naming its URL.
func (p playlists) renditions(ctx context.Context, base string) ([]rendition, error) {
	baseURL, err := url.Parse(base)
	if err != nil || !baseURL.IsAbs() || !strings.HasSuffix(baseURL.Path, "/") {
		return nil, fmt.Errorf("targets: playback URL base %q: want an absolute URL of a title's directory", base)
	}
	body, at, err := p.get(ctx, base+"master.m3u8")
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	lists, err := masterURIs(body, at)
	if err != nil {
		return nil, err
	}
	var out []rendition
	for _, u := range lists {
		var r rendition
		if r.playlist, err = within(baseURL, at, u); err != nil {
			return nil, err
		}
		body, at, err := p.get(ctx, u.String())
		if err != nil {
			return nil, err
		}
		init, segs, err := mediaURIs(body, at)
		if err != nil {
			return nil, err
		}
		if init != nil {
			if r.init, err = within(baseURL, at, init); err != nil {
				return nil, err
			}
		}
		for _, s := range segs {
			rel, err := within(baseURL, at, s)
			if err != nil {
				return nil, err
			}
			r.segments = append(r.segments, rel)
		}
		if len(r.segments) > 0 {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b rendition) int { return cmp.Compare(a.playlist, b.playlist) })
	return out, nil
}

// get reads the playlist at u and answers it with the URL it came from
// (after redirects, which relative URIs resolve against). A 404 wraps
// errNotFound.
func (p playlists) get(ctx context.Context, u string) ([]byte, *url.URL, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("targets: GET %s: %w", u, err)
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("targets: %w", err) // a *url.Error names u
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, nil, fmt.Errorf("targets: GET %s: %w", u, errNotFound)
	case resp.StatusCode != http.StatusOK:
		return nil, nil, fmt.Errorf("targets: GET %s: %s", u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPlaylistBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("targets: GET %s: read the playlist: %w", u, err)
	}
	if len(body) > maxPlaylistBytes {
		return nil, nil, fmt.Errorf("targets: GET %s: more than %d bytes: not a playlist", u, maxPlaylistBytes)
	}
	return body, resp.Request.URL, nil
}

// masterURIs parses a master (multivariant) playlist read from at and
// answers the rendition playlists it lists, audio (EXT-X-MEDIA URI=)
// and variants (the URI line after EXT-X-STREAM-INF), resolved against
// at, each once.
func masterURIs(data []byte, at *url.URL) ([]*url.URL, error) {
	m, err := hls.ParseMaster(data)
	if err != nil {
		return nil, fmt.Errorf("targets: %s: %w", at, err)
	}
	var refs []string
	for _, a := range m.Audio {
		if a.URI != "" { // no URI: the audio is in the variants' segments
			refs = append(refs, a.URI)
		}
	}
	for _, v := range m.Variants {
		refs = append(refs, v.URI)
	}
	var out []*url.URL
	seen := map[string]bool{}
	for _, ref := range refs {
		u, err := resolve(at, ref)
		if err != nil {
			return nil, err
		}
		if !seen[u.String()] {
			seen[u.String()] = true
			out = append(out, u)
		}
	}
	return out, nil
}

// mediaURIs parses a media (rendition) playlist read from at and answers
// its init segment (EXT-X-MAP URI=; nil without one) and its media
// segments in order, resolved against at.
func mediaURIs(data []byte, at *url.URL) (init *url.URL, segs []*url.URL, err error) {
	m, err := hls.ParseMedia(data)
	if err != nil {
		return nil, nil, fmt.Errorf("targets: %s: %w", at, err)
	}
	if m.MapURI != "" {
		if init, err = resolve(at, m.MapURI); err != nil {
			return nil, nil, err
		}
	}
	for _, s := range m.Segments {
		u, err := resolve(at, s.URI)
		if err != nil {
			return nil, nil, err
		}
		segs = append(segs, u)
	}
	return init, segs, nil
}

// resolve resolves ref, a URI of the playlist read from at, as a player
// does (RFC 3986 section 5), without its fragment.
func resolve(at *url.URL, ref string) (*url.URL, error) {
	r, err := url.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("targets: %s: URI %q: %w", at, ref, err)
	}
	u := at.ResolveReference(r)
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// within answers u, listed by the playlist at, as a path (and query)
// relative to base, a title's directory; u outside it is an error: the
// list's requests are the appliance's, under the playback call's token.
func within(base, at, u *url.URL) (string, error) {
	rel, ok := relative(base, u)
	if !ok {
		return "", fmt.Errorf("targets: %s lists %s, outside the title's directory %s: want the appliance's own objects", at, u, base)
	}
	return rel, nil
}

// relative answers u as a path (and query) relative to base, a URL
// ending in "/", such that base + the answer is u, and whether u is
// an object under base at all.
func relative(base, u *url.URL) (string, bool) {
	if u.Scheme != base.Scheme || !strings.EqualFold(u.Host, base.Host) || u.User.String() != base.User.String() || u.Opaque != "" {
		return "", false
	}
	p, bp := u.EscapedPath(), base.EscapedPath()
	if len(p) <= len(bp) || !strings.HasPrefix(p, bp) {
		return "", false
	}
	rel := p[len(bp):]
	if u.RawQuery != "" {
		rel += "?" + u.RawQuery
	}
	return rel, true
}
