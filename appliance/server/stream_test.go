package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/fillcast/fillcast/appliance/h3/h3test"
	"github.com/valyala/fasthttp"
)

// bytesSource is an upstream holding objects in memory.
type bytesSource map[string][]byte

func (s bytesSource) Fetch(_ context.Context, key string) (*cache.Fetched, error) {
	b, ok := s[key]
	if !ok {
		return nil, cache.ErrNotFound
	}
	return &cache.Fetched{Meta: cache.Meta{Size: int64(len(b)), ETag: `"x"`}, Body: io.NopCloser(bytes.NewReader(b))}, nil
}

// recordingListener hands out connections that keep a copy of every byte
// the server writes, so a test can read the TLS records they carry.
type recordingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*recordingConn
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	rc := &recordingConn{Conn: c}
	l.mu.Lock()
	l.conns = append(l.conns, rc)
	l.mu.Unlock()
	return rc, nil
}

// written returns what the server wrote on its only connection.
func (l *recordingListener) written(t *testing.T) []byte {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.conns) != 1 {
		t.Fatalf("%d connections, want 1", len(l.conns))
	}
	c := l.conns[0]
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}

type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.out.Write(p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// fullRecords counts the TLS 1.3 records in stream that carry 16 KiB of
// plaintext (the most a record holds).
func fullRecords(t *testing.T, stream []byte) int {
	t.Helper()
	const full = 16<<10 + 1 + 16 // plaintext, content type, AES-GCM tag
	n := 0
	for len(stream) > 0 {
		if len(stream) < 5 {
			t.Fatalf("%d bytes after the last TLS record", len(stream))
		}
		l := int(binary.BigEndian.Uint16(stream[3:5]))
		if len(stream) < 5+l {
			t.Fatalf("TLS record of %d bytes cut at %d", l, len(stream)-5)
		}
		if l == full {
			n++
		}
		stream = stream[5+l:]
	}
	return n
}

// TestTLSBodies serves objects from each tier over TLS and checks the
// bytes of whole objects, ranges and HEAD, and that a 1.5 MB body leaves
// in full 16 KiB records (a disk object copied through fasthttp's 4 KiB
// buffer would leave in 4 KiB ones).
func TestTLSBodies(t *testing.T) {
	t.Parallel()
	seg := make([]byte, 1_500_000)
	rand.Read(seg)
	small := seg[:20_000] // a few records
	for _, tier := range []struct {
		name     string
		mem      int64
		wantTier string
	}{{"memory", 64 << 20, "HIT-memory"}, {"disk", 0, "HIT-disk"}} {
		t.Run(tier.name, func(t *testing.T) {
			t.Parallel()
			src := bytesSource{"t1/720p/seg-00001.m4s": seg, "t1/720p/seg-00002.m4s": small}
			ccfg := cache.DefaultConfig()
			ccfg.Dir, ccfg.DiskBytes, ccfg.MemBytes = t.TempDir(), 64<<20, tier.mem
			c, err := cache.New(ccfg, src, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			keys := testKeys(t)
			s, err := New(Config{}, Deps{Cache: c, Keys: keys.Public()})
			if err != nil {
				t.Fatal(err)
			}
			cert, err := h3test.WriteCert(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			pair, err := tls.LoadX509KeyPair(cert.CertFile, cert.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			tcp, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			rec := &recordingListener{Listener: tcp}
			hs := &fasthttp.Server{Handler: s.Handle, NoDefaultContentType: true}
			go hs.Serve(tls.NewListener(rec, &tls.Config{Certificates: []tls.Certificate{pair}, DynamicRecordSizingDisabled: true}))
			t.Cleanup(func() { hs.Shutdown() })
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cert.ClientTLS(), MaxConnsPerHost: 1}}
			t.Cleanup(client.CloseIdleConnections)
			base := "https://" + tcp.Addr().String() + keys.SignPath("t1", time.Now().Add(time.Hour), netip.Prefix{})
			get := func(method, object, rng string) (*http.Response, []byte) {
				t.Helper()
				req, err := http.NewRequest(method, base+"/720p/"+object, nil)
				if err != nil {
					t.Fatal(err)
				}
				if rng != "" {
					req.Header.Set("Range", rng)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				return resp, b
			}
			// Fill both objects into the tier under test.
			for _, o := range []string{"seg-00001.m4s", "seg-00002.m4s"} {
				deadline := time.Now().Add(20 * time.Second)
				for {
					resp, _ := get("GET", o, "")
					if resp.Header.Get("X-Cache") == tier.wantTier {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s: X-Cache %q, want %s", o, resp.Header.Get("X-Cache"), tier.wantTier)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			tests := []struct {
				name, method, object, rng string
				wantCode                  int
				want                      []byte
			}{
				{"whole segment", "GET", "seg-00001.m4s", "", 200, seg},
				{"range", "GET", "seg-00001.m4s", "bytes=100000-1299999", 206, seg[100000:1300000]},
				{"suffix range", "GET", "seg-00001.m4s", "bytes=-5000", 206, seg[len(seg)-5000:]},
				{"small object", "GET", "seg-00002.m4s", "", 200, small},
				{"head", "HEAD", "seg-00001.m4s", "", 200, []byte{}},
			}
			for _, tt := range tests {
				resp, b := get(tt.method, tt.object, tt.rng)
				if resp.StatusCode != tt.wantCode || !bytes.Equal(b, tt.want) {
					t.Errorf("%s: status %d, %d bytes (equal: %v); want %d, %d bytes", tt.name, resp.StatusCode, len(b), bytes.Equal(b, tt.want), tt.wantCode, len(tt.want))
				}
				if got := resp.Header.Get("X-Cache"); got != tier.wantTier {
					t.Errorf("%s: X-Cache %q, want %s", tt.name, got, tier.wantTier)
				}
				if tt.method == "HEAD" {
					if got, want := resp.Header.Get("Content-Length"), strconv.Itoa(len(seg)); got != want {
						t.Errorf("%s: Content-Length %q, want %s", tt.name, got, want)
					}
				}
			}
			// The records of one more whole segment: all but the first
			// (the headers and the start of the body) and the last are full.
			before := len(rec.written(t))
			if _, b := get("GET", "seg-00001.m4s", ""); !bytes.Equal(b, seg) {
				t.Fatal("whole segment: wrong bytes")
			}
			out := rec.written(t)
			if got, want := fullRecords(t, out[before:]), len(seg)/(16<<10)-2; got < want {
				t.Errorf("a %d-byte body left in %d full records, want at least %d", len(seg), got, want)
			}
		})
	}
}
