package fill

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/fillcast/fillcast/filelist"
)

// fetchLists fetches the file lists of the manifest's titles that are not
// on disk (but those of titles the last survey found wholly past the
// capacity), Config.Parallel at a time, in or out of the fill window (a list
// is small, and the pins need it), within the bandwidth cap. A list that
// cannot be had is an error for its title only, retried at the next pass.
func (e *Executor) fetchLists(ctx context.Context) {
	e.mu.Lock()
	m, past := e.manifest, e.surveyed.past
	e.mu.Unlock()
	if m == nil {
		return
	}
	var missing []*fillcast.ManifestTitle
	for i := range m.Titles {
		if t := &m.Titles[i]; t.FilesDigest != "" && !past[t.ID] && !e.cache.Has(filelist.Path(t.ID, t.FilesDigest)) {
			missing = append(missing, t)
		}
	}
	if len(missing) == 0 {
		return
	}
	todo := make(chan *fillcast.ManifestTitle)
	var wg sync.WaitGroup
	for range min(e.cfg.Parallel, len(missing)) {
		wg.Go(func() {
			for t := range todo {
				e.fetchListOf(ctx, t)
			}
		})
	}
	for _, t := range missing {
		select {
		case todo <- t:
			continue
		case <-ctx.Done():
		}
		break
	}
	close(todo)
	wg.Wait()
}

// fetchListOf fetches t's list and books the outcome.
func (e *Executor) fetchListOf(ctx context.Context, t *fillcast.ManifestTitle) {
	err := e.fetchList(ctx, t)
	if err != nil && ctx.Err() != nil {
		return
	}
	if err != nil {
		e.failed(err)
		e.log.Warn("fill: file list not fetched; its title is not filled until it is (retried at the next pass)",
			"title", t.ID, "digest", t.FilesDigest, "err", err)
		return
	}
	e.mu.Lock()
	e.lists++
	e.mu.Unlock()
}

// fetchList stores t's list from Source (site peers, then the origin),
// else from FileLists, checked against its digest, and checks that it
// decodes.
func (e *Executor) fetchList(ctx context.Context, t *fillcast.ManifestTitle) error {
	key := filelist.Path(t.ID, t.FilesDigest)
	err := e.storeList(ctx, key, t.FilesDigest, func() (*cache.Fetched, error) {
		f, err := e.src.Fetch(ctx, key)
		if err == nil {
			f.Body = &limitedBody{ctx: ctx, l: e, rc: f.Body, open: func() bool { return true }}
		}
		return f, err
	})
	if err != nil && e.fileLists != nil && ctx.Err() == nil {
		cerr := e.storeList(ctx, key, t.FilesDigest, func() (*cache.Fetched, error) {
			body, err := e.fileLists.FileList(ctx, t.ID, t.FilesDigest)
			if err != nil {
				return nil, err
			}
			return &cache.Fetched{
				Meta: cache.Meta{Size: int64(len(body)), ContentType: "text/plain; charset=utf-8", ETag: `"` + t.FilesDigest + `"`},
				Body: io.NopCloser(bytes.NewReader(body)),
			}, nil
		})
		if cerr == nil {
			e.log.Info("fill: file list fetched from the control plane", "title", t.ID, "digest", t.FilesDigest, "source_err", err)
			err = nil
		} else {
			err = errors.Join(err, cerr)
		}
	}
	if err != nil {
		return fmt.Errorf("fill: title %s: file list %s: %w", t.ID, t.FilesDigest, err)
	}
	if _, err := e.readList(t, nil, func(fillcast.File) bool { return true }); err != nil {
		e.cache.Purge(key)
		return fmt.Errorf("fill: title %s: file list %s: %w", t.ID, t.FilesDigest, err)
	}
	return nil
}

// storeList stores the list fetch returns under key, checked against
// digest (its SHA-256: Store refuses other bytes).
func (e *Executor) storeList(ctx context.Context, key, digest string, fetch func() (*cache.Fetched, error)) error {
	f, err := fetch()
	if err != nil {
		return err
	}
	_, err = e.cache.Store(ctx, key, f, digest)
	return err
}

// errStop ends a walk its callback stopped.
var errStop = errors.New("fill: walk stopped")

// eachFile calls sized with the size of t's list (not for a title of a
// previous release's manifest, which has none), then fn with each of t's
// files, in path order, until fn returns false. It reports false, without
// calling either, when t's list is not on disk, or is there but does not
// decode or is not the digest's (it is purged then, and fetched again at
// the next pass).
func (e *Executor) eachFile(t *fillcast.ManifestTitle, sized func(int64), fn func(fillcast.File) bool) bool {
	held, err := e.readList(t, sized, fn)
	if err != nil {
		e.dropList(t, err)
	}
	return held
}

