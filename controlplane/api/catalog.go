package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"sort"
	"strings"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/gateway"
	"github.com/fillcast/fillcast/controlplane/ingest"
)

// getByID answers the record of the path's {id} in the map of the state
// that records picks, or 404 naming what was not found.
func getByID[V any](a *API, w http.ResponseWriter, r *http.Request, what string, records func(*fsm.State) map[string]*V) error {
	id := r.PathValue("id")
	var v *V
	a.read(func(s *fsm.State) { v = records(s)[id] })
	if v == nil {
		return gateway.Errorf(http.StatusNotFound, "%s %q not found", what, id)
	}
	return gateway.WriteJSON(w, http.StatusOK, v)
}

// createTitle registers a new title: status new (to ingest later) or ready
// with its renditions and files (packaged elsewhere: the state keeps
// their list until the leader publishes it at the origin) or its
// files_digest (a list already there). 409 if it exists.
func (a *API) createTitle(w http.ResponseWriter, r *http.Request) error {
	var t fillcast.Title
	if err := gateway.DecodeJSON(r, &t); err != nil {
		return err
	}
	if t.Status == "" {
		t.Status = fillcast.StatusNew
	}
	// Conditional in the log, not here: of concurrent creates of one id,
	// one is applied and the others find it there.
	err := a.apply(r.Context(), fsm.Command{Op: fsm.OpCreateTitle, Title: &t})
	if errors.Is(err, fsm.ErrExists) {
		return gateway.Errorf(http.StatusConflict, "title %q exists: PUT /v1/titles/%s to replace it", t.ID, t.ID)
	}
	if err != nil {
		return err
	}
	return a.writeTitle(w, http.StatusCreated, &t)
}

// putTitle creates or replaces a title; the path id wins over the body's.
func (a *API) putTitle(w http.ResponseWriter, r *http.Request) error {
	var t fillcast.Title
	if err := gateway.DecodeJSON(r, &t); err != nil {
		return err
	}
	if t.ID != "" && t.ID != r.PathValue("id") {
		return gateway.Errorf(http.StatusBadRequest, "id %q in the body does not match the path", t.ID)
	}
	t.ID = r.PathValue("id")
	if t.Status == "" {
		t.Status = fillcast.StatusNew
	}
	if err := a.apply(r.Context(), fsm.Command{Op: fsm.OpPutTitle, Title: &t}); err != nil {
		return err
	}
	return a.writeTitle(w, http.StatusOK, &t)
}

// writeTitle answers the title id as the catalog keeps it, read back
// once the write is applied here: with the summary of its file list
// (computed by the write from the files given, or kept from the stored
// title by a write that gave neither files nor a digest), never the
// files. A title deleted since is answered as written, without files.
func (a *API) writeTitle(w http.ResponseWriter, status int, written *fillcast.Title) error {
	var v titleView
	var ok bool
	a.read(func(s *fsm.State) {
		if t := s.Titles[written.ID]; t != nil {
			v, ok = titleViewOf(t), true
		}
	})
	if !ok {
		v = titleViewOf(written)
	}
	return gateway.WriteJSON(w, status, v)
}

