package search

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fillcast/fillcast"
)

var catalog = []fillcast.Title{
	{ID: "the-matrix", Name: "The Matrix", Year: 1999, Genres: []string{"Sci-Fi", "Action"},
		Cast: []string{"Keanu Reeves", "Carrie-Anne Moss"}, Description: "A hacker learns that reality is a simulation run by machines."},
	{ID: "office-space", Name: "Office Space", Year: 1999, Genres: []string{"Comedy"},
		Cast: []string{"Ron Livingston"}, Description: "Three workers escape the matrix of cubicles and a soul-crushing job."},
	{ID: "star-wars", Name: "Star Wars", Year: 1977, Genres: []string{"Sci-Fi", "Adventure"}, Maturity: "7+",
		Cast: []string{"Mark Hamill", "Carrie Fisher"}, Description: "A farm boy joins a rebellion against an empire."},
	{ID: "star-trek", Name: "Star Trek", Year: 2009, Genres: []string{"Sci-Fi"},
		Cast: []string{"Chris Pine"}, Description: "A young crew boards a starship."},
	{ID: "stardust", Name: "Stardust", Year: 2007, Genres: []string{"Fantasy"},
		Cast: []string{"Claire Danes"}, Description: "A young man crosses a wall into a magical land to find a fallen star."},
	{ID: "up", Name: "Up", Year: 2009, Genres: []string{"Animation", "Comedy"},
		Cast: []string{"Ed Asner"}, Description: "An old man ties balloons to his house and flies away."},
	{ID: "the-godfather", Name: "The Godfather", Year: 1972, Genres: []string{"Crime", "Drama"}, Maturity: "18+",
		Cast: []string{"Marlon Brando", "Al Pacino"}, Description: "The head of a crime family hands control to his reluctant son."},
	{ID: "casablanca", Name: "Casablanca", Year: 1942, Genres: []string{"Drama", "Romance"},
		Cast: []string{"Humphrey Bogart"}, Description: "A cafe owner in wartime Morocco meets an old flame."},
	{ID: "reality-bites", Name: "Reality Bites", Year: 1994, Genres: []string{"Comedy", "Drama"},
		Cast: []string{"Winona Ryder"}, Description: "Graduates in Houston look for work and love."},
	{ID: "draft", Name: "The Matrix Draft", Status: fillcast.StatusIngesting, Genres: []string{"Sci-Fi"}},
}

func newIndex(t *testing.T, cfg Config) *Index {
	t.Helper()
	x, err := Open(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { x.Close() })
	if err := x.Rebuild(context.Background(), catalog); err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	return x
}

func ids(r *Results) []string {
	var out []string
	for _, h := range r.Results {
		out = append(out, h.ID)
	}
	return out
}

func rankOf(r *Results, id string) int {
	for i, h := range r.Results {
		if h.ID == id {
			return i
		}
	}
	return -1
}

func TestSearchFindsTopThree(t *testing.T) {
	t.Parallel()
	x := newIndex(t, DefaultConfig())
	tests := []struct {
		name, q, want string
	}{
		{"exact", "godfather", "the-godfather"},
		{"typo transposed", "matirx", "the-matrix"},
		{"typo dropped letter", "godfater", "the-godfather"},
		{"typo substituted", "casablanka", "casablanca"},
		{"cast", "keanu reeves", "the-matrix"},
		{"cast typo", "bogrt", "casablanca"},
		{"phrase quoted", `"reality is a simulation"`, "the-matrix"},
		{"phrase unquoted", "fallen star", "stardust"},
		{"short name", "up", "up"},
		{"description word", "balloons", "up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := x.Search(context.Background(), Request{Q: tt.q})
			if err != nil {
				t.Fatal(err)
			}
			if got := rankOf(res, tt.want); got < 0 || got > 2 {
				t.Errorf("Search(%q) = %v, want %s in the top 3", tt.q, ids(res), tt.want)
			}
		})
	}
}

