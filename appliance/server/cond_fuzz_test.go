package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/appliance/cache"
)

// opaqueTag keeps the bytes of s an entity tag may hold between its
// quotes (RFC 9110 etagc), less ',' which the list parser splits on;
// empty becomes "x".
func opaqueTag(s string) string {
	b := []byte(s)[:0:0]
	for _, c := range []byte(s) {
		if c == 0x21 || c >= 0x23 && c <= 0x7e && c != ',' {
			b = append(b, c)
		}
	}
	if len(b) == 0 {
		return "x"
	}
	return string(b)
}

// FuzzConditional: the conditional request headers a client sends
// (If-None-Match, If-Modified-Since, If-Range) never make the appliance
// answer 304 or a range for another representation, and do for the
// current one: an echoed entity tag matches, weak or not, wherever it
// stands in a list (weak comparison); a list of other tags does not; a
// date at or after Last-Modified is not modified, one before it is; and
// If-Range takes only the strong entity tag or the exact date.
func FuzzConditional(f *testing.F) {
	f.Add("abc-123", "other", false, false, int64(1764892800), int64(0), []byte(`"abc-123"`), []byte("Fri, 05 Dec 2025 00:00:00 GMT"), []byte(`"abc-123"`))
	f.Add("abc-123", "x,y", true, false, int64(1764892800), int64(-1), []byte(`W/"abc-123", "z"`), []byte("garbage"), []byte(`W/"abc-123"`))
	f.Add("v1", "v2", false, true, int64(0), int64(86400), []byte(`*`), []byte(""), []byte("Thu, 01 Jan 1970 00:00:00 GMT"))
	f.Add("", "", true, true, int64(-62135596800), int64(1<<62), []byte(`,,, W/`), []byte("Mon, 32 Jan 2026 25:61:61 GMT"), []byte(`"`))
	f.Fuzz(func(t *testing.T, opaque, others string, weakStored, weakSent bool, lmUnix, delta int64, inm, ims, ifRange []byte) {
		lm := time.Unix(lmUnix%(1<<36), 0).UTC() // years 0 to 4147
		meta := &cache.Meta{ETag: `"` + opaqueTag(opaque) + `"`, LastModified: lm.Format(http.TimeFormat)}
		if weakStored {
			meta.ETag = "W/" + meta.ETag
		}
		// Raw headers: whatever they say, nothing panics, and a match
		// needs the tag, "*" or a parsable date.
		if notModified(inm, ims, meta) && len(inm) > 0 && !strings.Contains(string(inm), strings.TrimPrefix(meta.ETag, "W/")) && !strings.Contains(string(inm), "*") {
			t.Fatalf("If-None-Match %q matched %s", inm, meta.ETag)
		}
		if ifRangeMatches(ifRange, meta) && len(ifRange) > 0 && string(ifRange) != meta.ETag && string(ifRange) != meta.LastModified {
			t.Fatalf("If-Range %q matched %+v", ifRange, meta)
		}

		sent := strings.TrimPrefix(meta.ETag, "W/")
		if weakSent {
			sent = "W/" + sent
		}
		var list []string
		for _, o := range strings.Split(others, ",") {
			if tag := `"` + opaqueTag(o) + `"`; tag != strings.TrimPrefix(meta.ETag, "W/") {
				list = append(list, tag, "W/"+tag)
			}
		}
		if notModified([]byte(strings.Join(list, ", ")), nil, meta) {
			t.Fatalf("If-None-Match %q matched %s", strings.Join(list, ", "), meta.ETag)
		}
		at := int(uint64(delta) % uint64(len(list)+1))
		withTag := append(append(append([]string{}, list[:at]...), sent), list[at:]...)
		if !notModified([]byte(" "+strings.Join(withTag, " ,")+"\t"), []byte("Thu, 01 Jan 1970 00:00:00 GMT"), meta) {
			t.Fatalf("If-None-Match %q did not match %s", strings.Join(withTag, ", "), meta.ETag)
		}

		since := lm.Add(time.Duration(delta%(1<<40)) * time.Second)
		if since.Year() >= 0 && since.Year() <= 9999 {
			if got, want := notModified(nil, []byte(since.Format(http.TimeFormat)), meta), !since.Before(lm); got != want {
				t.Fatalf("If-Modified-Since %s against Last-Modified %s: not modified %v, want %v", since.Format(http.TimeFormat), meta.LastModified, got, want)
			}
		}

		if got, want := ifRangeMatches([]byte(sent), meta), !weakStored && !weakSent; got != want {
			t.Fatalf("If-Range %s against %s: %v, want %v", sent, meta.ETag, got, want)
		}
		if !ifRangeMatches([]byte(meta.LastModified), meta) || ifRangeMatches([]byte(lm.Add(time.Second).Format(http.TimeFormat)), meta) {
			t.Fatalf("If-Range by date against %s: want the exact date only", meta.LastModified)
		}
	})
}
