//go:build !race

// Allocation counts are checked without the race detector, whose
// instrumentation allocates; make test runs them in a second pass.

package cmcd

import (
	"net/url"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestParseAllocs: parsing a player's CMCD, from a payload, the headers
// of a fasthttp request or a raw query decoded into a buffer of the
// caller's, allocates nothing.
func TestParseAllocs(t *testing.T) {
	in := []byte(hlsjs)
	var req fasthttp.Request
	req.Header.Set("CMCD-Object", "br=3200,d=4004,ot=v")
	req.Header.Set("CMCD-Request", "bl=21300,mtp=25400")
	req.Header.Set("CMCD-Session", `sid="6e2fb550-c457-11e9-bb97-0800200c9a66"`)
	req.Header.Set("CMCD-Status", "bs")
	q := []byte("a=1&CMCD=" + url.QueryEscape(hlsjs))
	buf := make([]byte, 0, 512)
	tests := []struct {
		name string
		fn   func(*Data) error
	}{
		{"payload", func(d *Data) error { return Parse(d, in) }},
		{"headers", func(d *Data) error { return ParseHeaders(d, &req.Header) }},
		{"query", func(d *Data) error {
			v, _, err := AppendQuery(buf[:0], q)
			if err == nil {
				err = Parse(d, v)
			}
			return err
		}},
	}
	for _, tt := range tests {
		var d Data
		if err := tt.fn(&d); err != nil || d.Has == 0 {
			t.Fatalf("%s: %+v, %v", tt.name, d, err)
		}
		n := testing.AllocsPerRun(200, func() {
			d.Reset()
			tt.fn(&d)
		})
		if n != 0 {
			t.Errorf("%s: %v allocations per parse, want 0", tt.name, n)
		}
	}
}
