package steering

import "github.com/fillcast/fillcast/steering/rendezvous"

// TitleSet is the immutable set of titles a flash appliance holds or is
// planned to hold, built when its heartbeat's title list or its fill plan
// changes and shared by every Fleet until then. Membership is checked by
// the title's 64-bit hash (the one steering computes anyway), in an open-
// addressing table, without allocating. It can only be wrong if two
// titles share all 64 bits of hash: for a million-title catalog, about 3
// chances in 10^8 that any pair does. The zero TitleSet is empty.
type TitleSet struct {
	slots []uint64 // 0 is empty; a title hashing to 0 is stored as 1
	n     int
}

// NewTitleSet returns the set of titles; duplicates count once.
func NewTitleSet(titles []string) *TitleSet {
	size := 8
	for size < 2*len(titles) {
		size *= 2
	}
	s := &TitleSet{slots: make([]uint64, size)}
	for _, t := range titles {
		s.insert(rendezvous.Key(t))
	}
	return s
}

func slotKey(k uint64) uint64 {
	if k == 0 {
		return 1
	}
	return k
}

func (s *TitleSet) insert(k uint64) {
	k = slotKey(k)
	mask := uint64(len(s.slots) - 1)
	for i := k & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case k:
			return
		case 0:
			s.slots[i] = k
			s.n++
			return
		}
	}
}

// has reports whether the title with hash k is in the set.
func (s *TitleSet) has(k uint64) bool {
	if len(s.slots) == 0 {
		return false
	}
	k = slotKey(k)
	mask := uint64(len(s.slots) - 1)
	for i := k & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case k:
			return true
		case 0:
			return false
		}
	}
}

// Has reports whether title is in the set.
func (s *TitleSet) Has(title string) bool { return s.has(rendezvous.Key(title)) }

// Len returns the number of distinct titles in the set.
func (s *TitleSet) Len() int { return s.n }
