package origin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
)

// Takedowns. DELETE /{title}?tokens_until={unix seconds} with the admin
// token (the control plane, when a title is deleted) removes the title's
// directory and, from then on, refuses players' tokens for the title
// that expire at or before tokens_until: the tokens issued before the
// takedown, which would otherwise be served the files of the title
// published again. The refusals are kept in the root's takedownsFile, a
// dot-file and so never served, until they would refuse only expired
// tokens.

// takedownsFile is where the refusals are kept, in the root.
const takedownsFile = ".takedowns.json"

// takedowns are the refusals in force.
type takedowns struct {
	mu    sync.Mutex       // one writer at a time
	until map[string]int64 // under mu
	set   atomic.Pointer[auth.Takedowns]
}

// loadTakedowns reads the root's takedownsFile, if any.
func (s *Server) loadTakedowns() error {
	s.takedowns.until = map[string]int64{}
	b, err := s.root.ReadFile(takedownsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = json.Unmarshal(b, &s.takedowns.until)
	}
	if err != nil {
		return fmt.Errorf("origin: read %s: %w", takedownsFile, err)
	}
	s.takedowns.set.Store(auth.NewTakedowns(s.takedowns.until))
	return nil
}

// refuse records that title's tokens expiring at or before until are
// refused, forgetting the refusals whose tokens have all expired.
func (s *Server) refuse(title string, until int64) error {
	t := &s.takedowns
	t.mu.Lock()
	defer t.mu.Unlock()
	next := maps.Clone(t.until)
	now := s.d.Now().Unix()
	maps.DeleteFunc(next, func(_ string, u int64) bool { return u < now })
	next[title] = max(next[title], until)
	b, err := json.Marshal(next)
	if err == nil {
		_, err = s.writeAtomic(takedownsFile, strings.NewReader(string(b)), int64(len(b)))
	}
	if err != nil {
		return fmt.Errorf("origin: record takedown of %s: %w", title, err)
	}
	t.until = next
	t.set.Store(auth.NewTakedowns(next))
	return nil
}

// takenDown reports whether a player's token, verified for title, was
// issued before title's takedown; if so it has answered 403.
func (s *Server) takenDown(w http.ResponseWriter, r *http.Request, token, title string) bool {
	if !s.takedowns.set.Load().Refuses(token, title) {
		return false
	}
	s.forbidden.WithLabelValues("taken_down").Inc()
	s.log.Debug("origin: forbidden", "reason", "taken_down", "path", r.URL.Path, "client", r.RemoteAddr)
	httpError(w, http.StatusForbidden, "forbidden: this title was taken down")
	return true
}

// serveDelete takes a title down: DELETE /{title}, with the admin token
// and an optional tokens_until. Deleting a title that is not there
// succeeds, so the control plane can retry until it is done.
func (s *Server) serveDelete(w *countingWriter, r *http.Request) {
	title := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if strings.Contains(title, "/") {
		w.Header().Set("Allow", "GET, HEAD, PUT, OPTIONS")
		httpError(w, http.StatusMethodNotAllowed, "origin: DELETE takes a whole title, /{title}, not a file")
		return
	}
	if !auth.BearerOK(r.Header.Get("Authorization"), s.d.AdminToken) {
		httpError(w, http.StatusUnauthorized, "DELETE needs Authorization: Bearer <admin token>")
		return
	}
	if err := fillcast.ValidateTitleID(title); err != nil {
		httpError(w, http.StatusBadRequest, "origin: DELETE takes /{title}: "+err.Error())
		return
	}
	if v := r.URL.Query().Get("tokens_until"); v != "" {
		until, err := strconv.ParseInt(v, 10, 64)
		if err != nil || until <= 0 {
			httpError(w, http.StatusBadRequest, "origin: tokens_until: want unix seconds, such as 1767225600")
			return
		}
		if err := s.refuse(title, until); err != nil {
			s.log.Error("origin: takedown", "title", title, "err", err)
			httpError(w, http.StatusInternalServerError, "cannot record the takedown")
			return
		}
	}
	if err := s.root.RemoveAll(title); err != nil {
		s.log.Error("origin: takedown", "title", title, "err", err)
		httpError(w, http.StatusInternalServerError, "cannot delete the title's files")
		return
	}
	s.heights.mu.Lock()
	delete(s.heights.m, title)
	s.heights.mu.Unlock()
	s.log.Info("origin: title taken down", "title", title)
	w.WriteHeader(http.StatusNoContent)
}
