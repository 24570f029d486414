package origin

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/auth"
)

func newOrigin(t *testing.T, withKeys bool) (*httptest.Server, string, *auth.Keys) {
	t.Helper()
	keys, err := auth.ParseKeys(strings.NewReader("k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	cfg := DefaultConfig()
	cfg.Root, cfg.MaxUploadBytes = root, 1<<20
	d := Deps{AdminToken: "adm", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if withKeys {
		d.Keys = keys
	}
	o, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(o)
	t.Cleanup(func() { srv.Close(); o.Close() })
	return srv, root, keys
}

func call(t *testing.T, method, url string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestPutThenGet(t *testing.T) {
	t.Parallel()
	srv, root, _ := newOrigin(t, false)
	seg := bytes.Repeat([]byte("0123456789"), 1000)
	tests := []struct {
		name   string
		method string
		path   string
		body   []byte
		hdr    []string
		want   int
	}{
		{"put without token", "PUT", "/t1/720p/seg-00001.m4s", seg, nil, 401},
		{"put", "PUT", "/t1/720p/seg-00001.m4s", seg, []string{"Authorization", "Bearer adm"}, 201},
		{"put token form refused", "PUT", "/c/tok/t1/a.m4s", seg, []string{"Authorization", "Bearer adm"}, 400},
		{"put traversal", "PUT", "/t1/../escape.m4s", seg, []string{"Authorization", "Bearer adm"}, 400},
		{"put too large", "PUT", "/t1/big.mp4", make([]byte, 2<<20), []string{"Authorization", "Bearer adm"}, 413},
		{"get", "GET", "/t1/720p/seg-00001.m4s", nil, nil, 200},
		{"get token form", "GET", "/c/anything/t1/720p/seg-00001.m4s", nil, nil, 200},
		{"range", "GET", "/t1/720p/seg-00001.m4s", nil, []string{"Range", "bytes=0-9"}, 206},
		{"missing", "GET", "/t1/720p/seg-00002.m4s", nil, nil, 404},
		{"directory", "GET", "/t1/720p", nil, nil, 404},
		{"traversal", "GET", "/t1/%2e%2e/%2e%2e/etc/passwd", nil, nil, 400},
		{"delete refused", "DELETE", "/t1/720p/seg-00001.m4s", nil, []string{"Authorization", "Bearer adm"}, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != nil {
				body = bytes.NewReader(tt.body)
			}
			resp, b := call(t, tt.method, srv.URL+tt.path, body, tt.hdr...)
			if resp.StatusCode != tt.want {
				t.Errorf("%s %s = %d, want %d (%s)", tt.method, tt.path, resp.StatusCode, tt.want, b)
			}
		})
	}
	resp, b := call(t, "GET", srv.URL+"/t1/720p/seg-00001.m4s", nil)
	if !bytes.Equal(b, seg) || resp.Header.Get("Content-Type") != "video/iso.segment" || resp.Header.Get("ETag") == "" {
		t.Errorf("GET after PUT: equal %v, headers %v", bytes.Equal(b, seg), resp.Header)
	}
	etag := resp.Header.Get("ETag")
	if resp, _ := call(t, "GET", srv.URL+"/t1/720p/seg-00001.m4s", nil, "If-None-Match", etag); resp.StatusCode != 304 {
		t.Errorf("If-None-Match = %d, want 304", resp.StatusCode)
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "t1")); len(entries) != 1 {
		t.Errorf("title dir holds %d entries, want only 720p (no temporary or oversized files)", len(entries))
	}
}

func TestShortUploadLeavesOldFile(t *testing.T) {
	t.Parallel()
	srv, root, _ := newOrigin(t, false)
	call(t, "PUT", srv.URL+"/t1/a.m4s", strings.NewReader("old"), "Authorization", "Bearer adm")
	// Declare 100 bytes, send 10, close: the PUT must fail and keep "old".
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "PUT /t1/a.m4s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer adm\r\nContent-Length: 100\r\n\r\n0123456789")
	conn.(*net.TCPConn).CloseWrite()
	io.ReadAll(conn)
	conn.Close()
	got, _ := os.ReadFile(filepath.Join(root, "t1", "a.m4s"))
	if string(got) != "old" {
		t.Errorf("after a truncated upload the file holds %q, want %q", got, "old")
	}
	entries, _ := os.ReadDir(filepath.Join(root, "t1"))
	if len(entries) != 1 {
		t.Errorf("temporary file left behind: %d entries", len(entries))
	}
}

func TestSymlinkEscapeRefused(t *testing.T) {
	t.Parallel()
	srv, root, _ := newOrigin(t, false)
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret.m4s"), []byte("secret"), 0o644)
	os.MkdirAll(filepath.Join(root, "t1"), 0o755)
	os.Symlink(outside, filepath.Join(root, "t1", "link"))
	if resp, b := call(t, "GET", srv.URL+"/t1/link/secret.m4s", nil); resp.StatusCode == 200 {
		t.Errorf("served %q through a symlink out of the root", b)
	}
}

func TestTokensWhenKeysSet(t *testing.T) {
	t.Parallel()
	srv, root, keys := newOrigin(t, true)
	os.MkdirAll(filepath.Join(root, "t1"), 0o755)
	os.WriteFile(filepath.Join(root, "t1", "master.m3u8"), []byte("#EXTM3U\n"), 0o644)
	good := keys.SignPath("t1", time.Now().Add(time.Hour), netip.Prefix{})
	tests := []struct {
		name, path string
		hdr        []string
		want       int
	}{
		{"bare path refused", "/t1/master.m3u8", nil, 403},
		{"bare path with admin token", "/t1/master.m3u8", []string{"Authorization", "Bearer adm"}, 200},
		{"signed", good + "/master.m3u8", nil, 200},
		{"bad token", "/c/k1.1.xx/t1/master.m3u8", nil, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if resp, _ := call(t, "GET", srv.URL+tt.path, nil, tt.hdr...); resp.StatusCode != tt.want {
				t.Errorf("GET %s = %d, want %d", tt.path, resp.StatusCode, tt.want)
			}
		})
	}
}
