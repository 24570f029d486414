package api

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/gateway"
	"github.com/fillcast/fillcast/controlplane/liststore"
	"github.com/fillcast/fillcast/filelist"
)

// FileLists finds titles' file lists by digest (*liststore.Store).
type FileLists interface {
	Get(ctx context.Context, title, digest string) ([]byte, error)
}

var _ FileLists = (*liststore.Store)(nil)

// listCacheControl: a list never changes under its digest.
const listCacheControl = "max-age=31536000, immutable"

// titleFileList answers GET /v1/titles/{id}/filelist/{digest}: the
// title's encoded file list, when digest is its list's or a list of its
// still waiting to be published; 404 for any other.
func (a *API) titleFileList(w http.ResponseWriter, r *http.Request) error {
	id, digest := r.PathValue("id"), r.PathValue("digest")
	if !filelist.ValidDigest(digest) {
		return gateway.Errorf(http.StatusBadRequest, "digest %q: want 64 lower-case hex characters (a title's files_digest)", digest)
	}
	var exists, known bool
	var current string
	a.read(func(s *fsm.State) {
		if t := s.Titles[id]; t != nil {
			_, pending := s.PendingList(id, digest)
			exists, known, current = true, pending || t.FilesDigest == digest, t.FilesDigest
		}
	})
	switch {
	case !exists:
		return gateway.Errorf(http.StatusNotFound, "title %q not found", id)
	case !known && current == "":
		return gateway.Errorf(http.StatusNotFound, "title %q has no file list", id)
	case !known:
		return gateway.Errorf(http.StatusNotFound, "title %q has no file list %s: its files_digest is %s", id, digest, current)
	}
	etag := `"` + digest + `"`
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", listCacheControl)
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	body, err := a.fileList(r.Context(), id, digest)
	if err != nil {
		return err
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	return nil
}

// mayReadLists reports whether the caller may have titles' file lists
// (listReader): viewers may not, for a list may cost the control plane a
// fetch from the origin and the decoding of tens of MiB.
func mayReadLists(ctx context.Context) bool {
	return listReader.Allows(gateway.Principal(ctx), "")
}

// etagMatches reports whether an If-None-Match header names etag.
func etagMatches(header, etag string) bool {
	for tag := range strings.SplitSeq(header, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == etag || tag == "*" {
			return true
		}
	}
	return false
}

// fileList returns title's list of digest, with the errors of the
// list store as statuses. Messages do not name the origin; the
// causes, logged, do.
func (a *API) fileList(ctx context.Context, title, digest string) ([]byte, error) {
	body, err := a.d.FileLists.Get(ctx, title, digest)
	switch {
	case err == nil:
		return body, nil
	case errors.Is(err, liststore.ErrUnavailable):
		return nil, &gateway.Error{Status: http.StatusServiceUnavailable, RetryAfter: time.Second, Err: err,
			Message: "the origin, which holds title " + title + "'s file list, is not answering: try again shortly"}
	case errors.Is(err, liststore.ErrNotFound), errors.Is(err, liststore.ErrBadList):
		// The catalog names the list: the origin should have it.
		return nil, &gateway.Error{Status: http.StatusBadGateway, Err: err,
			Message: "title " + title + "'s file list " + digest + " could not be read from the origin (missing or damaged there)"}
	}
	return nil, err
}

// listHas reports whether title's list of digest has path. A list is
// canonical (checked when it was encoded or fetched): one line a file,
// each after a newline, its path first and then a tab, which no path
// holds.
func (a *API) listHas(ctx context.Context, title, digest, path string) (bool, error) {
	body, err := a.fileList(ctx, title, digest)
	if err != nil {
		return false, err
	}
	return bytes.Contains(body, []byte("\n"+path+"\t")), nil
}
