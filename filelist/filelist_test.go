package filelist

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/fillcast/fillcast"
)

const sum = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

var files = []fillcast.File{
	{Path: "720p/seg-00002.m4s", Size: 1500, SHA256: sum},
	{Path: "poster.jpg", Size: 20, SHA256: sum},
	{Path: "720p/init.mp4", Size: 800},
	{Path: "download/720p.mp4", Size: 9000, SHA256: sum},
	{Path: "720p/seg-00001.m4s", Size: 1400, SHA256: sum},
}

// TestRoundTrip: a list decodes to its files in path order, with the
// summary Encode gave, whatever order the files came in.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	body, s, err := Encode(files)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(body, []byte(Header)) || s.Digest != Digest(body) || !ValidDigest(s.Digest) {
		t.Fatalf("body %q digest %s", body, s.Digest)
	}
	if s.Bytes != 12720 || s.Count != 5 || s.Poster != PosterPath || len(s.Downloads) != 1 || s.Downloads[0] != "download/720p.mp4" {
		t.Fatalf("summary %+v", s)
	}
	rev := []fillcast.File{files[4], files[3], files[2], files[1], files[0]}
	body2, s2, _ := Encode(rev)
	if !bytes.Equal(body, body2) || s2.Digest != s.Digest {
		t.Fatal("the same files in another order encode differently")
	}
	got, ds, err := DecodeAll(body)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Digest != s.Digest || ds.Bytes != s.Bytes || ds.Count != s.Count || ds.Poster != s.Poster {
		t.Fatalf("decoded summary %+v, want %+v", ds, s)
	}
	for i := 1; i < len(got); i++ {
		if got[i-1].Path >= got[i].Path {
			t.Fatalf("not in path order: %v", got)
		}
	}
	// A reader giving a byte at a time decodes the same.
	var n int
	ds2, err := Decode(iotest.OneByteReader(bytes.NewReader(body)), func(fillcast.File) error { n++; return nil })
	if err != nil || n != 5 || ds2.Digest != s.Digest {
		t.Fatalf("one byte at a time: %d files, %v", n, err)
	}
	// An empty list is a list.
	empty, es, err := Encode(nil)
	if err != nil || string(empty) != Header || es.Count != 0 {
		t.Fatalf("empty: %q %+v %v", empty, es, err)
	}
	if _, s3, err := DecodeAll(empty); err != nil || s3.Digest != es.Digest {
		t.Fatalf("empty decode: %v", err)
	}
}

// TestRefused: Encode and Decode refuse what is not a canonical list, with
// ErrList, and Decode stops at fn's error.
func TestRefused(t *testing.T) {
	t.Parallel()
	for _, bad := range [][]fillcast.File{
		{{Path: "../etc/passwd", Size: 1}},
		{{Path: "a b", Size: 1}},
		{{Path: "a", Size: -1}},
		{{Path: "a", Size: 1, SHA256: "XYZ"}},
		{{Path: "a", Size: 1, SHA256: strings.ToUpper(sum)}},
		{{Path: "a", Size: 1}, {Path: "a", Size: 2}},
	} {
		if _, _, err := Encode(bad); !errors.Is(err, ErrList) {
			t.Errorf("Encode(%v) = %v, want ErrList", bad, err)
		}
	}
	good, _, _ := Encode(files)
	for name, body := range map[string]string{
		"no header":      "a\t1\t\n",
		"other version":  "fillcast-files 2\n",
		"truncated":      string(good[:len(good)-1]),
		"two fields":     Header + "a\t1\n",
		"four fields":    Header + "a\t1\t\textra\n",
		"size":           Header + "a\t01\t\n",
		"negative":       Header + "a\t-1\t\n",
		"unsorted":       Header + "b\t1\t\na\t1\t\n",
		"duplicate":      Header + "a\t1\t\na\t1\t\n",
		"long line":      Header + strings.Repeat("a", MaxLine+10) + "\t1\t\n",
		"bad path":       Header + "a/../b\t1\t\n",
		"empty":          "",
		"header only cr": "fillcast-files 1\r\n",
	} {
		if _, _, err := DecodeAll([]byte(body)); !errors.Is(err, ErrList) {
			t.Errorf("%s: %v, want ErrList", name, err)
		}
	}
	stop := errors.New("stop")
	if _, err := Decode(bytes.NewReader(good), func(fillcast.File) error { return stop }); err != stop {
		t.Fatalf("fn's error: %v", err)
	}
}

func TestPathAndDigest(t *testing.T) {
	t.Parallel()
	if got := Path("t1", sum); got != "t1/_files/"+sum {
		t.Fatal(got)
	}
	if fillcast.ValidateObjectPath(Path("t1", sum)) != nil {
		t.Fatal("a list's path is not an object path")
	}
	for s, want := range map[string]bool{sum: true, sum[:63]: false, strings.ToUpper(sum): false, sum[:63] + "g": false} {
		if ValidDigest(s) != want {
			t.Errorf("ValidDigest(%q) != %v", s, want)
		}
	}
}

// FuzzDecode: whatever the bytes, Decode never panics, and what it
// accepts re-encodes to the same bytes and digest.
func FuzzDecode(f *testing.F) {
	good, _, _ := Encode(files)
	f.Add(good)
	f.Add([]byte(Header))
	f.Add([]byte(Header + "a\t1\t\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, s, err := DecodeAll(body)
		if err != nil {
			return
		}
		again, s2, err := Encode(got)
		if err != nil {
			t.Fatalf("decoded files do not encode: %v", err)
		}
		if !bytes.Equal(again, body) || s2.Digest != s.Digest || s.Digest != Digest(body) {
			t.Fatalf("not canonical: %q re-encodes to %q", body, again)
		}
	})
}
