package auth

import (
	"fmt"
	"strconv"
	"strings"
)

// Limits are what a playback token allows beyond its title: zero values
// mean unrestricted, so the zero Limits is the token of old, and fill
// passes carry none. A viewer's plan sets them (basic: 480 and no
// downloads); appliances and the origin enforce them where the bytes are,
// through Allows and the manifest filter, so editing a URL gains nothing.
type Limits struct {
	// MaxHeight is the tallest video rendition, in pixels, the token
	// opens: taller renditions' segments, playlists and downloads are
	// refused and left out of the title's master playlist and MPD. Zero:
	// any height. At most MaxLimitHeight.
	MaxHeight int
	// NoDownloads refuses everything under download/, the progressive
	// MP4s for offline viewing.
	NoDownloads bool
}

// MaxLimitHeight bounds Limits.MaxHeight: five digits in a token.
const MaxLimitHeight = 99999

// maxLimitsLen is the longest limits field of a token, "h99999n".
const maxLimitsLen = 1 + 5 + 1

// Limits field letters: neither is a hex digit, so a token's limits field
// never reads as a client prefix (which starts with one).
const (
	limitHeight      = 'h'
	limitNoDownloads = 'n'
)

// DownloadDir is the directory of a title's progressive downloads,
// named "{height}p.mp4" (docs/design.md §6.3).
const DownloadDir = "download"

// IsZero reports whether l restricts nothing.
func (l Limits) IsZero() bool { return l == Limits{} }

func (l Limits) validate() error {
	if l.MaxHeight < 0 || l.MaxHeight > MaxLimitHeight {
		return fmt.Errorf("auth: sign: limits: MaxHeight %d: want 0 (any height) to %d", l.MaxHeight, MaxLimitHeight)
	}
	return nil
}

// appendLimits appends the token field of l: 'h' and the height in
// decimal when there is a maximum, then 'n' for no downloads; nothing for
// the zero Limits, whose tokens have no limits field.
func appendLimits(b []byte, l Limits) []byte {
	if l.MaxHeight > 0 {
		b = append(b, limitHeight)
		b = strconv.AppendInt(b, int64(l.MaxHeight), 10)
	}
	if l.NoDownloads {
		b = append(b, limitNoDownloads)
	}
	return b
}

// parseLimits parses a limits field and accepts it only when it is
// exactly what appendLimits writes for the Limits it names: non-empty,
// fields in order, the height canonical decimal from 1 to
// MaxLimitHeight.
func parseLimits(s string) (Limits, bool) {
	var l Limits
	if len(s) == 0 || len(s) > maxLimitsLen {
		return l, false
	}
	if s[0] == limitHeight {
		i := 1
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		h, ok := parseHeight(s[1:i])
		if !ok {
			return l, false
		}
		l.MaxHeight, s = h, s[i:]
	}
	if len(s) > 0 && s[0] == limitNoDownloads {
		l.NoDownloads, s = true, s[1:]
	}
	return l, len(s) == 0
}

// parseHeight parses a canonical decimal from 1 to MaxLimitHeight: no
// sign, no leading zero.
func parseHeight(s string) (int, bool) {
	if len(s) == 0 || len(s) > 5 || s[0] == '0' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// NameHeight returns the height a rendition directory named "{height}p"
// (the transcoder's default name, such as "720p") stands for. It is how a
// height is read from a name when nothing better is known: the catalog
// knows every rendition's height, and custom ladders may name theirs
// otherwise.
func NameHeight(dir string) (int, bool) {
	digits, ok := strings.CutSuffix(dir, "p")
	if !ok {
		return 0, false
	}
	return parseHeight(digits)
}

// Allows reports whether a token with limits l may fetch object, a path
// inside its title's directory ("720p/seg-00001.m4s"). It is the one rule
// appliances and the origin enforce:
//
//   - the zero Limits allow everything;
//   - under download/, NoDownloads refuses all, and a maximum height
//     refuses a file not named "{height}p.mp4" with a height within it;
//   - in any other directory, a maximum height refuses a directory whose
//     height heightOf does not know (fail closed) or that is taller;
//   - a file at the top of the title is allowed: the poster, and the
//     master playlist and MPD, which the caller serves filtered
//     (package manifestfilter).
//
// heightOf returns the height of one of the title's rendition directories
// (0 for audio); it is called only when l has a maximum height.
func (l Limits) Allows(object string, heightOf func(dir string) (int, bool)) bool {
	if l.IsZero() {
		return true
	}
	dir, name, nested := strings.Cut(object, "/")
	if !nested {
		return true
	}
	if dir == DownloadDir {
		if l.NoDownloads {
			return false
		}
		if l.MaxHeight == 0 {
			return true
		}
		base, ok := strings.CutSuffix(name, ".mp4")
		h, known := NameHeight(base)
		return ok && known && h <= l.MaxHeight
	}
	if l.MaxHeight == 0 {
		return true
	}
	h, ok := heightOf(dir)
	return ok && h <= l.MaxHeight
}

// LimitReason names why Allows refused object, for a metric label and the
// log: "download" for a file under download/, "rendition" otherwise (a
// rendition too tall or unknown, or a manifest that would list none).
func LimitReason(object string) string {
	if strings.HasPrefix(object, DownloadDir+"/") {
		return "download"
	}
	return "rendition"
}
