package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/internal/poll"
)

// putTitle writes a ready title (rated maturity, of genres) through the
// node, as PUT /v1/titles/{id} does.
func putTitle(tb testing.TB, a *API, t *fillcast.Title) {
	tb.Helper()
	if t.Status == "" {
		t.Status = fillcast.StatusReady
	}
	if t.Status == fillcast.StatusReady && len(t.Renditions) == 0 {
		t.Renditions = []fillcast.Rendition{{ID: "720p", Kind: "video", Height: 720, Bandwidth: 3e6, Codecs: "avc1"}}
	}
	if err := a.d.Node.Apply(context.Background(), fsm.Command{Op: fsm.OpPutTitle, Title: t}); err != nil {
		tb.Fatal(err)
	}
}

// walk lists every page of query (limit, filters) as bearer and returns
// the ids in the order listed, and the pages asked.
func walk(t *testing.T, a *API, query, bearer, profile string) (ids []string, pages int) {
	t.Helper()
	cursor := ""
	for {
		path := "/v1/titles?" + query
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		// Within the caller's rate limit, as a client that honours 429s.
		var w *httptest.ResponseRecorder
		poll.Until(t, 30*time.Second, "a page within the rate limit", func() bool {
			w = call{method: "GET", path: path, bearer: bearer, profile: profile}.do(t, a)
			return w.Code != http.StatusTooManyRequests
		})
		var page titlePage
		if err := json.Unmarshal(w.Body.Bytes(), &page); w.Code != 200 || err != nil {
			t.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
		}
		pages++
		for _, v := range page.Titles {
			ids = append(ids, v.ID)
		}
		if page.NextCursor == "" {
			return ids, pages
		}
		if pages > 10_000 {
			t.Fatal("the listing does not end")
		}
		cursor = page.NextCursor
	}
}

// TestListTitlesPages: pages of the limit asked walk every title once in
// id order; a title's poster is a URL; no files are listed.
func TestListTitlesPages(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t) // holds t1, with a poster
	var want []string
	for i := range 100 {
		id := fmt.Sprintf("m%03d", i)
		putTitle(t, a, &fillcast.Title{ID: id, Name: id})
		want = append(want, id)
	}
	want = append(want, "t1")
	for _, limit := range []int{1, 7, 50, 101, 200} {
		got, pages := walk(t, a, fmt.Sprint("limit=", limit), "adm", "")
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: %d ids %v..., want the %d in id order", limit, len(got), got[:min(len(got), 5)], len(want))
		}
		if wantPages := (len(want) + limit - 1) / limit; pages != wantPages {
			t.Errorf("limit %d: %d pages, want %d", limit, pages, wantPages)
		}
	}
	body := call{method: "GET", path: "/v1/titles", bearer: "adm"}.want(t, a, 200, nil)
	var page titlePage
	call{method: "GET", path: "/v1/titles?limit=200", bearer: "adm"}.want(t, a, 200, &page)
	if n := len(page.Titles); n != 101 || page.NextCursor != "" {
		t.Errorf("one page of 200: %d titles, cursor %q; want 101 and no cursor", n, page.NextCursor)
	}
	one := page.Titles[100]
	if one.ID != "t1" || one.PosterURL != "/v1/titles/t1/files/poster.jpg" || one.FileCount != 1 || one.FilesDigest == "" {
		t.Errorf("t1 listed as %+v, want its poster's URL and its list's summary", one)
	}
	if strings.Contains(body, `"files"`) || !strings.Contains(body, `"next_cursor"`) {
		t.Errorf("first page of 50 %s: want no files and a next_cursor", body[:min(len(body), 300)])
	}
}

