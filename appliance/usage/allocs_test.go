//go:build !race

// Allocation counts are checked without the race detector, whose
// instrumentation allocates; make test runs them in a second pass.

package usage

import (
	"testing"
	"unsafe"
)

// TestRecordAllocs: recording a response of a title and rendition seen
// before allocates nothing, with CMCD or without, whatever strings the
// caller's buffers hold.
func TestRecordAllocs(t *testing.T) {
	r, _ := newRecorder(t, 0)
	buf := []byte("t1/720p")
	d := player(t, `br=3200,bl=21300,bs,mtp=25400,ot=v,sid="6e2fb550-c457-11e9-bb97-0800200c9a66"`)
	for _, withCMCD := range []bool{false, true} {
		resp := Response{Title: b2s(buf[:2]), Rendition: b2s(buf[3:]), Status: 200, Bytes: 1500000}
		if withCMCD {
			resp.CMCD = d
		}
		r.Record(resp)
		n := testing.AllocsPerRun(500, func() { r.Record(resp) })
		if n != 0 {
			t.Errorf("CMCD %v: %v allocations per response, want 0", withCMCD, n)
		}
	}
	copy(buf, "xx/yyyy") // the recorder kept copies, not views
	if u := r.Cut(); u.Titles[0].Title != "t1" || u.Titles[0].Rendition != "720p" || u.Titles[0].Requests < 1000 {
		t.Errorf("rows %+v", u.Titles)
	}
}

// b2s views b as a string, as the server views its request buffers.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
