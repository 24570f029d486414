package fill

import (
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
)

// fuzzZones are the time zones FuzzWindow picks from: loading a zone is
// time's work, not the parser's, so the fuzzer chooses among real ones
// (with half-hour and odd offsets) and one that does not exist.
var fuzzZones = []string{"", "UTC", "Europe/Amsterdam", "Asia/Kolkata", "America/St_Johns", "Pacific/Chatham", "Mars/Base"}

// FuzzWindow: the appliance accepts exactly the fill windows the control
// plane does (fillcast.ParseWindow, which PUT /v1/sites checks), so a site
// the control plane took never makes its appliances refuse every manifest;
// a blank window is the default; and an accepted window is open for the
// minutes from its start up to its end, across midnight when it wraps.
func FuzzWindow(f *testing.F) {
	for _, s := range []string{"02:00-14:00", "22:30-06:00", "", "  ", "23:59-00:00", "02:00-02:00", "2-14", "24:00-01:00", "x"} {
		for z := range fuzzZones {
			f.Add(s, uint8(z))
		}
	}
	f.Fuzz(func(t *testing.T, w string, zone uint8) {
		tz := fuzzZones[int(zone)%len(fuzzZones)]
		m, loc, err := window(w, tz)
		_, zerr := time.LoadLocation(tz)
		src := w
		if strings.TrimSpace(w) == "" {
			src = DefaultWindow
		}
		_, _, perr := fillcast.ParseWindow(src)
		if (err == nil) != (perr == nil && zerr == nil) {
			t.Fatalf("window(%q, %q) = %v; the control plane's ParseWindow says %v, time zone %v", w, tz, err, perr, zerr)
		}
		if err != nil {
			return
		}
		if loc == nil {
			t.Fatalf("window(%q, %q): no location", w, tz)
		}
		open := 0
		for mm := range 24 * 60 {
			if m.contains(time.Date(2026, 12, 7, mm/60, mm%60, 30, 0, time.UTC)) {
				open++
			}
		}
		want := ((m.end-m.start)%(24*60) + 24*60) % (24 * 60)
		if open != want || open == 0 {
			t.Fatalf("window(%q) = %+v is open %d minutes a day, want %d (and more than 0)", w, m, open, want)
		}
		at := func(min int) time.Time { return time.Date(2026, 12, 7, min/60, min%60, 0, 0, time.UTC) }
		if !m.contains(at(m.start)) || m.contains(at(m.end)) {
			t.Fatalf("window(%q) = %+v: want open at its start and closed at its end", w, m)
		}
	})
}
