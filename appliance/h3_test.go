package appliance

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/fillcast/fillcast/appliance/h3/h3test"
	"github.com/quic-go/quic-go/http3"
)

// startH3 serves an appliance over HTTP/1.1+TLS and HTTP/3 on one
// loopback port number and returns its https base URL and clients for
// both protocols.
func startH3(t *testing.T, mem int64, upstream string) (base string, h1, h3c *http.Client) {
	t.Helper()
	cert, err := h3test.WriteCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ln, pc, err := h3test.ListenPair()
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.ID, cfg.Site = "a1", "s1"
	cfg.Cache.Dir, cfg.Cache.DiskBytes, cfg.Cache.MemBytes = t.TempDir(), 256<<20, mem
	cfg.Upstream.URLs = []string{upstream}
	cfg.HTTP = ln.Addr().String()
	cfg.H3, cfg.TLSCert, cfg.TLSKey = true, cert.CertFile, cert.KeyFile
	a, err := New(cfg, Deps{Keys: keys(t), Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.ServeListeners(ctx, Listeners{TCP: ln, UDP: pc}) }()
	tr := &http3.Transport{TLSClientConfig: cert.ClientTLS()}
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			tr.Close()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
			pc.Close()
		})
	})
	h1 = &http.Client{Transport: &http.Transport{TLSClientConfig: cert.ClientTLS(), ForceAttemptHTTP2: false,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	return "https://" + ln.Addr().String(), h1, &http.Client{Transport: tr}
}

func fetch(t *testing.T, c *http.Client, method, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, b
}

// TestHTTP3MatchesHTTP1 fetches the same objects, whole and in ranges, from
// the memory tier, the disk tier and a miss over HTTP/3 and over
// HTTP/1.1+TLS, and wants the same status, bytes and headers from both.
func TestHTTP3MatchesHTTP1(t *testing.T) {
	t.Parallel()
	o := startOrigin(t)
	seg := randBytes(1_500_000)
	o.put(t, "t1/720p/seg-00001.m4s", seg)
	o.put(t, "t1/720p/seg-00002.m4s", seg[:700_000])
	o.put(t, "t1/master.m3u8", []byte("#EXTM3U\n"))
	for _, tier := range []struct {
		name string
		mem  int64
	}{{"memory", 64 << 20}, {"disk", 0}} {
		t.Run(tier.name, func(t *testing.T) {
			t.Parallel()
			base, h1, h3c := startH3(t, tier.mem, o.srv.URL)
			base += signed(t, "t1")
			tests := []struct {
				name, method, path string
				hdr                []string
				wantCode           int
				wantBody           []byte
			}{
				// The first request of each object is a miss served while it fills.
				{"miss over h3 with range", "GET", "/720p/seg-00002.m4s", []string{"Range", "bytes=1000-99999"}, 206, seg[1000:100000]},
				{"whole segment", "GET", "/720p/seg-00001.m4s", nil, 200, seg},
				{"range", "GET", "/720p/seg-00001.m4s", []string{"Range", "bytes=500000-1199999"}, 206, seg[500000:1200000]},
				{"suffix range", "GET", "/720p/seg-00001.m4s", []string{"Range", "bytes=-4096"}, 206, seg[len(seg)-4096:]},
				{"playlist", "GET", "/master.m3u8", nil, 200, []byte("#EXTM3U\n")},
				{"head", "HEAD", "/720p/seg-00001.m4s", nil, 200, []byte{}},
				{"unsatisfiable", "GET", "/720p/seg-00001.m4s", []string{"Range", "bytes=9999999-"}, 416, nil},
				{"not found", "GET", "/720p/seg-09999.m4s", nil, 404, nil},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					r3, b3 := fetch(t, h3c, tc.method, base+tc.path, tc.hdr...)
					r1, b1 := fetch(t, h1, tc.method, base+tc.path, tc.hdr...)
					if r3.ProtoMajor != 3 || r1.ProtoMajor != 1 {
						t.Fatalf("protocols: got %s and %s, want HTTP/3 and HTTP/1.1", r3.Proto, r1.Proto)
					}
					if r3.StatusCode != tc.wantCode || r1.StatusCode != tc.wantCode {
						t.Fatalf("status: h3 %d, h1 %d, want %d", r3.StatusCode, r1.StatusCode, tc.wantCode)
					}
					if !bytes.Equal(b3, b1) {
						t.Fatalf("bodies differ: h3 %d bytes, h1 %d bytes", len(b3), len(b1))
					}
					if tc.wantBody != nil && !bytes.Equal(b3, tc.wantBody) {
						t.Fatalf("body: got %d bytes, want %d bytes", len(b3), len(tc.wantBody))
					}
					for _, h := range []string{"Content-Length", "Content-Range", "Content-Type", "ETag", "Accept-Ranges", "Access-Control-Allow-Origin", "Cache-Control"} {
						if g3, g1 := r3.Header.Get(h), r1.Header.Get(h); g3 != g1 {
							t.Errorf("%s: h3 %q, h1 %q", h, g3, g1)
						}
					}
					if tc.wantCode < 300 {
						u, _ := url.Parse(base)
						if want := `h3=":` + u.Port() + `"; ma=86400`; r1.Header.Get("Alt-Svc") != want {
							t.Errorf("Alt-Svc on HTTP/1.1: got %q, want %q", r1.Header.Get("Alt-Svc"), want)
						}
					}
				})
			}
		})
	}
}

func TestValidateTLSAndH3(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		http       string
		h3         bool
		cert, key  string
		wantField  string // of the error; "" when valid
		wantAltSvc string
	}{
		{"h3 needs tls", "127.0.0.1:8443", true, "", "", "TLSCert", ""},
		{"cert without key", "127.0.0.1:8443", false, "c.pem", "", "TLSKey", ""},
		{"key without cert", "127.0.0.1:8443", false, "", "k.pem", "TLSCert", ""},
		{"h3 needs a fixed port", "127.0.0.1:0", true, "c.pem", "k.pem", "HTTP", ""},
		{"h3", "0.0.0.0:443", true, "c.pem", "k.pem", "", `h3=":443"; ma=86400`},
		{"h3 on the default address", "", true, "c.pem", "k.pem", "", `h3=":8080"; ma=86400`},
		{"tls only", "0.0.0.0:443", false, "c.pem", "k.pem", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig()
			cfg.ID, cfg.Site = "a1", "s1"
			cfg.Cache.Dir, cfg.Cache.DiskBytes = t.TempDir(), 1<<20
			cfg.Upstream.URLs = []string{"http://127.0.0.1:1"}
			cfg.HTTP, cfg.H3, cfg.TLSCert, cfg.TLSKey = tc.http, tc.h3, tc.cert, tc.key
			err := cfg.Validate()
			if tc.wantField != "" {
				if got := configField(err); got != tc.wantField {
					t.Fatalf("got %v, want a *fillcast.ConfigError for %s", err, tc.wantField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cfg = cfg.withDefaults()
			if cfg.Server.AltSvc != tc.wantAltSvc {
				t.Fatalf("AltSvc: got %q, want %q", cfg.Server.AltSvc, tc.wantAltSvc)
			}
			if !strings.HasPrefix(cfg.AdvertiseURL, "https://") {
				t.Fatalf("AdvertiseURL %q: want https with a certificate", cfg.AdvertiseURL)
			}
		})
	}
}
