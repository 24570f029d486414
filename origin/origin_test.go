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
	"github.com/fillcast/fillcast/internal/poll"
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
		d.Keys = keys.Public()
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
		{"get fill form, no keys: open", "GET", "/f/t1/720p/seg-00001.m4s", nil, nil, 200},
		{"put fill form refused", "PUT", "/f/t1/a.m4s", seg, []string{"Authorization", "Bearer adm"}, 400},
		{"put dot-file refused", "PUT", "/t1/.tmp-a.m4s-1", seg, []string{"Authorization", "Bearer adm"}, 400},
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

func TestAccessWhenKeysSet(t *testing.T) {
	t.Parallel()
	srv, root, keys := newOrigin(t, true)
	os.MkdirAll(filepath.Join(root, "t1"), 0o755)
	os.WriteFile(filepath.Join(root, "t1", "master.m3u8"), []byte("#EXTM3U\n"), 0o644)
	good := keys.SignPath("t1", time.Now().Add(time.Hour), netip.Prefix{})
	local := keys.SignPath("t1", time.Now().Add(time.Hour), auth.ClientPrefix(netip.MustParseAddr("127.0.0.1")))
	elsewhere := keys.SignPath("t1", time.Now().Add(time.Hour), netip.MustParsePrefix("198.51.100.0/24"))
	far := keys.SignPath("t1", time.Now().Add(1000*time.Hour), netip.Prefix{})
	cred, err := keys.SignFillPass("a1", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := auth.ParseKeys(strings.NewReader("k1 ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n"))
	forged, _ := other.SignFillPass("a1", time.Now().Add(time.Hour))
	credential, _ := keys.SignCredential("a1")
	tests := []struct {
		name, path string
		hdr        []string
		want       int
	}{
		{"bare path refused", "/t1/master.m3u8", nil, 403},
		{"bare path with admin token", "/t1/master.m3u8", []string{"Authorization", "Bearer adm"}, 200},
		{"bare path with credential", "/t1/master.m3u8", []string{"Authorization", "Bearer " + cred}, 200},
		{"signed", good + "/master.m3u8", nil, 200},
		{"signed for this client's /24", local + "/master.m3u8", nil, 200},
		{"signed for another client", elsewhere + "/master.m3u8", nil, 403},
		{"signed beyond the lifetime", far + "/master.m3u8", nil, 403},
		{"bad token", "/c/k1.1.xx/t1/master.m3u8", nil, 403},
		{"fill with credential", "/f/t1/master.m3u8", []string{"Authorization", "Bearer " + cred}, 200},
		{"fill with the control-plane credential", "/f/t1/master.m3u8", []string{"Authorization", "Bearer " + credential}, 403},
		{"fill without credential", "/f/t1/master.m3u8", nil, 403},
		{"fill with forged credential", "/f/t1/master.m3u8", []string{"Authorization", "Bearer " + forged}, 403},
		{"fill with tampered credential", "/f/t1/master.m3u8", []string{"Authorization", "Bearer " + strings.Replace(cred, ".a1.", ".a2.", 1)}, 403},
		{"fill with a token as credential", "/f/t1/master.m3u8", []string{"Authorization", "Bearer " + strings.Split(good, "/")[2]}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, b := call(t, "GET", srv.URL+tt.path, nil, tt.hdr...)
			if resp.StatusCode != tt.want {
				t.Errorf("GET %s = %d, want %d", tt.path, resp.StatusCode, tt.want)
			}
			if resp.StatusCode == 403 && string(b) != "forbidden\n" {
				t.Errorf("GET %s: 403 body %q, want only forbidden", tt.path, b)
			}
		})
	}
}

// TestNeverServesDotFiles: neither a dot-file nor the temporary file of
// an upload in flight is served, with or without keys, even to the admin
// token.
func TestNeverServesDotFiles(t *testing.T) {
	t.Parallel()
	for _, withKeys := range []bool{false, true} {
		srv, root, keys := newOrigin(t, withKeys)
		os.MkdirAll(filepath.Join(root, "t1", ".git"), 0o755)
		os.WriteFile(filepath.Join(root, "t1", ".htpasswd"), []byte("secret"), 0o644)
		os.WriteFile(filepath.Join(root, "t1", ".git", "config"), []byte("secret"), 0o644)
		tok := keys.SignPath("t1", time.Now().Add(time.Hour), netip.Prefix{})

		// An upload in flight: its body arrives in two parts.
		pr, pw := io.Pipe()
		done := make(chan int)
		go func() {
			req, _ := http.NewRequest("PUT", srv.URL+"/t1/720p/seg-00001.m4s", pr)
			req.ContentLength = 20
			req.Header.Set("Authorization", "Bearer adm")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		pw.Write([]byte("0123456789"))
		var tmp string
		poll.Until(t, 10*time.Second, "the upload's temporary file", func() bool {
			entries, _ := os.ReadDir(filepath.Join(root, "t1", "720p"))
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".") {
					tmp = e.Name()
				}
			}
			return tmp != ""
		})
		for _, p := range []string{"/t1/.htpasswd", "/t1/.git/config", "/t1/720p/" + tmp} {
			for _, form := range []string{"", "/f", tok} {
				resp, b := call(t, "GET", srv.URL+form+p, nil, "Authorization", "Bearer adm")
				if resp.StatusCode != 404 {
					t.Errorf("keys %v: GET %s = %d %q, want 404", withKeys, form+p, resp.StatusCode, b)
				}
			}
		}
		pw.Write([]byte("0123456789"))
		pw.Close()
		if code := <-done; code != 201 {
			t.Errorf("the upload: %d, want 201", code)
		}
	}
}

// TestPrivateKeysWarn: an origin given the private key file says so.
func TestPrivateKeysWarn(t *testing.T) {
	t.Parallel()
	keys, _ := auth.ParseKeys(strings.NewReader("k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"))
	for _, tt := range []struct {
		keys *auth.Keys
		warn bool
	}{{keys, true}, {keys.Public(), false}} {
		var log bytes.Buffer
		cfg := DefaultConfig()
		cfg.Root = t.TempDir()
		o, err := New(cfg, Deps{Keys: tt.keys, Log: slog.New(slog.NewTextHandler(&log, nil))})
		if err != nil {
			t.Fatal(err)
		}
		o.Close()
		if got := strings.Contains(log.String(), "level=WARN"); got != tt.warn {
			t.Errorf("private %v: warned %v, want %v: %s", tt.keys.CanSign(), got, tt.warn, log.String())
		}
	}
}
