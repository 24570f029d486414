package fillcast

import (
	"errors"
	"fmt"
	"strings"
)

// MaxObjectPathLen bounds the path of a packaged file inside its title.
const MaxObjectPathLen = 200

// ErrBadObjectPath is returned by ValidateObjectPath.
var ErrBadObjectPath = errors.New("fillcast: bad object path")

// ValidateObjectPath reports whether p may name a packaged file inside a
// title directory, such as "720p/seg-00001.m4s". Only the characters the
// packager writes are allowed (letters, digits, '.', '-', '_' and '/'
// between non-empty segments), and no segment may be "." or "..", so a
// valid path can never escape the title directory on any file system.
func ValidateObjectPath(p string) error {
	if p == "" || len(p) > MaxObjectPathLen {
		return fmt.Errorf("%w: want 1 to %d characters", ErrBadObjectPath, MaxObjectPathLen)
	}
	start := 0
	for i := 0; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			if c := p[i]; !IsIDByte(c) && c != '.' {
				return fmt.Errorf("%w %q: character %q is not allowed", ErrBadObjectPath, p, c)
			}
			continue
		}
		seg := p[start:i]
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w %q: empty, '.' or '..' segment", ErrBadObjectPath, p)
		}
		start = i + 1
	}
	return nil
}

// ContentType returns the media type served for a packaged file, chosen by
// its extension as docs/design.md §6.3 lists; unknown extensions are
// application/octet-stream.
func ContentType(name string) string {
	switch name[strings.LastIndexByte(name, '.')+1:] {
	case "m3u8":
		return "application/vnd.apple.mpegurl"
	case "mpd":
		return "application/dash+xml"
	case "m4s":
		return "video/iso.segment"
	case "mp4":
		return "video/mp4"
	case "m4a":
		return "audio/mp4"
	case "json":
		return "application/json"
	case "jpg", "jpeg":
		return "image/jpeg"
	case "png":
		return "image/png"
	case "vtt":
		return "text/vtt"
	}
	return "application/octet-stream"
}

// Disposition returns the Content-Disposition of a title's packaged file:
// the progressive MP4s under download/ are saved as files named
// "{title}-{name}" rather than played in the browser tab; everything else
// gets "" (no header).
func Disposition(title, path string) string {
	name, isDownload := strings.CutPrefix(path, "download/")
	if title == "" || !isDownload || name == "" || strings.Contains(name, "/") {
		return ""
	}
	return `attachment; filename="` + title + "-" + name + `"`
}

// CacheControl returns the Cache-Control an origin gives a packaged file:
// manifests may be replaced by a re-ingest, so they are cached for a
// minute; segments, init segments and downloads never change once written.
func CacheControl(name string) string {
	switch name[strings.LastIndexByte(name, '.')+1:] {
	case "m3u8", "mpd", "json":
		return "public, max-age=60"
	}
	return "public, max-age=31536000, immutable"
}
