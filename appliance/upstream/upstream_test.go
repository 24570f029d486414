package upstream

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/origin"
)

// credential is a fill pass of the test appliance, valid for an hour.
func credential(t *testing.T) string {
	t.Helper()
	keys, err := auth.ParseKeys(strings.NewReader("k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"))
	if err != nil {
		t.Fatal(err)
	}
	pass, err := keys.SignFillPass("a1", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return pass
}

func newClient(t *testing.T, urls ...string) *Client {
	t.Helper()
	return newClientWith(t, credential(t), urls...)
}

func newClientWith(t *testing.T, cred string, urls ...string) *Client {
	t.Helper()
	c, err := New(Config{URLs: urls, IdleTimeout: 300 * time.Millisecond, PeerBackoff: time.Hour}, Deps{Pass: func() string {
		if cred == "" {
			return ""
		}
		return "Bearer " + cred
	}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// deadURL is a loopback address nothing listens on.
func deadURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func serve(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestFetch(t *testing.T) {
	t.Parallel()
	origin, originHits := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/f/t1/a.m4s" || !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer fcp.a1.k1.") {
			http.Error(w, "bad path or credential "+r.URL.Path, 400)
			return
		}
		if r.Header.Get("Cache-Control") != "" {
			http.Error(w, "origin asked only-if-cached", 400)
			return
		}
		w.Header().Set("ETag", `"o"`)
		io.WriteString(w, "from-origin")
	})
	peerHas, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Cache-Control") != "only-if-cached" || r.URL.Path != "/f/t1/a.m4s" || !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer fcp.") {
			http.Error(w, "peer not asked only-if-cached with a credential", 400)
			return
		}
		io.WriteString(w, "from-peer")
	})
	peerLacks, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not cached", http.StatusGatewayTimeout)
	})
	peerBroken, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	notFound, _ := serve(t, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })

	tests := []struct {
		name    string
		urls    []string
		want    string
		wantErr error
	}{
		{"origin only", []string{origin.URL}, "from-origin", nil},
		{"peer holds it", []string{peerHas.URL, origin.URL}, "from-peer", nil},
		{"peer lacks it", []string{peerLacks.URL, origin.URL}, "from-origin", nil},
		{"peer broken", []string{peerBroken.URL, origin.URL}, "from-origin", nil},
		{"peer dead", []string{deadURL(t), origin.URL}, "from-origin", nil},
		{"origin 404", []string{peerLacks.URL, notFound.URL}, "", cache.ErrNotFound},
		{"origin dead", []string{deadURL(t)}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, tt.urls...)
			f, err := c.Fetch(context.Background(), "t1/a.m4s")
			if tt.want == "" {
				if err == nil {
					t.Fatal("Fetch succeeded, want an error")
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("Fetch error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(f.Body)
			f.Body.Close()
			if err != nil || string(b) != tt.want {
				t.Errorf("body = %q, %v; want %q", b, err, tt.want)
			}
		})
	}
	if originHits.Load() == 0 {
		t.Error("origin never asked")
	}
}

func TestDeadPeerIsSkipped(t *testing.T) {
	t.Parallel()
	origin, _ := serve(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "x") })
	peer, peerHits := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	c := newClient(t, peer.URL, origin.URL)
	for range 3 {
		f, err := c.Fetch(context.Background(), "t1/a.m4s")
		if err != nil {
			t.Fatal(err)
		}
		f.Body.Close()
	}
	if n := peerHits.Load(); n != 1 {
		t.Errorf("failing peer asked %d times, want 1 (then backed off)", n)
	}
	if s := c.Stats(); s[0].Errors != 1 || s[1].Fetches != 3 {
		t.Errorf("stats = %+v", s)
	}
}

func TestBodyChecks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string // error substring
	}{
		{"stalls", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.Write(make([]byte, 50))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}, "stalled"},
		{"truncated", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.Write(make([]byte, 50))
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}, "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := serve(t, tt.handler)
			c := newClient(t, srv.URL)
			f, err := c.Fetch(context.Background(), "t1/a.m4s")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Body.Close()
			_, err = io.ReadAll(f.Body)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("read error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestWithoutPass: an appliance without a fill pass (a lab set up
// with a key file and an open origin) skips its peers, which would refuse
// it, and asks the origin without an Authorization header.
func TestWithoutPass(t *testing.T) {
	t.Parallel()
	origin, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Header["Authorization"]; ok || r.URL.Path != "/f/t1/a.m4s" {
			http.Error(w, "unexpected credential or path", 400)
			return
		}
		io.WriteString(w, "open")
	})
	peer, peerHits := serve(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "forbidden", 403) })
	c := newClientWith(t, "", peer.URL, origin.URL)
	f, err := c.Fetch(context.Background(), "t1/a.m4s")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f.Body)
	f.Body.Close()
	if string(b) != "open" || peerHits.Load() != 0 {
		t.Errorf("body %q, peer asked %d times; want open and 0", b, peerHits.Load())
	}
	if _, err := c.Fetch(context.Background(), "/a.m4s"); err == nil {
		t.Error("Fetch of a key without a title succeeded")
	}
}

// TestAgainstTheOrigin: the fill form and credential against a real
// origin. One without keys (a lab) serves an appliance that has no
// credential; one with the public keys serves the appliance's credential
// and refuses a fetch without one or with a forged one.
func TestAgainstTheOrigin(t *testing.T) {
	t.Parallel()
	keys, err := auth.ParseKeys(strings.NewReader("k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := auth.ParseKeys(strings.NewReader("k1 ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n"))
	forged, _ := other.SignFillPass("a1", time.Now().Add(time.Hour))
	startOrigin := func(keys *auth.Keys) string {
		cfg := origin.DefaultConfig()
		cfg.Root = t.TempDir()
		os.MkdirAll(filepath.Join(cfg.Root, "t1"), 0o755)
		os.WriteFile(filepath.Join(cfg.Root, "t1", "a.m4s"), []byte("segment"), 0o644)
		o, err := origin.New(cfg, origin.Deps{Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(o)
		t.Cleanup(func() { srv.Close(); o.Close() })
		return srv.URL
	}
	open, guarded := startOrigin(nil), startOrigin(keys.Public())
	tests := []struct {
		name, origin, cred string
		ok                 bool
	}{
		{"open origin, no credential", open, "", true},
		{"open origin, credential", open, credential(t), true},
		{"guarded origin, credential", guarded, credential(t), true},
		{"guarded origin, no credential", guarded, "", false},
		{"guarded origin, forged credential", guarded, forged, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := newClientWith(t, tt.cred, tt.origin).Fetch(context.Background(), "t1/a.m4s")
			if (err == nil) != tt.ok {
				t.Fatalf("Fetch: %v, want ok=%v", err, tt.ok)
			}
			if err == nil {
				b, _ := io.ReadAll(f.Body)
				f.Body.Close()
				if string(b) != "segment" {
					t.Errorf("body %q", b)
				}
			} else if !strings.Contains(err.Error(), "403") {
				t.Errorf("error %v, want the origin's 403", err)
			}
		})
	}
}
