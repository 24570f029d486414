package server

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/valyala/fasthttp"
)

// notModified evaluates If-None-Match, then (only without it)
// If-Modified-Since, as RFC 9110 §13.2.2 orders them.
func notModified(inm, ims []byte, meta *cache.Meta) bool {
	if len(inm) > 0 {
		return etagListMatches(inm, meta.ETag, false)
	}
	if len(ims) == 0 || meta.LastModified == "" {
		return false
	}
	since, err := fasthttp.ParseHTTPDate(ims)
	if err != nil {
		return false
	}
	lm, err := fasthttp.ParseHTTPDate(s2b(meta.LastModified))
	return err == nil && !lm.After(since)
}

// ifRangeMatches reports whether a Range header may be honoured: there is
// no If-Range, or it names the current representation (a strong ETag or
// the exact Last-Modified date).
func ifRangeMatches(ifRange []byte, meta *cache.Meta) bool {
	if len(ifRange) == 0 {
		return true
	}
	if ifRange[0] == '"' {
		return meta.ETag != "" && string(ifRange) == meta.ETag
	}
	return meta.LastModified != "" && string(ifRange) == meta.LastModified
}

// etagListMatches reports whether the comma-separated entity tags in list
// contain etag ("*" matches any). Comparison is weak (W/ ignored on both
// sides) unless strong is set, as If-None-Match requires weak comparison.
func etagListMatches(list []byte, etag string, strong bool) bool {
	if etag == "" {
		return false
	}
	if !strong {
		etag = strings.TrimPrefix(etag, "W/")
	}
	for len(list) > 0 {
		var item []byte
		if i := bytes.IndexByte(list, ','); i >= 0 {
			item, list = list[:i], list[i+1:]
		} else {
			item, list = list, nil
		}
		item = bytes.TrimSpace(item)
		if len(item) == 1 && item[0] == '*' {
			return true
		}
		if bytes.HasPrefix(item, []byte("W/")) {
			if strong {
				continue
			}
			item = item[2:]
		}
		if string(item) == etag {
			return true
		}
	}
	return false
}

// onlyIfCached reports whether a Cache-Control request header carries the
// only-if-cached directive (a peer's tier-fill request).
func onlyIfCached(cc []byte) bool {
	return len(cc) > 0 && bytes.Contains(bytes.ToLower(cc), []byte("only-if-cached"))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