// TestListTitlesConcurrentWrites: a walk of the pages while titles are
// created, renamed and deleted lists every title that was there all
// along exactly once, and ids only ever increase.
func TestListTitlesConcurrentWrites(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	var present []string
	for i := range 400 {
		id := fmt.Sprintf("m%04d", 2*i)
		putTitle(t, a, &fillcast.Title{ID: id, Name: id})
		present = append(present, id)
	}
	present = append(present, "t1")
	// The writer completes a round before the walks start, and is
	// stopped and waited for however the test ends.
	stop, firstRound := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	var writes int
	var stopOnce, firstOnce sync.Once
	stopWriter := func() { stopOnce.Do(func() { close(stop); wg.Wait() }) }
	defer stopWriter()
	wg.Go(func() {
		defer firstOnce.Do(func() { close(firstRound) })
		ctx := context.Background()
		put := func(id, name string) error {
			return a.d.Node.Apply(ctx, fsm.Command{Op: fsm.OpPutTitle, Title: &fillcast.Title{ID: id, Name: name, Status: fillcast.StatusNew}})
		}
		// Writes until the walks end, or the catalog has grown by 6,000.
		for i := 0; ; i++ {
			select {
			case <-stop:
				writes = i
				return
			default:
			}
			if i >= 3000 {
				<-stop
				writes = i
				return
			}
			// New titles among the old ones, before and after them; a
			// rename of an old one; a deletion of a new one.
			odd := fmt.Sprintf("m%04d", (2*i+1)%800)
			err := errors.Join(put(odd, "new"), put(fmt.Sprintf("a%04d", i), "before"), put(fmt.Sprintf("z%04d", i), "after"),
				put(present[i%400], fmt.Sprint("renamed ", i)),
				a.d.Node.Apply(ctx, fsm.Command{Op: fsm.OpDeleteTitle, ID: odd}))
			if err != nil {
				t.Error(err)
				return
			}
			firstOnce.Do(func() { close(firstRound) })
		}
	})
	<-firstRound
	var got []string
	for range 3 {
		got, _ = walk(t, a, "limit=9", "adm", "")
		for i := 1; i < len(got); i++ {
			if got[i-1] >= got[i] {
				t.Fatalf("listed %s after %s: ids must strictly increase", got[i], got[i-1])
			}
		}
		for _, id := range present {
			if _, found := slices.BinarySearch(got, id); !found {
				t.Fatalf("title %s, there all along, not listed", id)
			}
		}
	}
	stopWriter()
	if writes == 0 {
		t.Error("no writes while walking: the test proved nothing")
	}
	t.Logf("%d rounds of writes during three walks; the last listed %d titles", writes, len(got))
}

// TestListTitlesFilters: ?status=, ?genre= and a kids profile filter;
// ?ids= answers those titles in its order; a filter that matches rarely
// answers short pages with a cursor rather than scanning everything.
func TestListTitlesFilters(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	for i := range maxScan + 500 {
		ti := &fillcast.Title{ID: fmt.Sprintf("m%05d", i), Name: "x", Genres: []string{"Drama"}, Maturity: fillcast.MaturityAll}
		switch {
		case i%1000 == 7:
			ti.Genres = []string{"Drama", "Western"}
		case i%3 == 0:
			ti.Status = fillcast.StatusNew
		case i%5 == 0:
			ti.Maturity = "18+"
		}
		putTitle(t, a, ti)
	}
	token := signIn(t, a, "fam@example.com", "wall")
	var kid profileView
	call{method: "POST", path: "/v1/profiles", body: `{"name":"Kid","kids":true}`, bearer: token}.want(t, a, 201, &kid)

	count := func(keep func(i int) bool) int {
		n := 0
		for i := range maxScan + 500 {
			if keep(i) {
				n++
			}
		}
		return n
	}
	westerns := count(func(i int) bool { return i%1000 == 7 })
	ids, pages := walk(t, a, "genre=western&limit=50", "adm", "")
	if len(ids) != westerns || pages < 2 {
		t.Errorf("westerns: %d in %d pages, want %d in at least 2 (a page scans at most %d titles)", len(ids), pages, westerns, maxScan)
	}
	// Titles of status new: i%3 == 0 but for the westerns.
	news := count(func(i int) bool { return i%1000 != 7 && i%3 == 0 })
	if ids, _ := walk(t, a, "status=new&limit=200", "adm", ""); len(ids) != news {
		t.Errorf("status new: %d titles, want %d", len(ids), news)
	}
	// A kids profile: every title but the 18+ ones (t1 is unrated).
	adult := count(func(i int) bool { return i%1000 != 7 && i%3 != 0 && i%5 == 0 })
	ids, _ = walk(t, a, "limit=200", token, kid.ID)
	if len(ids) != maxScan+500+1-adult {
		t.Errorf("kids profile: %d titles, want %d", len(ids), maxScan+500+1-adult)
	}
	var page titlePage
	call{method: "GET", path: "/v1/titles?ids=t1,m00005,nope,m00003,t1,m00010", bearer: token, profile: kid.ID}.want(t, a, 200, &page)
	var got []string
	for _, v := range page.Titles {
		got = append(got, v.ID)
	}
	// m00005 is 18+, m00003 new, m00010 18+... as the kids profile sees them.
	if want := []string{"t1", "m00003"}; !slices.Equal(got, want) || page.NextCursor != "" {
		t.Errorf("ids as a kid: %v (cursor %q), want %v", got, page.NextCursor, want)
	}
	call{method: "GET", path: "/v1/titles?ids=m00002,t1,m00004&genre=drama", bearer: "adm"}.want(t, a, 200, &page)
	if len(page.Titles) != 2 || page.Titles[0].ID != "m00002" || page.Titles[1].ID != "m00004" {
		t.Errorf("ids of drama: %+v, want m00002 and m00004 in that order", page.Titles)
	}
}

