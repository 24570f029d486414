package search

import (
	"context"
	"fmt"
	"testing"
)

func TestOSADistance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b  string
		limit int
		want  int
	}{
		{"matrix", "matrix", 2, 0},
		{"matrix", "matirx", 2, 1}, // a swap is one edit
		{"godfather", "godfater", 2, 1},
		{"casablanca", "casablanka", 2, 1},
		{"storm", "stork", 1, 1},
		{"storm", "strong", 1, 2}, // over the limit: limit+1
		{"café", "cafe", 1, 1},    // runes, not bytes
		{"abc", "abcdef", 2, 3},
	}
	for _, tt := range tests {
		t.Run(tt.a+"/"+tt.b, func(t *testing.T) {
			if got := osaDistance(tt.a, tt.b, tt.limit); got != tt.want {
				t.Errorf("osaDistance(%q, %q, %d) = %d, want %d", tt.a, tt.b, tt.limit, got, tt.want)
			}
		})
	}
}

func TestVocabNear(t *testing.T) {
	t.Parallel()
	v := newVocab()
	v.add("matrix", inName)
	v.add("matrix", inDescription)
	v.add("simulation", inDescription)
	v.add("storm", inName)
	v.add("stork", inName|inDescription)
	v.add("mat", inCast)
	v.add("ma", inCast) // too short: no four-letter word is one edit away
	tests := []struct {
		word string
		want string // word:fields:edits of each neighbour
	}{
		{"matirx", "[matrix:9:1]"},
		{"simulaton", "[simulation:8:1]"},
		{"simulatoin", "[simulation:8:1]"},
		{"smiulaton", "[simulation:8:2]"},
		// A known word is matched exactly where it occurs: "stork" is
		// offered only in descriptions, where "storm" is not.
		{"storm", "[stork:8:1]"},
		{"matrix", "[]"},
		{"xatrix", "[]"}, // the first letter must be right
		{"mats", "[mat:2:1]"},
		{"mam", "[]"}, // too short to correct
	}
	for _, tt := range tests {
		t.Run(tt.word, func(t *testing.T) {
			var got []string
			for _, n := range v.near(tt.word, nil) {
				got = append(got, fmt.Sprintf("%s:%d:%d", n.word, n.fields, n.edits))
			}
			if s := fmt.Sprint(got); s != tt.want {
				t.Errorf("near(%q) = %s, want %s", tt.word, s, tt.want)
			}
		})
	}
}

// TestTypoEveryField checks typo tolerance beyond names: description,
// cast and genre words are found with a typo, and a name matched with a
// typo still ranks above a description matched exactly or with a typo.
func TestTypoEveryField(t *testing.T) {
	t.Parallel()
	x := newIndex(t, DefaultConfig())
	ctx := context.Background()
	tests := []struct {
		name, q, want string
	}{
		{"description", "simulaton", "the-matrix"},
		{"description two edits", "smiulaton", "the-matrix"},
		{"cast", "hamil", "star-wars"},
		{"genre", "fantsy", "stardust"},
		{"description words", "ballons house", "up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := x.Search(ctx, Request{Q: tt.q})
			if err != nil {
				t.Fatal(err)
			}
			if r := rankOf(res, tt.want); r < 0 || r > 2 {
				t.Errorf("Search(%q) = %v, want %s in the top 3", tt.q, ids(res), tt.want)
			}
		})
	}
	// "matirx": the-matrix by name, office-space by description.
	res, err := x.Search(ctx, Request{Q: "matirx"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(res); rankOf(res, "the-matrix") != 0 || rankOf(res, "office-space") < 1 {
		t.Errorf("Search(matirx) = %v, want the-matrix first and office-space after", got)
	}
}

// TestEveryWordFirst checks that a query of several words prefers titles
// with all of them, and falls back to any word when no title has all.
func TestEveryWordFirst(t *testing.T) {
	t.Parallel()
	x := newIndex(t, DefaultConfig())
	ctx := context.Background()
	res, err := x.Search(ctx, Request{Q: "matrix hacker"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(res); len(got) != 1 || got[0] != "the-matrix" {
		t.Errorf("Search(matrix hacker) = %v, want only the-matrix", got)
	}
	res, err = x.Search(ctx, Request{Q: "godfather zzzzzz"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(res); len(got) == 0 || got[0] != "the-godfather" {
		t.Errorf("Search(godfather zzzzzz) = %v, want the-godfather first", got)
	}
}
