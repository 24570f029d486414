package search

import (
	"cmp"
	"hash/maphash"
	"slices"
	"sync"
	"unicode/utf8"
)

// Typo tolerance does not use bleve's fuzzy queries: each of those
// builds a Levenshtein automaton for the word (100-350 kB and about
// 0.3 ms, per word and per field) and walks the field's term
// dictionary with it, which made typo tolerance most of a search's
// allocation and its GC-driven tail. Instead the index keeps its own
// vocabulary of the words in the fuzzy fields with a symmetric-delete
// table (as in Wolf Garbe's SymSpell): a word's neighbours within one or
// two edits are found with a few dozen map lookups, then verified with
// the optimal-string-alignment distance, which counts a swap of two
// neighbouring letters as one edit (bleve's automaton counts it as two).
// The matching words then become plain term queries.

// Fuzzy fields, as bits of vocab.terms.
const (
	inName uint8 = 1 << iota
	inCast
	inGenre
	inDescription
)

// Bounds of typo tolerance.
const (
	// minFuzzyRunes is the shortest word matched with a typo: below it,
	// one edit reaches too large a share of the dictionary.
	minFuzzyRunes = 4
	// twoEditRunes is the shortest word allowed two edits.
	twoEditRunes = 8
	// maxFuzzyWords bounds the words of a query that get typo
	// tolerance.
	maxFuzzyWords = 6
	// maxFuzzyTerms bounds the neighbours of one word, closest first,
	// which bounds the term queries a search runs.
	maxFuzzyTerms = 8
)

// vocab is the vocabulary of the fuzzy fields. Words are added as titles
// are indexed and never removed (a word left by a deleted title costs a
// term lookup that finds nothing); Rebuild starts a fresh one.
type vocab struct {
	seed maphash.Seed

	mu    sync.RWMutex
	terms map[string]uint8 // word → fields it occurs in
	// deletes maps the hash of a word with up to two runes deleted
	// (one for words shorter than twoEditRunes-2, which no two-edit
	// query can reach) to the words that give it. A hash collision only
	// adds a candidate that verification drops.
	deletes map[uint64][]string
}

func newVocab() *vocab {
	return &vocab{seed: maphash.MakeSeed(), terms: map[string]uint8{}, deletes: map[uint64][]string{}}
}

// add records that word occurs in the fields of mask.
func (v *vocab) add(word string, mask uint8) {
	if utf8.RuneCountInString(word) < minFuzzyRunes-1 {
		return // no query word of minFuzzyRunes is one edit away
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	old, ok := v.terms[word]
	v.terms[word] = old | mask
	if ok {
		return
	}
	edits := 1
	if utf8.RuneCountInString(word) >= twoEditRunes-2 {
		edits = 2
	}
	eachDelete(word, edits, func(d string) {
		h := maphash.String(v.seed, d)
		if !slices.Contains(v.deletes[h], word) {
			v.deletes[h] = append(v.deletes[h], word)
		}
	})
}

// merge adds every word of o.
func (v *vocab) merge(o *vocab) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	for w, m := range o.terms {
		v.add(w, m)
	}
}

// len returns the number of words.
func (v *vocab) len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.terms)
}

// neighbour is a word of the vocabulary near a query word.
type neighbour struct {
	word   string
	fields uint8
	edits  int
}

// near returns up to maxFuzzyTerms words within the typo budget of w
// (one edit, two from twoEditRunes runes on), not w itself, with the
// same first letter (people rarely mistype it, and it keeps unrelated
// words out), closest first. Words shorter than minFuzzyRunes get none.
//
// A word spelled as it is in a field is taken as meant there: each
// neighbour's fields leave out those where w itself occurs, as search
// engines that correct typos only for unknown words do (Typesense,
// Algolia). "storm" then does not also find "stork" in names, and a
// correctly spelled query, the common case, adds no clauses at all.
func (v *vocab) near(w string, dst []neighbour) []neighbour {
	n := utf8.RuneCountInString(w)
	if n < minFuzzyRunes {
		return dst
	}
	edits := 1
	if n >= twoEditRunes {
		edits = 2
	}
	first, _ := utf8.DecodeRuneInString(w)
	start := len(dst)
	v.mu.RLock()
	known := v.terms[w]
	if known == inName|inCast|inGenre|inDescription {
		v.mu.RUnlock()
		return dst
	}
	eachDelete(w, edits, func(d string) {
		for _, t := range v.deletes[maphash.String(v.seed, d)] {
			if t == w {
				continue
			}
			if r, _ := utf8.DecodeRuneInString(t); r != first {
				continue
			}
			if slices.ContainsFunc(dst[start:], func(c neighbour) bool { return c.word == t }) {
				continue
			}
			fields := v.terms[t] &^ known
			if fields == 0 {
				continue
			}
			if e := osaDistance(w, t, edits); e <= edits {
				dst = append(dst, neighbour{word: t, fields: fields, edits: e})
			}
		}
	})
	v.mu.RUnlock()
	found := dst[start:]
	slices.SortFunc(found, func(a, b neighbour) int {
		if c := cmp.Compare(a.edits, b.edits); c != 0 {
			return c
		}
		return cmp.Compare(a.word, b.word)
	})
	return dst[:start+min(len(found), maxFuzzyTerms)]
}

// eachDelete calls f with w and with every string made by deleting up
// to edits runes from w (duplicates included).
func eachDelete(w string, edits int, f func(string)) {
	f(w)
	if edits == 0 || w == "" {
		return
	}
	for i := 0; i < len(w); {
		_, size := utf8.DecodeRuneInString(w[i:])
		d := w[:i] + w[i+size:]
		if edits == 1 {
			f(d)
		} else {
			eachDelete(d, edits-1, f)
		}
		i += size
	}
}

// osaDistance is the optimal-string-alignment distance between a and b
// in runes (insertions, deletions, substitutions and swaps of
// neighbours), or limit+1 when it exceeds limit.
func osaDistance(a, b string, limit int) int {
	ra, rb := []rune(a), []rune(b)
	if d := len(ra) - len(rb); d > limit || -d > limit {
		return limit + 1
	}
	// Three rows of the dynamic programme: i-2, i-1 and i.
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		best := cur[0]
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			c := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				c = min(c, prev2[j-2]+1)
			}
			cur[j] = c
			best = min(best, c)
		}
		if best > limit {
			return limit + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(rb)], limit+1)
}
