package api

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/gateway"
	"github.com/fillcast/fillcast/filelist"
)

// The listing's bounds.
const (
	// defaultPage and maxPage are the titles of a page: ?limit= and its
	// most.
	defaultPage, maxPage = 50, 200
	// maxIDs bounds ?ids=.
	maxIDs = 100
	// maxScan bounds the titles one page looks at (under the state's read
	// lock): a filter that matches rarely answers a short page, or none,
	// with a cursor to go on from.
	maxScan = 5000
)

// titleView is a title as the catalog routes answer it: without files
// (but with ?files=1), with the URL of its poster when it has one.
type titleView struct {
	fillcast.Title
	PosterURL string `json:"poster_url,omitempty"`
}

func titleViewOf(t *fillcast.Title) titleView {
	v := titleView{Title: *t}
	v.Files = nil
	if t.Poster != "" {
		v.PosterURL = "/v1/titles/" + url.PathEscape(t.ID) + "/files/" + t.Poster
	}
	return v
}

// titlePage is the body of GET /v1/titles.
type titlePage struct {
	Titles []titleView `json:"titles"`
	// NextCursor continues the listing; omitted at its end.
	NextCursor string `json:"next_cursor,omitempty"`
}

// titleFilter is what a listing keeps: ?status=, ?genre= and, for a
// kids profile, the titles rated for it.
type titleFilter struct {
	status, genre string
	kids          bool
}

func (f titleFilter) keep(t *fillcast.Title) bool {
	return (f.status == "" || t.Status == f.status) &&
		(f.genre == "" || slices.ContainsFunc(t.Genres, func(g string) bool { return strings.EqualFold(g, f.genre) })) &&
		(!f.kids || fillcast.KidsMayWatch(t.Maturity))
}

// listTitles answers a page of titles in id order (?limit=, ?cursor=),
// or the titles ?ids= names in its order, filtered by ?status= and
// ?genre=; a kids profile sees only the titles rated for it. Pages are
// keyset by id, so that a walk of every page shows each title that was
// there all along exactly once, whatever is written meanwhile. It reads
// this node's copy, which may be behind (reportStale says so).
func (a *API) listTitles(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := titleFilter{status: q.Get("status"), genre: q.Get("genre"), kids: kidsOnly(r.Context())}
	switch f.status {
	case "", fillcast.StatusNew, fillcast.StatusIngesting, fillcast.StatusReady, fillcast.StatusFailed:
	default:
		return gateway.Errorf(http.StatusBadRequest, "status %q: want new, ingesting, ready or failed", f.status)
	}
	limit, err := pageLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	if q.Has("ids") {
		if q.Has("cursor") || q.Has("limit") {
			return gateway.Errorf(http.StatusBadRequest, "ids= answers every title it names (at most %d) in one page: give no cursor or limit with it", maxIDs)
		}
		ids, err := parseIDs(q.Get("ids"))
		if err != nil {
			return err
		}
		return gateway.WriteJSON(w, http.StatusOK, a.titlesByID(ids, f))
	}
	after, err := decodeCursor(q.Get("cursor"))
	if err != nil {
		return err
	}
	page := titlePage{Titles: make([]titleView, 0, limit)}
	a.read(func(s *fsm.State) {
		scanned, last := 0, ""
		s.TitlesAfter(after, func(t *fillcast.Title) bool {
			if len(page.Titles) == limit || scanned == maxScan {
				page.NextCursor = encodeCursor(last)
				return false
			}
			scanned, last = scanned+1, t.ID
			if f.keep(t) {
				page.Titles = append(page.Titles, titleViewOf(t))
			}
			return true
		})
	})
	return gateway.WriteJSON(w, http.StatusOK, page)
}

// titlesByID answers the titles of ids that exist and f keeps, in the
// order of ids.
func (a *API) titlesByID(ids []string, f titleFilter) titlePage {
	page := titlePage{Titles: make([]titleView, 0, len(ids))}
	a.read(func(s *fsm.State) {
		for _, id := range ids {
			if t := s.Titles[id]; t != nil && f.keep(t) {
				page.Titles = append(page.Titles, titleViewOf(t))
			}
		}
	})
	return page
}

// pageLimit parses ?limit=.
func pageLimit(s string) (int, error) {
	if s == "" {
		return defaultPage, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxPage {
		return 0, gateway.Errorf(http.StatusBadRequest, "limit %q: want a number from 1 to %d", s, maxPage)
	}
	return n, nil
}

// parseIDs parses ?ids=: title ids separated by commas, each kept once.
func parseIDs(s string) ([]string, error) {
	var ids []string
	for id := range strings.SplitSeq(s, ",") {
		if id = strings.TrimSpace(id); id == "" || slices.Contains(ids, id) {
			continue
		}
		if err := fillcast.ValidateTitleID(id); err != nil {
			return nil, gateway.Errorf(http.StatusBadRequest, "ids: %v", err)
		}
		if ids = append(ids, id); len(ids) > maxIDs {
			return nil, gateway.Errorf(http.StatusBadRequest, "ids: more than %d titles: ask for them in several requests", maxIDs)
		}
	}
	return ids, nil
}

// A cursor is the last id a page looked at, base64url: opaque to
// clients, so that it may carry more later.
func encodeCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

func decodeCursor(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || fillcast.ValidateTitleID(string(b)) != nil {
		return "", gateway.Errorf(http.StatusBadRequest, "cursor %q is not one this listing made: pass next_cursor as it came, or no cursor for the first page", s)
	}
	return string(b), nil
}

// getTitle answers a title as every write acknowledged before the
// request left it (a linearizable read), or 503. ?files=1 adds its
// files, from its file list, for those who may read lists (a viewer
// gets 403: a list may be fetched from the origin, and be tens of MiB).
func (a *API) getTitle(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var withFiles bool
	switch v := r.URL.Query().Get("files"); v {
	case "", "0", "false":
	case "1", "true":
		withFiles = true
	default:
		return gateway.Errorf(http.StatusBadRequest, "files %q: want 1 to include the title's files, or 0", v)
	}
	if withFiles && !mayReadLists(r.Context()) {
		return gateway.Errorf(http.StatusForbidden, "files=1 is for operators (operator, ingest or read scope), nodes and appliances: a title's files_digest, bytes, file_count, poster and downloads are in its answer without it")
	}
	if err := a.current(r.Context()); err != nil {
		return err
	}
	if err := a.mayView(r.Context(), id); err != nil {
		return err
	}
	var v *titleView
	a.read(func(s *fsm.State) {
		if t := s.Titles[id]; t != nil {
			tv := titleViewOf(t)
			v = &tv
		}
	})
	if v == nil {
		return gateway.Errorf(http.StatusNotFound, "title %q not found", id)
	}
	if withFiles && v.FilesDigest != "" {
		body, err := a.fileList(r.Context(), id, v.FilesDigest)
		if err != nil {
			return err
		}
		files, _, err := filelist.DecodeAll(body)
		if err != nil {
			return &gateway.Error{Status: http.StatusBadGateway, Message: "the title's file list does not decode", Err: err}
		}
		v.Files = files
	}
	return gateway.WriteJSON(w, http.StatusOK, v)
}
