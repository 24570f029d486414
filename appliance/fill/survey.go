package fill

import (
	"maps"
	"slices"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/filelist"
)

// stamp is what a survey depends on: when none of it changed, a survey
// would find what the last one did.
type stamp struct {
	m        *manifest
	capacity int64
	lists    uint64
	// all and pinned are the cache's Generations.
	all, pinned uint64
}

// same reports whether s and o are one state; the changes of objects not
// pinned count only when watchAll (planned files past the capacity are
// not pinned).
func (s stamp) same(o stamp, watchAll bool) bool {
	if !watchAll {
		s.all, o.all = 0, 0
	}
	return s == o
}

// stampLocked returns the stamp of now; e.mu is held.
func (e *Executor) stampLocked() stamp {
	all, pinned := e.cache.Generations()
	return stamp{m: e.manifest, capacity: e.cache.Capacity(), lists: e.lists, all: all, pinned: pinned}
}

// survey walks the lists of the manifest in force: it pins the files it
// plans that fit in the cache's capacity, and only those, with the lists
// of their titles, and counts the planned and present totals and the
// complete titles. It walks only when the manifest, the capacity or the
// lists on disk changed since the last survey (and pins only then), or,
// unless pinsOnly, what the cache holds of the planned files (to count).
//
// A title whose list (its digest changed) is not on disk yet keeps the
// files and list of the version of it walked last pinned, while that
// list is on disk, until its own is: a list that cannot be fetched
// leaves the title as it was, not evictable.
func (e *Executor) survey(pinsOnly bool) {
	e.surveyMu.Lock()
	defer e.surveyMu.Unlock()
	e.mu.Lock()
	st, last, prev := e.stampLocked(), e.surveyed, e.walked
	e.mu.Unlock()
	m := st.m
	if m == nil {
		return
	}
	repin := st.m != last.stamp.m || st.capacity != last.stamp.capacity || st.lists != last.stamp.lists
	if !repin && (pinsOnly || st.same(last.stamp, last.over > 0)) {
		return
	}
	var s Status
	missing := 0
	fit := fitter{capacity: st.capacity}
	keys := map[string]bool{}
	walked := make(map[string]*fillcast.ManifestTitle, len(m.Titles))
	complete := make([]string, 0, len(m.Titles))
	past := map[string]bool{}
	for i := range m.Titles {
		t := &m.Titles[i]
		if fit.total >= fit.capacity {
			past[t.ID] = true
		}
		whole := true
		by, listFits := e.walkTitle(t, prev[t.ID], &fit, func(f fillcast.File, fits, current bool) bool {
			key := t.ID + "/" + f.Path
			if fits && repin {
				keys[key] = true
			}
			if !current {
				return true
			}
			s.PlannedFiles++
			s.PlannedBytes += f.Size
			if e.cache.Has(key) {
				s.PresentFiles++
				s.PresentBytes += f.Size
			} else if whole = false; fits {
				missing++
			}
			return true
		})
		if by != nil && listFits && by.FilesDigest != "" && repin {
			keys[filelist.Path(t.ID, by.FilesDigest)] = true
		}
		switch {
		case by == t:
			walked[t.ID] = t
		case by != nil: // a copy, so that no older manifest stays in memory
			v := *by
			walked[t.ID] = &v
		}
		if by != t {
			s.MissingLists++
			s.PlannedFiles += t.FileCount
			s.PlannedBytes += t.Bytes
			whole = false
		}
		if whole {
			complete = append(complete, t.ID)
		}
	}
	if repin && !maps.Equal(keys, e.pinnedKeys) {
		e.cache.Pin(keys) // the cache keeps keys: never changed from here on
		e.pinnedKeys = keys
	}
	if repin && fit.over > 0 {
		e.log.Warn("fill: the manifest plans more than the cache holds: the last files are neither pinned nor filled",
			"version", m.Version, "capacity", st.capacity, "over_bytes", fit.over)
	}
	slices.Sort(complete)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.surveyed.stamp, e.surveyed.over, e.surveyed.missing, e.surveyed.past = st, fit.over, missing, past
	e.walked = walked
	if e.manifest == m {
		e.complete = complete
	}
	e.status.ManifestVersion, e.status.Window = m.Version, m.FillWindow
	e.status.PlannedFiles, e.status.PlannedBytes = s.PlannedFiles, s.PlannedBytes
	e.status.PresentFiles, e.status.PresentBytes = s.PresentFiles, s.PresentBytes
	e.status.OverCapacityBytes, e.status.MissingLists = fit.over, s.MissingLists
}

// fitter counts a manifest's lists and files, in its order, against a
// capacity.
type fitter struct{ capacity, total, over int64 }

// add counts an object of size bytes and reports whether it fits.
func (f *fitter) add(size int64) bool {
	if f.total += size; f.total > f.capacity {
		f.over += size
		return false
	}
	return true
}

// skip counts the files of a title whose list is not on disk by their
// total (the manifest's): the titles after it fit as they will once it
// is.
func (f *fitter) skip(size int64) {
	before := f.total
	f.total += size
	f.over += max(0, f.total-max(before, f.capacity))
}

// walkTitle calls fn with each file of t, in path order, whether it fits
// (counted by fit) and whether it is t's (current), until fn returns
// false: the files of t's list when it is on disk, else, when prev (t as
// walked before) names another list that is, the files of that one. The
// list's own bytes count first; listFits says whether they fit. It
// returns the version walked, t or prev, or nil when neither list is on
// disk: t then counts by its manifest's bytes.
func (e *Executor) walkTitle(t, prev *fillcast.ManifestTitle, fit *fitter, fn func(f fillcast.File, fits, current bool) bool) (by *fillcast.ManifestTitle, listFits bool) {
	for i, v := range [2]*fillcast.ManifestTitle{t, prev} {
		if i == 1 && (v == nil || v.FilesDigest == t.FilesDigest) {
			break
		}
		listFits = true
		if e.eachFile(v, func(size int64) { listFits = fit.add(size) }, func(f fillcast.File) bool {
			return fn(f, fit.add(f.Size), i == 0)
		}) {
			return v, listFits
		}
	}
	fit.skip(t.Bytes)
	return nil, false
}
