package fsm

import (
	"cmp"
	"slices"
	"strings"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/filelist"
)

// File lists. The catalog keeps no title's files: a title given with
// them (ingest of the previous release, operators registering packaged
// titles, old log entries and snapshots) is stored with its list's
// summary (filelist.Summary.SetOn), and the encoded list waits in
// State.FileLists until the leader has published it at the origin
// (OpFilesPublished). Titles are kept in id order too (TitlesAfter), for
// the paginated listing.

// OpFilesPublished records that the origin holds a pending file list:
// Command.ID names the title, Command.Digest the list and
// Command.ListIndex the applied index of the state the publisher read it
// from (at least its PendingList.Index). It deletes the pending list
// unless that was added again since (a
// takedown deleted it, with its object at the origin, and the title was
// created again with the same files: Index is then past ListIndex), and
// is no error when there is none.
const OpFilesPublished = "files_published"

// PendingList is a title's encoded file list (filelist.Encode) that the
// state holds until the origin does. It is immutable once stored.
type PendingList struct {
	Title  string `json:"title"`
	Digest string `json:"digest"`
	Body   []byte `json:"body"`
	// Index is the log index of the command that (last) added the
	// list; restoredListIndex for a list Restore moved out of a title of
	// the previous release's snapshot.
	Index uint64 `json:"index"`
}

// restoredListIndex is the Index of the lists Restore moves out of the
// titles of a snapshot of the previous release, where nothing records
// when they were added. No command is applied at index 1 (a cluster's
// first entry is its bootstrap configuration), so it comes before every
// list's Index and any publish of such a list deletes it: the nodes of
// a cluster being upgraded restore snapshots taken at different indexes
// and replay the old entries after them, so one node can have moved a
// list out at the index of the old entry that added it while another
// restored it, with Index 1 (filesPublished).
const restoredListIndex = 1

// encodedList is a title's files as a command gives them, encoded once.
type encodedList struct {
	body []byte
	sum  filelist.Summary
}

// checkFiles checks a title's file list and its summary fields, and
// encodes the list when the title has one; with legacy, a list that
// filelist.Encode refuses is normalized first (normalizeFiles).
func checkFiles(t *fillcast.Title, legacy bool) (*encodedList, error) {
	if t.FilesDigest != "" && !filelist.ValidDigest(t.FilesDigest) {
		return nil, invalid("files_digest %q: want 64 lower-case hex characters", t.FilesDigest)
	}
	if t.Bytes < 0 || t.FileCount < 0 {
		return nil, invalid("bytes and file_count: negative")
	}
	if t.Poster != "" && t.Poster != filelist.PosterPath {
		return nil, invalid("poster %q: want %q or nothing", t.Poster, filelist.PosterPath)
	}
	for i, d := range t.Downloads {
		if !strings.HasPrefix(d, filelist.DownloadDir) || fillcast.ValidateObjectPath(d) != nil {
			return nil, invalid("downloads[%d] %q: want a path under %s", i, d, filelist.DownloadDir)
		}
	}
	if len(t.Files) == 0 {
		if t.FilesDigest == "" && (t.Bytes != 0 || t.FileCount != 0 || t.Poster != "" || len(t.Downloads) > 0) {
			return nil, invalid("bytes, file_count, poster and downloads describe a file list: give files or files_digest")
		}
		return nil, nil
	}
	body, sum, err := encodeFiles(t.Files, legacy)
	if err != nil {
		return nil, invalid("files: %v", err)
	}
	if t.FilesDigest != "" && t.FilesDigest != sum.Digest {
		return nil, invalid("files_digest %s does not match the files given (their list's digest is %s)", t.FilesDigest, sum.Digest)
	}
	return &encodedList{body: body, sum: sum}, nil
}

