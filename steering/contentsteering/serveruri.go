package contentsteering

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// The protocols a steering manifest is asked for with, the protocol
// query parameter of GET /v1/steering/{title}.
const (
	ProtocolHLS  = "hls"
	ProtocolDASH = "dash"
)

// ErrBaseURL is wrapped by the errors of ValidateBaseURL.
var ErrBaseURL = errors.New("contentsteering: bad steering base URL")

// ValidateBaseURL reports whether base, the public URL of the control
// plane ("https://cp.example.net"), can prefix the steering server URIs
// that master playlists and MPDs advertise (ServerURI): an absolute http
// or https URL with a host, without user, query or fragment, and in
// printable ASCII without the characters an HLS quoted-string or XML text
// would need escaped (percent-encode them).
func ValidateBaseURL(base string) error {
	for i := 0; i < len(base); i++ {
		if c := base[i]; c <= ' ' || c >= 0x7f || strings.IndexByte("\"'<>&\\", c) >= 0 {
			return fmt.Errorf("%w %q: byte %q at %d: want printable ASCII without quotes, <, >, & or \\ (percent-encode them)", ErrBaseURL, base, c, i)
		}
	}
	u, err := url.Parse(base)
	switch {
	case err != nil:
		return fmt.Errorf("%w %q: %v", ErrBaseURL, base, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%w %q: want an http:// or https:// URL players can reach the control plane at", ErrBaseURL, base)
	case u.Host == "":
		return fmt.Errorf("%w %q: no host", ErrBaseURL, base)
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(base, "#"):
		return fmt.Errorf("%w %q: want no user, query or fragment", ErrBaseURL, base)
	}
	return nil
}

// ServerURI returns the absolute URI of title's steering manifest for
// protocol (ProtocolHLS or ProtocolDASH) at the control plane whose public
// URL is base (ValidateBaseURL; a trailing slash is dropped):
// {base}/v1/steering/{title}?protocol={protocol}, the route that answers
// the manifest and the steering_url of the playback answer.
func ServerURI(base, title, protocol string) string {
	return strings.TrimRight(base, "/") + "/v1/steering/" + url.PathEscape(title) + "?protocol=" + url.QueryEscape(protocol)
}