// readList is eachFile but for what it does with a list that does not
// decode or is not the digest's: it only says why. sized may be nil.
func (e *Executor) readList(t *fillcast.ManifestTitle, sized func(int64), fn func(fillcast.File) bool) (bool, error) {
	if t.FilesDigest == "" { // a control plane of the previous release
		each(t.Files, fn)
		return true, nil
	}
	if sized == nil {
		sized = func(int64) {}
	}
	key := filelist.Path(t.ID, t.FilesDigest)
	if d, ok := e.decoded.get(key); ok {
		sized(d.size)
		each(d.files, fn)
		return true, nil
	}
	h, ok := e.cache.Peek(key)
	if !ok {
		return false, nil
	}
	size := h.Meta.Size
	r, err := h.Stream(context.Background(), 0, -1) // a file: Peek reads no body
	if err != nil {
		h.Release()
		return false, err
	}
	defer r.(io.Closer).Close()
	// A list of up to Config.ListFiles files is decoded whole into memory
	// and checked against its digest before anything is done with it; a
	// longer one is streamed from there on (the cache checked the digest
	// when it stored it, and checks its objects' CRCs). The count is the
	// list's own, not the manifest's.
	var files []fillcast.File
	streamed := false
	s, err := filelist.Decode(r, func(f fillcast.File) error {
		if !streamed && len(files) < e.cfg.ListFiles {
			files = append(files, f)
			return nil
		}
		if !streamed {
			streamed = true
			sized(size)
			kept := files
			files = nil
			if !each(kept, fn) {
				return errStop
			}
		}
		if !fn(f) {
			return errStop
		}
		return nil
	})
	switch {
	case errors.Is(err, errStop):
		return true, nil
	case err == nil && s.Digest != t.FilesDigest:
		err = fmt.Errorf("%w: its digest is %s", filelist.ErrList, s.Digest)
	}
	if err != nil {
		return false, err
	}
	if !streamed {
		e.decoded.add(key, size, files)
		sized(size)
		each(files, fn)
	}
	return true, nil
}

// each calls fn with each of files until it returns false, and reports
// whether it never did.
func each(files []fillcast.File, fn func(fillcast.File) bool) bool {
	for _, f := range files {
		if !fn(f) {
			return false
		}
	}
	return true
}

// dropList purges t's list, which could not be read or decoded, so that
// it is fetched again.
func (e *Executor) dropList(t *fillcast.ManifestTitle, why error) {
	e.cache.Purge(filelist.Path(t.ID, t.FilesDigest))
	err := fmt.Errorf("fill: title %s: file list %s: %w", t.ID, t.FilesDigest, why)
	e.mu.Lock()
	e.lists++
	e.status.LastError = err.Error()
	e.mu.Unlock()
	e.log.Warn("fill: file list dropped; fetched again at the next pass", "title", t.ID, "err", err)
}

// listLRU keeps the decoded file lists used last, up to a number of
// files in all. It is safe for concurrent use.
type listLRU struct {
	max int

	mu    sync.Mutex
	files int
	order *list.List // of *decodedList, used last first
	byKey map[string]*list.Element
}

type decodedList struct {
	key   string
	size  int64 // the encoded list's bytes
	files []fillcast.File
}

func newListLRU(maxFiles int) *listLRU {
	return &listLRU{max: maxFiles, order: list.New(), byKey: map[string]*list.Element{}}
}

// get returns key's list; the caller must not change it.
func (l *listLRU) get(key string) (*decodedList, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.byKey[key]
	if !ok {
		return nil, false
	}
	l.order.MoveToFront(el)
	return el.Value.(*decodedList), true
}

// add keeps files, of an encoded list of size bytes, as key's, evicting the lists used least recently
// beyond the bound; a list over the bound alone is not kept.
func (l *listLRU) add(key string, size int64, files []fillcast.File) {
	if len(files) > l.max {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.byKey[key]; ok {
		return
	}
	l.byKey[key] = l.order.PushFront(&decodedList{key, size, files})
	for l.files += len(files); l.files > l.max; {
		last := l.order.Back()
		d := last.Value.(*decodedList)
		l.order.Remove(last)
		delete(l.byKey, d.key)
		l.files -= len(d.files)
	}
}
