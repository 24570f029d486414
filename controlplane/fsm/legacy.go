package fsm

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/filelist"
)

// Lists of the previous release. It stored every title's files in the
// state and accepted what filelist.Encode refuses: a sha256 of any 64
// characters (upper-case or not hex) and a path given twice. Its log
// entries (Apply) and snapshots (Restore) still hold such lists, which
// the upgrade must neither refuse nor lose a title over; only a new
// write (Command.Validate, ValidateTitle) is held to the strict list.

// encodeFiles is filelist.Encode; with legacy, a list it refuses is
// normalized (normalizeFiles) and encoded again.
func encodeFiles(files []fillcast.File, legacy bool) ([]byte, filelist.Summary, error) {
	body, sum, err := filelist.Encode(files)
	if err == nil || !legacy {
		return body, sum, err
	}
	return filelist.Encode(normalizeFiles(files))
}

// normalizeFiles returns a copy of files that the previous release
// accepted as filelist.Encode accepts them, deterministically: a sha256
// of hex digits is lower-cased and any other one blanked (an empty
// sha256 is valid: the file is not checked), and of the entries of a
// path given more than once the last one is kept, as a map filled in
// order would. The rest (paths, sizes) the previous release checked as
// Encode does.
func normalizeFiles(files []fillcast.File) []fillcast.File {
	last := make(map[string]int, len(files))
	for i, f := range files {
		last[f.Path] = i
	}
	out := make([]fillcast.File, 0, len(last))
	for i, f := range files {
		if last[f.Path] != i {
			continue
		}
		if f.SHA256 != "" && !filelist.ValidDigest(f.SHA256) {
			if lower := strings.ToLower(f.SHA256); filelist.ValidDigest(lower) {
				f.SHA256 = lower
			} else {
				f.SHA256 = ""
			}
		}
		out = append(out, f)
	}
	return out
}

// normalizeRestored moves the file lists out of the titles of a
// restored state (a snapshot or backup of the previous release holds
// every title's files), checks its pending lists and builds the id
// index. It returns how many titles' lists it moved, and how many it
// could not use even normalized (their titles are kept without a list:
// a restore fails for no one title).
func normalizeRestored(s *State) (moved, dropped int, err error) {
	for k, l := range s.FileLists {
		switch {
		case fillcast.ValidateTitleID(l.Title) != nil || !filelist.ValidDigest(l.Digest) || k != filelist.Path(l.Title, l.Digest):
			return 0, 0, fmt.Errorf("fsm: restore: file list %q is not one of title %q of digest %q", k, l.Title, l.Digest)
		case filelist.Digest(l.Body) != l.Digest:
			return 0, 0, fmt.Errorf("fsm: restore: file list %q: its body's digest is %s", k, filelist.Digest(l.Body))
		case l.Index == 0:
			// Records are immutable: replace, not modify.
			cp := *l
			cp.Index = restoredListIndex
			s.FileLists[k] = &cp
		}
	}
	ids := make([]string, 0, len(s.Titles))
	for id, t := range s.Titles {
		ids = append(ids, id)
		if len(t.Files) == 0 {
			continue
		}
		// The decoded record is this state's alone: no copy needed.
		body, sum, err := encodeFiles(t.Files, true)
		if err != nil || fillcast.ValidateTitleID(id) != nil || id != t.ID {
			t.Files = nil
			dropped++
			continue
		}
		sum.SetOn(t)
		s.addList(id, &encodedList{body: body, sum: sum}, restoredListIndex)
		moved++
	}
	slices.Sort(ids)
	s.order = titleOrder{ids: ids}
	return moved, dropped, nil
}

// ListsMoved returns how many titles' file lists this FSM moved out of
// the titles given to it (by Apply or Restore) since New: nonzero once
// the log or a snapshot held titles with their files, whose pending
// lists, once published, leave a snapshot to take so the old entries
// can be dropped.
func (f *FSM) ListsMoved() uint64 { return f.moved.Load() }

// ListsDropped returns how many titles' file lists Restore dropped since
// New because even normalized (normalizeFiles) they were no valid list:
// the titles were kept without one, to be given their files again.
func (f *FSM) ListsDropped() uint64 { return f.dropped.Load() }