// deleteTitle takes a title down (takedown.go): conditional in the log,
// so of concurrent deletions one is applied and the others get 404.
func (a *API) deleteTitle(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var exists bool
	a.read(func(s *fsm.State) { _, exists = s.Titles[id] })
	if !exists {
		return gateway.Errorf(http.StatusNotFound, "title %q not found", id)
	}
	if err := a.apply(r.Context(), fsm.Command{Op: fsm.OpDeleteTitle, ID: id, Takedown: a.takedown(id)}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ingestRequest is the JSON form of an ingest: a file already in this
// node's ingest directory (for example copied there by the operator).
type ingestRequest struct {
	Path   string `json:"path"`
	Ladder string `json:"ladder,omitempty"` // "default" or "per-title"
}

// ingest accepts a multipart upload (field "file", optional field
// "ladder") or a JSON body naming a server-side path, and queues a job on
// this node. The upload is streamed to disk, never held in memory.
func (a *API) ingest(w http.ResponseWriter, r *http.Request) error {
	if a.d.Ingest == nil {
		return gateway.Errorf(http.StatusServiceUnavailable, "ingest is not enabled on this node (start it with --origin)")
	}
	title := r.PathValue("id")
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var source, ladder string
	switch ct {
	case "multipart/form-data":
		var err error
		if source, ladder, err = a.saveUpload(r); err != nil {
			return err
		}
	case "application/json":
		var req ingestRequest
		if err := gateway.DecodeJSON(r, &req); err != nil {
			return err
		}
		if req.Path == "" || !strings.HasPrefix(req.Path, "/") {
			return gateway.Errorf(http.StatusBadRequest, "path: want an absolute path of a file on this node")
		}
		// Only under the node's ingest directory (--ingest-dir): the
		// request names a file of the server's, not one it sends.
		src, err := a.d.Ingest.OpenSource(req.Path)
		if errors.Is(err, ingest.ErrPathForbidden) {
			return gateway.Forbidden(r.Context(), "path_forbidden", err.Error())
		}
		if err != nil {
			return gateway.Errorf(http.StatusBadRequest, "%v", err)
		}
		// Copy, so the job owns (and later removes) its source.
		defer src.Close()
		if source, err = a.writeUpload(src); err != nil {
			return err
		}
		ladder = req.Ladder
	default:
		return gateway.Errorf(http.StatusUnsupportedMediaType, "send multipart/form-data with a \"file\" field, or JSON {\"path\": ...}")
	}
	if ladder != "" && ladder != "default" && ladder != "per-title" {
		os.Remove(source)
		return gateway.Errorf(http.StatusBadRequest, "ladder %q: want default or per-title", ladder)
	}
	job, err := a.d.Ingest.Submit(r.Context(), title, source, ladder == "per-title")
	if err != nil {
		os.Remove(source)
		switch {
		case errors.Is(err, ingest.ErrUnknownTitle):
			return gateway.Errorf(http.StatusNotFound, "%v", err)
		case errors.Is(err, ingest.ErrBusy):
			return &gateway.Error{Status: http.StatusServiceUnavailable, Message: err.Error(), RetryAfter: 30e9}
		}
		return applyError(err)
	}
	w.Header().Set("Location", "/v1/jobs/"+job.ID)
	return gateway.WriteJSON(w, http.StatusAccepted, job)
}

// saveUpload streams the multipart "file" part to the uploads directory.
func (a *API) saveUpload(r *http.Request) (path, ladder string, err error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return "", "", gateway.Errorf(http.StatusBadRequest, "multipart body: %v", err)
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			os.Remove(path)
			return "", "", gateway.Errorf(http.StatusBadRequest, "multipart body: %v", err)
		}
		switch part.FormName() {
		case "file":
			if path != "" {
				os.Remove(path)
				return "", "", gateway.Errorf(http.StatusBadRequest, "only one \"file\" part is allowed")
			}
			if path, err = a.writeUpload(part); err != nil {
				return "", "", err
			}
		case "ladder":
			b, _ := io.ReadAll(io.LimitReader(part, 64))
			ladder = strings.TrimSpace(string(b))
		}
	}
	if path == "" {
		return "", "", gateway.Errorf(http.StatusBadRequest, "multipart body has no \"file\" part")
	}
	return path, ladder, nil
}

// writeUpload copies r into a new file under the uploads directory; an
// upload cut short is removed.
func (a *API) writeUpload(r io.Reader) (string, error) {
	path := a.d.Ingest.UploadPath()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", fmt.Errorf("api: store upload: %w", err)
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", gateway.Errorf(http.StatusRequestEntityTooLarge, "upload larger than %d bytes", mbe.Limit)
		}
		return "", gateway.Errorf(http.StatusBadRequest, "upload interrupted after %d bytes: %v", n, err)
	}
	if n == 0 {
		os.Remove(path)
		return "", gateway.Errorf(http.StatusBadRequest, "the uploaded file is empty")
	}
	return path, nil
}

func (a *API) listJobs(w http.ResponseWriter, r *http.Request) error {
	out := []*fsm.Job{}
	a.read(func(s *fsm.State) {
		for _, j := range s.Jobs {
			out = append(out, j)
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return gateway.WriteJSON(w, http.StatusOK, out)
}

func (a *API) getJob(w http.ResponseWriter, r *http.Request) error {
	return getByID(a, w, r, "job", func(s *fsm.State) map[string]*fsm.Job { return s.Jobs })
}

// sortedValues returns the values of m sorted by key, never nil so that
// JSON shows [].
func sortedValues[V any](m map[string]V) []V {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]V, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}