// putTitle stores a copy of t (the command's title, which may be
// shared), put by the command at index: with list's summary and the list
// pending when it was given with files, with the stored title's summary
// when it was given neither files nor a digest. A title's pending lists
// are at most its digest's: a put with another digest drops the
// previous one's list, never published and superseded now.
func putTitle(s *State, t *fillcast.Title, list *encodedList, index uint64) {
	cp := *t
	prev := s.Titles[cp.ID]
	switch {
	case list != nil:
		list.sum.SetOn(&cp)
		s.addList(cp.ID, list, index)
	case cp.FilesDigest == "" && prev != nil:
		cp.FilesDigest, cp.Bytes, cp.FileCount = prev.FilesDigest, prev.Bytes, prev.FileCount
		cp.Poster, cp.Downloads = prev.Poster, prev.Downloads
	}
	if prev != nil && prev.FilesDigest != "" && prev.FilesDigest != cp.FilesDigest {
		delete(s.FileLists, filelist.Path(cp.ID, prev.FilesDigest))
	}
	s.Titles[cp.ID] = &cp
	if prev == nil {
		s.order.add(cp.ID)
	}
}

// deleteTitle deletes a title and its pending lists.
func deleteTitle(s *State, id string) {
	if _, ok := s.Titles[id]; ok {
		delete(s.Titles, id)
		s.order.remove(id)
	}
	for k, l := range s.FileLists {
		if l.Title == id {
			delete(s.FileLists, k)
		}
	}
}

func (s *State) addList(title string, list *encodedList, index uint64) {
	s.FileLists[filelist.Path(title, list.sum.Digest)] = &PendingList{Title: title, Digest: list.sum.Digest, Body: list.body, Index: index}
}

// checkFilesPublished is the structural check of OpFilesPublished.
func checkFilesPublished(c Command) error {
	if err := fillcast.ValidateTitleID(c.ID); err != nil {
		return invalid("files_published id: %v", err)
	}
	if !filelist.ValidDigest(c.Digest) {
		return invalid("files_published digest %q: want 64 lower-case hex characters", c.Digest)
	}
	if c.ListIndex == 0 {
		return invalid("files_published of %s needs list_index, the pending list's index", c.ID)
	}
	return nil
}

// filesPublished applies OpFilesPublished. A list whose Index is past
// ListIndex was added again after the publisher read it and stays; one
// at or before it goes. (Not only an equal Index: a list Restore moved
// out of an old snapshot has restoredListIndex on some nodes where
// others have the index of the old entry they replayed. A publisher
// that gives as ListIndex the applied index of the state it read the
// list from, at least the list's Index there, deletes it on every node;
// one that gives the Index it read deletes it wherever that is no
// later.)
func filesPublished(s *State, c Command) {
	k := filelist.Path(c.ID, c.Digest)
	if l := s.FileLists[k]; l != nil && l.Index <= c.ListIndex {
		delete(s.FileLists, k)
	}
}

// PendingList returns the body of title's pending list of digest, if
// the state holds it. The body is shared: do not modify it.
func (s *State) PendingList(title, digest string) ([]byte, bool) {
	l := s.FileLists[filelist.Path(title, digest)]
	if l == nil {
		return nil, false
	}
	return l.Body, true
}

// PendingLists returns the lists still to publish, by title then digest.
// The records are shared: do not modify them.
func (s *State) PendingLists() []*PendingList {
	out := make([]*PendingList, 0, len(s.FileLists))
	for _, l := range s.FileLists {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b *PendingList) int {
		return cmp.Or(strings.Compare(a.Title, b.Title), strings.Compare(a.Digest, b.Digest))
	})
	return out
}

// TitlesAfter calls fn with each title whose id sorts after after, in id
// order, until fn returns false.
func (s *State) TitlesAfter(after string, fn func(*fillcast.Title) bool) {
	ids := s.order.ids
	i, found := slices.BinarySearch(ids, after)
	if found {
		i++
	}
	for _, id := range ids[i:] {
		if !fn(s.Titles[id]) {
			return
		}
	}
}

// titleOrder is the sorted index of the titles' ids: kept by Apply,
// rebuilt by Restore, never persisted. Adding or removing an id moves
// the ids after it (a memmove of 16 bytes a title), far cheaper than
// sorting every id again.
type titleOrder struct{ ids []string }

func (o *titleOrder) add(id string) {
	if i, found := slices.BinarySearch(o.ids, id); !found {
		o.ids = slices.Insert(o.ids, i, id)
	}
}

func (o *titleOrder) remove(id string) {
	if i, found := slices.BinarySearch(o.ids, id); found {
		o.ids = slices.Delete(o.ids, i, i+1)
	}
}
