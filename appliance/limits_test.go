package appliance

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSlowAndExcessClients(t *testing.T) {
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
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		// Two connections each hold a request in progress (headers not
		// finished) until the read timeout...
		for range 2 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, "GET /healthz HTTP/1.1\r\n")
			held = append(held, c)
		}
		// ...so a third is answered 503 at once.
		waitFor(t, func() bool {
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
