package appliance

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/internal/poll"
)

func TestSlowAndExcessClients(t *testing.T) {
	t.Parallel()
	o := startOrigin(t)
	o.put(t, "t1/master.m3u8", []byte("#EXTM3U\n"))
	a := startApplianceWith(t, t.TempDir(), 16<<20, []string{o.srv.URL}, func(c *Config) {
		c.ReadTimeout = 300 * time.Millisecond
		c.MaxConns = 2
	})
	addr := strings.TrimPrefix(a.url, "http://")

	t.Run("stalled request headers are cut off", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n") // never finished
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		start := time.Now()
		io.ReadAll(conn) // returns when the server closes the connection
		if time.Since(start) >= 10*time.Second {
			t.Error("the server kept a stalled connection open")
		}
	})

	t.Run("connections beyond the cap are refused", func(t *testing.T) {
		// Two connections each hold a request in progress (headers not
		// finished) until the read timeout, so a third is answered 503
		// at once. Each try sets up all three anew: on a loaded machine
		// the read timeout may end the held ones before the third.
		poll.Until(t, 10*time.Second, "a third connection refused with 503", func() bool {
			for range 2 {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					return false
				}
				defer c.Close()
				io.WriteString(c, "GET /healthz HTTP/1.1\r\n")
			}
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return false
			}
			defer c.Close()
			io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			return err == nil && resp.StatusCode == http.StatusServiceUnavailable
		})
	})
}

func TestRefusesBadRequests(t *testing.T) {
	t.Parallel()
	o := startOrigin(t)
	o.put(t, "t1/master.m3u8", []byte("#EXTM3U\n"))
	o.put(t, "t2/master.m3u8", []byte("#EXTM3U\n"))
	a := startAppliance(t, t.TempDir(), 16<<20, o.srv.URL)
	k := keys(t)
	other, _ := auth.ParseKeys(strings.NewReader("k1 ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n"))
	expired := k.SignPath("t1", time.Now().Add(-time.Minute), netip.Prefix{})
	boundElsewhere := k.SignPath("t1", time.Now().Add(time.Hour), netip.MustParsePrefix("198.51.100.0/24"))
	good := signed(t, "t1")
	tests := []struct {
		name string
		path string
		hdr  []string
		want int
	}{
		{"no token", "/c/t1/master.m3u8", nil, 400},
		{"garbage token", "/c/garbage/t1/master.m3u8", nil, 403},
		{"expired token", expired + "/master.m3u8", nil, 403},
		{"token for another title", good[:strings.LastIndex(good, "/")] + "/t2/master.m3u8", nil, 403},
		{"forged token", other.SignPath("t1", time.Now().Add(time.Hour), netip.Prefix{}) + "/master.m3u8", nil, 403},
		{"token bound to another client", boundElsewhere + "/master.m3u8", nil, 403},
		{"dot dot", good + "/../t2/master.m3u8", nil, 400},
		{"encoded dot dot", good + "/%2e%2e/t2/master.m3u8", nil, 400},
		{"encoded slash", good + "/a%2fb.m4s", nil, 400},
		{"empty segment", good + "//master.m3u8", nil, 400},
		{"backslash", good + "/a\\b.m4s", nil, 400},
		{"long URI", good + "/" + strings.Repeat("a", 3000) + ".m4s", nil, 414},
		{"huge header", good + "/master.m3u8", []string{"X-Big", strings.Repeat("b", 20000)}, 431},
		{"unknown route", "/nope", nil, 404},
		{"purge without token", "/admin/purge", nil, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, a.url+tt.path, tt.hdr...)
			if resp.StatusCode != tt.want {
				t.Errorf("GET %s = %d, want %d (%q)", tt.path, resp.StatusCode, tt.want, trim(body))
			}
		})
	}
	t.Run("huge body", func(t *testing.T) {
		resp, body := do(t, http.MethodPost, a.url+"/admin/purge", bytes.NewReader(make([]byte, 1<<20)))
		if resp.StatusCode != 413 {
			t.Errorf("POST of 1 MiB = %d, want 413 (%q)", resp.StatusCode, trim(body))
		}
	})
	// Refused before the handler, they are counted all the same.
	_, metrics := get(t, a.url+"/metrics")
	for _, want := range []string{`fillcast_appliance_requests_total{code="431"} 1`, `fillcast_appliance_requests_total{code="413"} 1`} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// None of that reached the origin or the cache.
	if s := a.Status().(Status); s.Misses != 0 {
		t.Errorf("bad requests caused %d misses", s.Misses)
	}
}
