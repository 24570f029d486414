package origin

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/manifestfilter"
)

// maxHeightTitles bounds the titles whose heights are remembered.
const maxHeightTitles = 4096

// heights remembers, per title, the rendition heights its master playlist
// declares, by the playlist's version: the origin has no catalog, and the
// packager writes every rendition there.
type heights struct {
	mu sync.Mutex
	m  map[string]titleHeights
}

type titleHeights struct {
	etag string
	dirs map[string]int
}

// allowed reports whether a token with limits l may fetch object of title
// (auth.Limits.Allows); when not, it has answered 403.
func (s *Server) allowed(w http.ResponseWriter, r *http.Request, l auth.Limits, title, object string) bool {
	if l.IsZero() || l.Allows(object, func(dir string) (int, bool) { return s.heightOf(title, dir) }) {
		return true
	}
	s.forbid(w, r, auth.LimitReason(object), nil)
	return false
}

// heightOf returns the height of a rendition directory of title: from the
// title's master playlist when it has one (a directory it does not list
// is no rendition: refused), else from a name such as "720p" (anything
// else: refused).
func (s *Server) heightOf(title, dir string) (int, bool) {
	dirs, ok := s.titleHeights(title)
	if !ok {
		return auth.NameHeight(dir)
	}
	h, ok := dirs[dir]
	return h, ok
}

// titleHeights returns the directories and heights title's master
// playlist lists, reading it again only when it changed; false when the
// title has no master playlist.
func (s *Server) titleHeights(title string) (map[string]int, bool) {
	f, err := s.root.Open(title + "/" + manifestfilter.MasterName)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil, false
	}
	etag := ETag(fi.Size(), fi.ModTime())
	s.heights.mu.Lock()
	th, ok := s.heights.m[title]
	s.heights.mu.Unlock()
	if ok && th.etag == etag {
		return th.dirs, true
	}
	dirs := map[string]int{} // unreadable: no rendition at all
	if b, err := manifestfilter.ReadAll(f, fi.Size()); err == nil {
		dirs = manifestfilter.Heights(b)
	} else {
		s.log.Warn("origin: cannot read a master playlist for its heights", "title", title, "err", err)
	}
	s.heights.mu.Lock()
	defer s.heights.mu.Unlock()
	for k := range s.heights.m {
		if len(s.heights.m) < maxHeightTitles {
			break
		}
		delete(s.heights.m, k)
	}
	s.heights.m[title] = titleHeights{etag: etag, dirs: dirs}
	return dirs, true
}

// serveVariant answers a master playlist or MPD, open in f, for a
// player: the variant without the renditions taller than maxHeight (when
// positive) and advertising Content Steering (with Config.SteeringURL for
// a player's token), made once per limit and version of the file; a
// steered MPD's BaseURL is made absolute for the URL the player asked
// for. A manifest that leaves nothing is a 403.
func (s *Server) serveVariant(w http.ResponseWriter, r *http.Request, f *os.File, fi os.FileInfo, maxHeight int, token, title, object string) {
	o := manifestfilter.Options{MaxHeight: maxHeight}
	if token != "" {
		o.SteeringURL = s.cfg.SteeringURL
	}
	v, err := s.variants.Get(title+"/"+object, ETag(fi.Size(), fi.ModTime()), o, func() ([]byte, error) {
		return manifestfilter.ReadAll(f, fi.Size())
	})
	switch {
	case errors.Is(err, manifestfilter.ErrNothingLeft):
		s.forbid(w, r, auth.LimitReason(object), err)
		return
	case err != nil:
		s.log.Error("origin: cannot filter a manifest", "path", title+"/"+object, "err", err)
		httpError(w, http.StatusInternalServerError, "cannot filter manifest")
		return
	}
	body := v.Body
	if o.SteeringURL != "" && object == manifestfilter.MPDName {
		body = v.BodyFor(contentDir(r, token, title))
	}
	h := w.Header()
	h.Set("Content-Type", fillcast.ContentType(object))
	h.Set("Cache-Control", fillcast.CacheControl(object))
	h.Set("ETag", v.ETag)
	http.ServeContent(w, r, object, fi.ModTime(), bytes.NewReader(body))
}

// contentDir returns the absolute URL of the directory of title that the
// player asked with token for, as it asked ("https://{Host}/c/{token}/
// {title}/"), or "" when its Host is no host[:port].
func contentDir(r *http.Request, token, title string) string {
	host := r.Host
	if host == "" || strings.TrimLeft(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") != "" {
		return ""
	}
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	return scheme + host + "/c/" + token + "/" + title + "/"
}
