package manifestfilter_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/fillcast/fillcast/manifestfilter"
	"github.com/fillcast/fillcast/manifestfilter/manifestfiltertest"
)

// TestCache: a version, limit and steering URL is made once; another
// version, limit or steering URL, or an unknown version (no ETag), is
// made again; a refusal is remembered; a failed load is not.
func TestCache(t *testing.T) {
	t.Parallel()
	c := manifestfilter.NewCache(0)
	loads := 0
	master := manifestfiltertest.Master()
	load := func() ([]byte, error) { loads++; return master, nil }
	steps := []struct {
		name, path, etag string
		max              int
		steer            string
		wantLoads        int
		wantETag         string
		wantErr          error
	}{
		{"first", "t1/master.m3u8", `"v1"`, 480, "", 1, `"v1-h480"`, nil},
		{"again", "t1/master.m3u8", `"v1"`, 480, "", 1, `"v1-h480"`, nil},
		{"other limit", "t1/master.m3u8", `"v1"`, 720, "", 2, `"v1-h720"`, nil},
		{"new version", "t1/master.m3u8", `"v2"`, 480, "", 3, `"v2-h480"`, nil},
		{"other title", "t2/master.m3u8", `"v1"`, 480, "", 4, `"v1-h480"`, nil},
		{"weak tag", "t3/master.m3u8", `W/"v1"`, 480, "", 5, `W/"v1-h480"`, nil},
		{"no version", "t1/master.m3u8", "", 480, "", 6, "", nil},
		{"no version again", "t1/master.m3u8", "", 480, "", 7, "", nil},
		{"nothing left", "t1/master.m3u8", `"v1"`, 100, "", 8, `"v1-h100"`, manifestfilter.ErrNothingLeft},
		{"nothing left, remembered", "t1/master.m3u8", `"v1"`, 100, "", 8, `"v1-h100"`, manifestfilter.ErrNothingLeft},
		{"steered", "t1/master.m3u8", `"v1"`, 0, "https://cp.example", 9, `"v1-s14d95995"`, nil},
		{"steered again", "t1/master.m3u8", `"v1"`, 0, "https://cp.example", 9, `"v1-s14d95995"`, nil},
		{"steered and filtered", "t1/master.m3u8", `"v1"`, 480, "https://cp.example", 10, `"v1-h480-s14d95995"`, nil},
		{"another steering URL", "t1/master.m3u8", `"v1"`, 480, "https://cp2.example", 11, `"v1-h480-sbd235f65"`, nil},
		{"steered, nothing left", "t1/master.m3u8", `"v1"`, 100, "https://cp.example", 12, `"v1-h100-s14d95995"`, manifestfilter.ErrNothingLeft},
	}
	for _, s := range steps {
		v, err := c.Get(s.path, s.etag, manifestfilter.Options{MaxHeight: s.max, SteeringURL: s.steer}, load)
		if !errors.Is(err, s.wantErr) || v == nil || v.ETag != s.wantETag || loads != s.wantLoads {
			t.Fatalf("%s: Get = %+v, %v after %d loads; want ETag %q, %v after %d", s.name, v, err, loads, s.wantETag, s.wantErr, s.wantLoads)
		}
	}
	broken := errors.New("disk on fire")
	for range 2 {
		if _, err := c.Get("t9/master.m3u8", `"v1"`, manifestfilter.Options{MaxHeight: 480}, func() ([]byte, error) { return nil, broken }); !errors.Is(err, broken) {
			t.Errorf("failed load: %v, want it returned", err)
		}
	}
	if _, err := c.Get("t9/master.m3u8", `"v1"`, manifestfilter.Options{MaxHeight: 480}, func() ([]byte, error) { return []byte("not a playlist"), nil }); !errors.Is(err, manifestfilter.ErrSyntax) {
		t.Errorf("bad playlist: %v, want ErrSyntax", err)
	}
	if v, err := c.Get("t9/master.m3u8", `"v1"`, manifestfilter.Options{MaxHeight: 480}, load); err != nil || len(v.Body) == 0 {
		t.Errorf("after failures, a good load: %+v, %v", v, err)
	}
}

// TestCacheBudget: the cache holds no more bytes than its budget.
func TestCacheBudget(t *testing.T) {
	t.Parallel()
	master := manifestfiltertest.Master()
	c := manifestfilter.NewCache(int64(10 * (len(master) + 100)))
	for i := range 100 {
		if _, err := c.Get(fmt.Sprintf("t%d/master.m3u8", i), `"v"`, manifestfilter.Options{MaxHeight: 2160}, func() ([]byte, error) { return master, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Len(); n == 0 || n > 10 {
		t.Errorf("%d variants held, want 1 to 10", n)
	}
}
