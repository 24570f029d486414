package search

import (
	"cmp"
	"fmt"
	"strconv"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/standard"
	"github.com/blevesearch/bleve/v2/analysis/token/edgengram"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/token/truncate"
	"github.com/blevesearch/bleve/v2/analysis/token/unicodenorm"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/single"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/mapping"
	index "github.com/blevesearch/bleve_index_api"

	"github.com/fillcast/fillcast"
)

// Field and analyzer names of the index mapping.
const (
	fieldName        = "name"
	fieldSuggest     = "suggest"
	fieldDescription = "description"
	fieldCast        = "cast"
	fieldGenre       = "genre"
	fieldYear        = "year"
	fieldMaturity    = "maturity"
	// fieldFacet holds "g:<genre>" and "y:<year>" terms: one field's
	// doc values serve both facets, which halves their cost per match.
	fieldFacet = "facet"

	// anName keeps every word (no stop list: "Up" and "It" are titles).
	anName = "fc_name"
	// anPrefix indexes each word's leading 1..maxPrefix characters.
	anPrefix = "fc_prefix"
	// anPrefixQuery cuts query words to maxPrefix so long ones still
	// meet the indexed prefixes.
	anPrefixQuery = "fc_prefix_query"
	// anKeyword is the whole value, lower-cased: genres.
	anKeyword = "fc_keyword"

	maxPrefix = 20
)

// facetOptions index fieldFacet for its doc values only. They stay
// compressed: with index.SkipDVCompression (which saved about 40% of the
// bytes a faceted search allocates) bleve v2.6.3 counted stale facet
// values once the persister had merged segments holding updated titles
// (TestFacetsOfUpsertedTitles).
const facetOptions = index.IndexField | index.DocValues | index.SkipFreqNorm

func newMapping() (*mapping.IndexMappingImpl, error) {
	m := bleve.NewIndexMapping()
	if err := m.AddCustomTokenFilter("fc_edge", map[string]any{
		"type": edgengram.Name, "min": 1.0, "max": float64(maxPrefix),
	}); err != nil {
		return nil, err
	}
	if err := m.AddCustomTokenFilter("fc_truncate", map[string]any{
		"type": truncate.Name, "length": float64(maxPrefix),
	}); err != nil {
		return nil, err
	}
	if err := m.AddCustomTokenFilter("fc_nfkc", map[string]any{
		"type": unicodenorm.Name, "form": unicodenorm.NFKC,
	}); err != nil {
		return nil, err
	}
	analyzers := map[string][]string{
		anName:        {"fc_nfkc", lowercase.Name},
		anPrefix:      {"fc_nfkc", lowercase.Name, "fc_edge"},
		anPrefixQuery: {"fc_nfkc", lowercase.Name, "fc_truncate"},
	}
	for name, filters := range analyzers {
		if err := m.AddCustomAnalyzer(name, map[string]any{
			"type": custom.Name, "tokenizer": unicode.Name, "token_filters": filters,
		}); err != nil {
			return nil, err
		}
	}
	if err := m.AddCustomAnalyzer(anKeyword, map[string]any{
		"type": custom.Name, "tokenizer": single.Name, "token_filters": []string{lowercase.Name},
	}); err != nil {
		return nil, err
	}
	field := func(analyzer string, positions, docValues, store bool) *mapping.FieldMapping {
		f := bleve.NewTextFieldMapping()
		f.Analyzer = analyzer
		f.Store = store
		f.IncludeTermVectors = positions // phrase queries need positions
		f.IncludeInAll = false
		f.DocValues = docValues // facets read doc values
		return f
	}
	doc := bleve.NewDocumentStaticMapping()
	doc.AddFieldMappingsAt(fieldName, field(anName, true, false, true))
	doc.AddFieldMappingsAt(fieldSuggest, field(anPrefix, false, false, false))
	doc.AddFieldMappingsAt(fieldDescription, field(standard.Name, true, false, false))
	doc.AddFieldMappingsAt(fieldCast, field(anName, true, false, false))
	doc.AddFieldMappingsAt(fieldGenre, field(anKeyword, false, false, false))
	doc.AddFieldMappingsAt(fieldYear, field(anKeyword, false, false, false))
	doc.AddFieldMappingsAt(fieldMaturity, field(anKeyword, false, false, false))
	// The mapping names fieldFacet for the record; titles get it from
	// titleDoc, with facetOptions, which a mapping cannot express.
	doc.AddFieldMappingsAt(fieldFacet, field(anKeyword, false, true, false))
	// No field goes into _all, so the composite field is only cost.
	doc.AddSubDocumentMapping("_all", bleve.NewDocumentDisabledMapping())
	m.DefaultMapping = doc
	m.DefaultAnalyzer = anName
	m.StoreDynamic = false
	m.IndexDynamic = false
	m.DocValuesDynamic = false
	return m, m.Validate()
}

