package byterange

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	const size = 1000
	tests := []struct {
		name   string
		header string
		size   int64
		want   Range
		wantOK bool
		err    error
	}{
		{"none", "", size, Range{}, false, nil},
		{"first bytes", "bytes=0-99", size, Range{0, 100}, true, nil},
		{"middle", "bytes=500-599", size, Range{500, 100}, true, nil},
		{"open end", "bytes=900-", size, Range{900, 100}, true, nil},
		{"end clamped", "bytes=900-5000", size, Range{900, 100}, true, nil},
		{"suffix", "bytes=-10", size, Range{990, 10}, true, nil},
		{"suffix larger than size", "bytes=-5000", size, Range{0, size}, true, nil},
		{"case and spaces", "Bytes= 1 - 2 ", size, Range{1, 2}, true, nil},
		{"last byte", "bytes=999-999", size, Range{999, 1}, true, nil},
		{"other unit ignored", "items=0-1", size, Range{}, false, nil},
		{"multiple ranges ignored", "bytes=0-1,5-6", size, Range{}, false, nil},
		{"start beyond size", "bytes=1000-", size, Range{}, false, ErrUnsatisfiable},
		{"zero suffix", "bytes=-0", size, Range{}, false, ErrUnsatisfiable},
		{"empty representation", "bytes=0-", 0, Range{}, false, ErrUnsatisfiable},
		{"reversed", "bytes=5-1", size, Range{}, false, ErrMalformed},
		{"no dash", "bytes=5", size, Range{}, false, ErrMalformed},
		{"letters", "bytes=a-b", size, Range{}, false, ErrMalformed},
		{"negative", "bytes=--5", size, Range{}, false, ErrMalformed},
		{"empty spec", "bytes=", size, Range{}, false, ErrMalformed},
		{"overflow", "bytes=99999999999999999999-", size, Range{}, false, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := Parse([]byte(tt.header), tt.size)
			if !errors.Is(err, tt.err) || ok != tt.wantOK || got != tt.want {
				t.Errorf("Parse(%q, %d) = %+v, %v, %v; want %+v, %v, %v", tt.header, tt.size, got, ok, err, tt.want, tt.wantOK, tt.err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"bytes=0-1", "bytes=-5", "bytes=5-", "bytes=1-2,3-4", "bytes= 9 - ", "x"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -size
		}
		if size < 0 {
			return
		}
		r, ok, err := Parse([]byte(h), size)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("ok with error %v", err)
		}
		if r.Length <= 0 || r.Start < 0 || r.End() >= size {
			t.Fatalf("Parse(%q, %d) = %+v: outside the representation", h, size, r)
		}
	})
}