func TestSuggestFindsTopThree(t *testing.T) {
	t.Parallel()
	x := newIndex(t, DefaultConfig())
	tests := []struct {
		prefix, want string
	}{
		{"star w", "star-wars"},
		{"Star T", "star-trek"},
		{"cas", "casablanca"},
		{"god", "the-godfather"},
		{"up", "up"},
		{"the mat", "the-matrix"},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			res, err := x.Suggest(context.Background(), Request{Q: tt.prefix, Limit: 5})
			if err != nil {
				t.Fatal(err)
			}
			if got := rankOf(res, tt.want); got < 0 || got > 2 {
				t.Errorf("Suggest(%q) = %v, want %s in the top 3", tt.prefix, ids(res), tt.want)
			}
			if res.Facets != nil {
				t.Errorf("Suggest returned facets")
			}
		})
	}
	res, err := x.Suggest(context.Background(), Request{Q: "star w", Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(res); len(got) != 1 {
		t.Errorf(`Suggest("star w") = %v, want only star-wars: every word must match`, got)
	}
}

// TestKidsFilter: a kids search or suggestion finds only titles rated
// all or 7+ (unrated titles count as all).
func TestKidsFilter(t *testing.T) {
	x := newIndex(t, Config{})
	ctx := context.Background()
	for _, tt := range []struct {
		q          string
		kids       bool
		want, gone string
	}{
		{"godfather", false, "the-godfather", ""},
		{"godfather", true, "", "the-godfather"},
		{"star", true, "star-wars", ""},
		{"up", true, "up", ""},
	} {
		res, err := x.Search(ctx, Request{Q: tt.q, Kids: tt.kids})
		if err != nil {
			t.Fatal(err)
		}
		sug, err := x.Suggest(ctx, Request{Q: tt.q, Kids: tt.kids, Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []*Results{res, sug} {
			if tt.want != "" && rankOf(r, tt.want) < 0 {
				t.Errorf("%q kids=%v: %v, want %s", tt.q, tt.kids, ids(r), tt.want)
			}
			if tt.gone != "" && rankOf(r, tt.gone) >= 0 {
				t.Errorf("%q kids=%v: %v, want no %s", tt.q, tt.kids, ids(r), tt.gone)
			}
		}
	}
}

func TestPhraseNeedsOrder(t *testing.T) {
	t.Parallel()
	x := newIndex(t, DefaultConfig())
	res, err := x.Search(context.Background(), Request{Q: `"simulation reality"`})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 0 {
		t.Errorf("quoted out-of-order phrase matched %v, want nothing", ids(res))
	}
}

func TestNameAboveDescriptionAndPopularity(t *testing.T) {
	t.Parallel()
	x := newIndex(t, DefaultConfig())
	// office-space mentions "matrix" in its description only; make it
	// far more popular, and the name match must still come first.
	x.SetPopularity(map[string]float64{"office-space": 1e6, "the-matrix": 1})
	res, err := x.Search(context.Background(), Request{Q: "matrix"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(res); len(got) < 2 || got[0] != "the-matrix" || rankOf(res, "office-space") < 1 {
		t.Errorf("Search(matrix) = %v, want the-matrix first and office-space after", got)
	}
	if rankOf(res, "draft") >= 0 {
		t.Errorf("a title still ingesting was found")
	}

	// Equal relevance: popularity decides.
	for _, tt := range []struct {
		pop  map[string]float64
		want string
	}{
		{map[string]float64{"star-wars": 10, "star-trek": 1000}, "star-trek"},
		{map[string]float64{"star-wars": 1000, "star-trek": 10}, "star-wars"},
	} {
		x.SetPopularity(tt.pop)
		res, err := x.Suggest(context.Background(), Request{Q: "star", Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(res); len(got) == 0 || got[0] != tt.want {
			t.Errorf("with popularity %v Suggest(star) = %v, want %s first", tt.pop, got, tt.want)
		}
	}
}

func TestFacetsAndFilters(t *testing.T) {
	t.Parallel()
	x := newIndex(t, DefaultConfig())
	// "a" as a description word appears in most titles; count by hand
	// what the query matched.
	res, err := x.Search(context.Background(), Request{Q: "young", Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(res), 2; len(got) != want {
		t.Fatalf("Search(young) = %v, want %d titles", got, want)
	}
	want := map[string]int{"sci-fi": 1, "fantasy": 1}
	got := map[string]int{}
	for _, f := range res.Facets.Genre {
		got[f.Value] = f.Count
	}
	if len(got) != len(want) || got["sci-fi"] != 1 || got["fantasy"] != 1 {
		t.Errorf("genre facet = %v, want %v", got, want)
	}
	years := map[string]int{}
	for _, f := range res.Facets.Year {
		years[f.Value] = f.Count
	}
	if years["2009"] != 1 || years["2007"] != 1 || len(years) != 2 {
		t.Errorf("year facet = %v, want 2009:1 2007:1", years)
	}

	res, err = x.Search(context.Background(), Request{Q: "star", Genre: "SCI-FI"})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids(res) {
		if id != "star-wars" && id != "star-trek" {
			t.Errorf("genre filter let %s through", id)
		}
	}
	res, err = x.Search(context.Background(), Request{Q: "young", SkipFacets: true})
	if err != nil || res.Facets != nil || len(res.Results) != 2 {
		t.Errorf("SkipFacets: %+v, %v; want 2 results and no facets", res, err)
	}
	res, err = x.Search(context.Background(), Request{Q: "comedy", Year: 2009})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(res); len(got) != 1 || got[0] != "up" {
		t.Errorf("Search(comedy, 2009) = %v, want [up]", got)
	}
	comedy := 0
	for _, f := range res.Facets.Genre {
		if f.Value == "comedy" {
			comedy = f.Count
		}
	}
	if comedy != 1 {
		t.Errorf("comedy facet after the year filter = %d, want 1", comedy)
	}
}

func TestBadQueries(t *testing.T) {
	t.Parallel()
	x := newIndex(t, DefaultConfig())
	long := strings.Repeat("ab ", 100)
	tests := []struct {
		name string
		q    string
		want error
	}{
		{"empty", "", ErrEmptyQuery},
		{"spaces", "   ", ErrEmptyQuery},
		{"quotes only", `""`, ErrEmptyQuery},
		{"too long", long, ErrQueryTooLong},
		{"bad utf8", "\xff\xfe", ErrBadQuery},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := x.Search(context.Background(), Request{Q: tt.q})
			if !errors.Is(err, tt.want) || !errors.Is(err, ErrBadQuery) {
				t.Errorf("Search(%.20q) = %v, want %v", tt.q, err, tt.want)
			}
			_, err = x.Suggest(context.Background(), Request{Q: tt.q, Limit: 3})
			if !errors.Is(err, tt.want) {
				t.Errorf("Suggest(%.20q) = %v, want %v", tt.q, err, tt.want)
			}
		})
	}
	// Query syntax characters are text, not syntax.
	for _, q := range []string{"+-&|!(){}[]^~*?:\\/", `"unbalanced`, "AND OR NOT"} {
		if _, err := x.Search(context.Background(), Request{Q: q}); err != nil {
			t.Errorf("Search(%q) = %v, want no error", q, err)
		}
		if _, err := x.Suggest(context.Background(), Request{Q: q, Limit: 3}); err != nil && !errors.Is(err, ErrEmptyQuery) {
			t.Errorf("Suggest(%q) = %v", q, err)
		}
	}
}

func TestUpsertDeleteRebuild(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	x := newIndex(t, DefaultConfig())
	if got, want := x.Len(), len(catalog)-1; got != want {
		t.Fatalf("Len = %d, want %d", got, want)
	}
	find := func(q string) []string {
		t.Helper()
		res, err := x.Search(ctx, Request{Q: q})
		if err != nil {
			t.Fatal(err)
		}
		return ids(res)
	}
	if err := x.Upsert(ctx, fillcast.Title{ID: "up", Name: "Upgrade", Status: fillcast.StatusReady}); err != nil {
		t.Fatal(err)
	}
	if got := find("upgrade"); len(got) != 1 || got[0] != "up" {
		t.Errorf("after rename Search(upgrade) = %v, want [up]", got)
	}
	if got := find("balloons"); len(got) != 0 {
		t.Errorf("old description still found: %v", got)
	}
	if err := x.Upsert(ctx, fillcast.Title{ID: "casablanca", Name: "Casablanca", Status: fillcast.StatusFailed}); err != nil {
		t.Fatal(err)
	}
	if got := find("casablanca"); len(got) != 0 {
		t.Errorf("failed title still found: %v", got)
	}
	if err := x.Delete(ctx, "the-godfather"); err != nil {
		t.Fatal(err)
	}
	if err := x.Delete(ctx, "never-there"); err != nil {
		t.Errorf("Delete(unknown) = %v", err)
	}
	if got := find("godfather"); len(got) != 0 {
		t.Errorf("deleted title found: %v", got)
	}
	if err := x.Rebuild(ctx, catalog[:2]); err != nil {
		t.Fatal(err)
	}
	if got, want := x.Len(), 2; got != want {
		t.Errorf("Len after Rebuild = %d, want %d", got, want)
	}
	if got := find("star"); len(got) != 0 {
		t.Errorf("titles absent from the rebuild still found: %v", got)
	}
	if err := x.Upsert(ctx, fillcast.Title{ID: "../x", Name: "x"}); err == nil {
		t.Errorf("Upsert accepted a bad id")
	}
}

func TestOnDisk(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "search.bleve")
	x := newIndex(t, cfg)
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := x.Search(ctx, Request{Q: "star"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Search after Close = %v, want ErrClosed", err)
	}
	y, err := Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer y.Close()
	res, err := y.Search(ctx, Request{Q: "godfather"})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Results; len(got) == 0 || got[0].ID != "the-godfather" || got[0].Name != "The Godfather" {
		t.Errorf("reopened Search(godfather) = %+v, want The Godfather", got)
	}
}

func TestParseRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		query string
		want  Request
		err   bool
	}{
		{"q=star&genre=Sci-Fi&limit=5&year=1977", Request{Q: "star", Genre: "Sci-Fi", Limit: 5, Year: 1977}, false},
		{"q=x", Request{Q: "x"}, false},
		{"q=x&limit=-1", Request{}, true},
		{"q=x&limit=ten", Request{}, true},
		{"q=x&year=99999", Request{}, true},
		{"q=x&facets=0", Request{Q: "x", SkipFacets: true}, false},
		{"q=x&facets=maybe", Request{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			v, _ := url.ParseQuery(tt.query)
			got, err := ParseRequest(v)
			if tt.err {
				if !errors.Is(err, ErrBadQuery) {
					t.Errorf("err = %v, want ErrBadQuery", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func FuzzSearch(f *testing.F) {
	x, err := Open(DefaultConfig(), slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	defer x.Close()
	if err := x.Rebuild(context.Background(), catalog); err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"q=star", `q="a b"&limit=3`, "q=%ff&year=1", "q=~*?&genre=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		r, err := ParseRequest(v)
		if err != nil {
			if !errors.Is(err, ErrBadQuery) {
				t.Fatalf("ParseRequest error %v does not wrap ErrBadQuery", err)
			}
			return
		}
		for _, fn := range []func() (*Results, error){
			func() (*Results, error) { return x.Search(context.Background(), r) },
			func() (*Results, error) { return x.Suggest(context.Background(), r) },
		} {
			res, err := fn()
			if err != nil {
				if !errors.Is(err, ErrBadQuery) {
					t.Fatalf("query %q: %v, want nil or ErrBadQuery", r.Q, err)
				}
				continue
			}
			if len(res.Results) > x.cfg.MaxLimit {
				t.Fatalf("%d results, above MaxLimit", len(res.Results))
			}
		}
	})
}

func TestSearchWhileWriting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	x := newIndex(t, DefaultConfig())
	done := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for {
			select {
			case <-done:
				return
			default:
			}
			res, err := x.Search(ctx, Request{Q: "godfather"})
			if err == nil && len(res.Results) == 0 {
				err = errors.New("the godfather vanished during writes")
			}
			if err == nil {
				_, err = x.Suggest(ctx, Request{Q: "sta", Limit: 5})
			}
			if err != nil {
				errs <- err
				return
			}
		}
	}()
	for i := range 30 {
		id := "extra-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if err := x.Upsert(ctx, fillcast.Title{ID: id, Name: "Extra " + id}); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			if err := x.Rebuild(ctx, catalog); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(done)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if got, want := x.Len(), len(catalog)-1; got != want {
		t.Errorf("Len after the final Rebuild = %d, want %d", got, want)
	}
}

func TestRebuildCancelledKeepsNamesInStep(t *testing.T) {
	t.Parallel()
	x, err := Open(DefaultConfig(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := x.Rebuild(ctx, catalog); !errors.Is(err, context.Canceled) {
		t.Fatalf("Rebuild(cancelled) = %v, want context.Canceled", err)
	}
	// Whatever was applied is searchable with its name.
	res, err := x.Search(context.Background(), Request{Q: "godfather"})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range res.Results {
		if h.Name == "" {
			t.Errorf("hit %s has no name", h.ID)
		}
	}
	// The catalog fits one batch, applied before the context is
	// checked.
	if got, want := x.Len(), len(catalog)-1; got != want || len(res.Results) == 0 {
		t.Errorf("Len = %d, %d hits after a cancelled Rebuild; want %d and the godfather", got, len(res.Results), want)
	}
}