// analyzers are the mapping's analyzers that indexing and queries use
// outside bleve's query parsing.
type analyzers struct {
	name, keyword, description analysis.Analyzer
}

func newAnalyzers(m mapping.IndexMapping) (analyzers, error) {
	a := analyzers{
		name:        m.AnalyzerNamed(anName),
		keyword:     m.AnalyzerNamed(anKeyword),
		description: m.AnalyzerNamed(standard.Name),
	}
	if a.name == nil || a.keyword == nil || a.description == nil {
		return a, fmt.Errorf("search: index mapping lacks the %s, %s or %s analyzer", anName, anKeyword, standard.Name)
	}
	return a, nil
}

// titleDoc is the document the index holds for a title.
func (x *Index) titleDoc(t *fillcast.Title) (*document.Document, error) {
	d := map[string]any{
		fieldName:        t.Name,
		fieldSuggest:     t.Name,
		fieldDescription: t.Description,
		fieldCast:        t.Cast,
		fieldGenre:       t.Genres,
		fieldMaturity:    cmp.Or(t.Maturity, fillcast.MaturityAll),
	}
	if t.Year > 0 {
		d[fieldYear] = strconv.Itoa(t.Year)
	}
	doc := document.NewDocument(t.ID)
	if err := x.idx.Mapping().MapDocument(doc, d); err != nil {
		return nil, fmt.Errorf("search: map %s: %w", t.ID, err)
	}
	pos := uint64(0)
	facet := func(term string) {
		doc.AddField(document.NewTextFieldCustom(fieldFacet, []uint64{pos}, []byte(term), facetOptions, x.an.keyword))
		pos++
	}
	for _, g := range t.Genres {
		facet(genrePrefix + g)
	}
	if t.Year > 0 {
		facet(yearPrefix + strconv.Itoa(t.Year))
	}
	return doc, nil
}

// learn adds the words of t's fuzzy fields to v, analysed as the index
// analyses them.
func (x *Index) learn(v *vocab, t *fillcast.Title) {
	words := func(a analysis.Analyzer, text string, mask uint8) {
		for _, tok := range a.Analyze([]byte(text)) {
			v.add(string(tok.Term), mask)
		}
	}
	words(x.an.name, t.Name, inName)
	words(x.an.description, t.Description, inDescription)
	for _, c := range t.Cast {
		words(x.an.name, c, inCast)
	}
	for _, g := range t.Genres {
		words(x.an.keyword, g, inGenre)
	}
}

// loadVocab fills v from the term dictionaries of an on-disk index.
func (x *Index) loadVocab(v *vocab) error {
	for _, f := range []struct {
		field string
		mask  uint8
	}{{fieldName, inName}, {fieldDescription, inDescription}, {fieldCast, inCast}, {fieldGenre, inGenre}} {
		d, err := x.idx.FieldDict(f.field)
		if err != nil {
			return fmt.Errorf("search: load vocabulary: %w", err)
		}
		for {
			e, err := d.Next()
			if err != nil {
				d.Close()
				return fmt.Errorf("search: load vocabulary: %w", err)
			}
			if e == nil {
				break
			}
			v.add(e.Term, f.mask)
		}
		if err := d.Close(); err != nil {
			return fmt.Errorf("search: load vocabulary: %w", err)
		}
	}
	return nil
}