// TestListTitlesBadParameters: what the listing cannot read is a 400
// saying what to send.
func TestListTitlesBadParameters(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	many := make([]string, maxIDs+1)
	for i := range many {
		many[i] = fmt.Sprint("t", i)
	}
	for _, tt := range []struct {
		name, query, message string
	}{
		{"limit zero", "limit=0", "from 1 to 200"},
		{"limit over", "limit=201", "from 1 to 200"},
		{"limit not a number", "limit=ten", "from 1 to 200"},
		{"cursor not base64url", "cursor=%2F%2F%2F", "pass next_cursor as it came"},
		{"cursor of no id", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("../etc")), "pass next_cursor as it came"},
		{"unknown status", "status=done", "want new, ingesting, ready or failed"},
		{"a bad id", "ids=t1,a%20b", "ids: "},
		{"too many ids", "ids=" + strings.Join(many, ","), "more than 100"},
		{"ids and a cursor", "ids=t1&cursor=dDE", "no cursor or limit"},
		{"ids and a limit", "ids=t1,t2&limit=1", "no cursor or limit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := call{method: "GET", path: "/v1/titles?" + tt.query, bearer: "adm"}.want(t, a, 400, nil)
			if !strings.Contains(body, tt.message) {
				t.Errorf("%s, want it to say %q", body, tt.message)
			}
		})
	}
	if body := (call{method: "GET", path: "/v1/titles/t1?files=yes", bearer: "adm"}).want(t, a, 400, nil); !strings.Contains(body, "want 1") {
		t.Errorf("files=yes: %s", body)
	}
}

// BenchmarkListTitles measures a page of 50 of a catalog of 20,000
// titles through the whole filter chain, from the middle of the
// catalog (a cursor) and with a genre that one title in ten has.
func BenchmarkListTitles(b *testing.B) {
	// A clock that moves 20 ms a call, so that the admin's rate limit
	// (100 a second) never refuses the loop.
	var calls atomic.Int64
	start := time.Now()
	a := newTestAPIWith(b, func(d *Deps) {
		d.Now = func() time.Time { return start.Add(time.Duration(calls.Add(1)) * 20 * time.Millisecond) }
	})
	for i := range 20_000 {
		genre := "Drama"
		if i%10 == 0 {
			genre = "Western"
		}
		putTitle(b, a, &fillcast.Title{ID: fmt.Sprintf("title-%05d", i), Name: fmt.Sprint("Title ", i), Genres: []string{genre},
			Description: strings.Repeat("A title of the benchmark. ", 8), Year: 2000 + i%25, Cast: []string{"Ann", "Bob"},
			Poster: "poster.jpg", FilesDigest: strings.Repeat("ab", 32), Bytes: 1 << 30, FileCount: 10_000})
	}
	for _, bb := range []struct{ name, query string }{
		{"page", "limit=50&cursor=" + encodeCursor("title-10000")},
		{"genre", "limit=50&genre=western&cursor=" + encodeCursor("title-10000")},
		{"ids", "ids=title-00001,title-05000,title-10000,title-15000,title-19999"},
	} {
		b.Run(bb.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/v1/titles?"+bb.query, nil)
			req.Header.Set("Authorization", "Bearer adm")
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				a.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
