package search

import (
	"slices"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/standard"
	"github.com/blevesearch/bleve/v2/search/query"
)

// Boosts of the fields in a free-text search: a name match well above
// cast and genre, and those above the description. A word matched with
// a typo counts fuzzyBoost of an exact match, less the share of its
// runes edited, so that a typo in a name still outranks an exact match
// in the description, and a typo in the description ranks below it.
const (
	boostName        = 6
	boostCast        = 2
	boostGenre       = 1
	boostDescription = 0.5
	fuzzyBoost       = 0.5
	// maxFuzzyClauses bounds the term queries typo tolerance adds to
	// one search.
	maxFuzzyClauses = 48
	// maxWords bounds the words of a query matched one by one; a
	// 200-character query has room for a hundred.
	maxWords = 12
)

// textFields lists the fields a free-text search reaches, with their
// analyzer, boost and bit in the typo vocabulary.
var textFields = [...]struct {
	bit      uint8
	field    string
	analyzer string
	boost    float64
}{
	{inName, fieldName, anName, boostName},
	{inCast, fieldCast, anName, boostCast},
	{inGenre, fieldGenre, anKeyword, boostGenre},
	{inDescription, fieldDescription, standard.Name, boostDescription},
}

// textQuery is the free-text query q: each word in any field, exactly
// or (for the first maxFuzzyWords words) within a typo or two; for
// more than one word, the words as a phrase in the name or the
// description rank higher. all requires every word that is not a stop
// word; loose, nil for a single word, requires any.
func (x *Index) textQuery(q string) (all, loose query.Query) {
	words := x.words(q)
	voc := x.voc.Load()
	var near []neighbour
	budget := maxFuzzyClauses
	var required, optional []query.Query
	for i, w := range words {
		qs := make([]query.Query, 0, len(textFields)+4)
		for _, f := range textFields {
			m := bleve.NewMatchQuery(w)
			m.SetField(f.field)
			m.Analyzer = f.analyzer
			m.SetBoost(f.boost)
			qs = append(qs, m)
		}
		if i < maxFuzzyWords {
			near = voc.near(w, near[:0])
			n := float64(utf8.RuneCountInString(w))
			for _, c := range near {
				k := fuzzyBoost * (n - float64(c.edits)) / n
				for _, f := range textFields {
					if c.fields&f.bit == 0 || budget == 0 {
						continue
					}
					tq := bleve.NewTermQuery(c.word)
					tq.SetField(f.field)
					tq.SetBoost(f.boost * k)
					qs = append(qs, tq)
					budget--
				}
			}
		}
		wq := bleve.NewDisjunctionQuery(qs...)
		// A stop word ("the", "of") is not in the description index,
		// so requiring it would drop titles that only describe the rest.
		if len(x.an.description.Analyze([]byte(w))) == 0 {
			optional = append(optional, wq)
		} else {
			required = append(required, wq)
		}
	}
	// The whole query as a genre ("science fiction").
	genre := bleve.NewMatchQuery(q)
	genre.SetField(fieldGenre)
	genre.Analyzer = anKeyword
	genre.SetBoost(boostGenre)
	optional = append(optional, genre)
	if len(words) > 1 {
		optional = append(optional, phrase(q, fieldName, anName, boostName), phrase(q, fieldDescription, standard.Name, 2*boostDescription))
	}
	anyWord := bleve.NewDisjunctionQuery(append(slices.Clone(required), optional...)...)
	if len(words) < 2 || len(required) == 0 {
		return anyWord, nil
	}
	b := bleve.NewBooleanQuery()
	b.AddMust(required...)
	b.AddShould(optional...)
	return b, anyWord
}

// words splits q as the name analyzer does, keeping at most maxWords
// distinct words.
func (x *Index) words(q string) []string {
	var out []string
	for _, tok := range x.an.name.Analyze([]byte(q)) {
		w := string(tok.Term)
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
		if len(out) == maxWords {
			break
		}
	}
	return out
}

func phrase(q, field, analyzer string, boost float64) query.Query {
	p := bleve.NewMatchPhraseQuery(q)
	p.SetField(field)
	p.Analyzer = analyzer
	p.SetBoost(boost)
	return p
}

// phraseQuery is a quoted query: the words in order, in the name, the
// cast or the description.
func phraseQuery(q string) query.Query {
	return bleve.NewDisjunctionQuery(
		phrase(q, fieldName, anName, boostName),
		phrase(q, fieldCast, anName, boostCast),
		phrase(q, fieldDescription, standard.Name, 2*boostDescription),
	)
}
