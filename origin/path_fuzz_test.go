package origin

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fillcast/fillcast"
)

// FuzzParsePath: a request path the origin accepts is exactly its token
// form (/c/{token}/{title}/{object}), fill form (/f/...) or bare form
// (/{title}/{object}) put back together, with a valid title, a valid
// object path that stays inside the title's directory and no segment
// starting with '.' (uploads in flight); the bare form of what it
// accepted parses to the same title and object.
func FuzzParsePath(f *testing.F) {
	for _, p := range []string{
		"/c/tok/t1/720p/seg-00001.m4s", "/f/t1/master.m3u8", "/t1/720p/init.mp4", "/c//t1/a", "/c/tok", "/t1",
		"/t1/../etc/passwd", "/t1/720p/.tmp-seg-1", "/t1/.hidden/x", "/../t1/a", "/t1//a", "/t1/a/", "/c/a/b/c/d",
		"/f/c/t1/a", "/t1/a%2fb", "/t1/a\x00b", "/-t/a", "t1/a", "//t1/a", "/c/tok/f/x",
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		token, title, object, err := parsePath(p)
		if err != nil {
			if errors.Is(err, errHidden) && !strings.Contains("/"+p, "/.") {
				t.Fatalf("parsePath(%q): hidden, without a segment starting with '.'", p)
			}
			return
		}
		if fillcast.ValidateTitleID(title) != nil || fillcast.ValidateObjectPath(object) != nil {
			t.Fatalf("parsePath(%q) = %q, %q: not a valid title and object", p, title, object)
		}
		name := title + "/" + object
		if !filepath.IsLocal(name) || filepath.Clean(name) != name {
			t.Fatalf("parsePath(%q) names %q, outside the root or not clean", p, name)
		}
		for _, seg := range strings.Split(object, "/") {
			if strings.HasPrefix(seg, ".") {
				t.Fatalf("parsePath(%q) = %q: a hidden segment", p, object)
			}
		}
		rest := strings.TrimPrefix(p, "/")
		switch {
		case token != "":
			if strings.Contains(token, "/") || rest != "c/"+token+"/"+name {
				t.Fatalf("parsePath(%q) = token %q, %q", p, token, name)
			}
		case rest != name && rest != "f/"+name:
			t.Fatalf("parsePath(%q) = %q, not the path it was given", p, name)
		}
		if title == "c" || title == "f" {
			return // reached only in the token and fill forms
		}
		tok2, title2, object2, err := parsePath("/" + name)
		if err != nil || tok2 != "" || title2 != title || object2 != object {
			t.Fatalf("bare form of %q: %q %q %q %v", p, tok2, title2, object2, err)
		}
	})
}
