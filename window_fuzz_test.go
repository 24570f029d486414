package fillcast

import (
	"fmt"
	"strings"
	"testing"
)

// FuzzParseWindow: a window ParseWindow accepts is two distinct times of
// day (an empty window would never open, and appliances refuse it), and
// writing them back as HH:MM-HH:MM parses to the same window; whatever it
// refuses gets an error naming the window.
func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{
		"02:00-14:00", "22:30-06:00", "00:00-23:59", " 1:05 - 7:45 ", "23:59-00:00",
		"02:00-02:00", "2-14", "24:00-01:00", "12:60-13:00", "02:00", "-", "02:00-14:00-16:00",
		"02:00-14:00\x00", "\uff10\uff12:00-14:00", "+2:00-14:00", "02:00:00-14:00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, w string) {
		start, end, err := ParseWindow(w)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fillcast: fill window") {
				t.Fatalf("ParseWindow(%q) error %q does not say what was wrong", w, err)
			}
			return
		}
		if start < 0 || start >= 24*60 || end < 0 || end >= 24*60 {
			t.Fatalf("ParseWindow(%q) = %d, %d: outside a day", w, start, end)
		}
		if start == end {
			t.Fatalf("ParseWindow(%q) accepted an empty window", w)
		}
		back := fmt.Sprintf("%02d:%02d-%02d:%02d", start/60, start%60, end/60, end%60)
		s2, e2, err := ParseWindow(back)
		if err != nil || s2 != start || e2 != end {
			t.Fatalf("ParseWindow(%q) = %d, %d; written back as %q it parses to %d, %d, %v", w, start, end, back, s2, e2, err)
		}
	})
}
