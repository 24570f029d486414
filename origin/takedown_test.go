package origin

import (
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDeleteTakesTheTitleDown: DELETE /{title} with the admin token
// removes the title's files and refuses its tokens expiring at or before
// tokens_until, also after a restart; bad requests are refused.
func TestDeleteTakesTheTitleDown(t *testing.T) {
	t.Parallel()
	srv, root, keys := newOrigin(t, true)
	put := func(title string) {
		p := filepath.Join(root, title, "720p", "seg-00001.m4s")
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("segment"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put("t1")
	put("t2")
	now := time.Now()
	until := now.Add(2 * time.Hour).Unix()
	old := keys.SignPath("t1", now.Add(time.Hour), netip.Prefix{}) + "/720p/seg-00001.m4s"
	fresh := keys.SignPath("t1", time.Unix(until+60, 0), netip.Prefix{}) + "/720p/seg-00001.m4s"
	other := keys.SignPath("t2", now.Add(time.Hour), netip.Prefix{}) + "/720p/seg-00001.m4s"
	admin := []string{"Authorization", "Bearer adm"}
	q := "?tokens_until=" + strconv.FormatInt(until, 10)
	steps := []struct {
		name, method, path string
		hdr                []string
		want               int
	}{
		{"old token before", "GET", old, nil, 200},
		{"delete without the admin token", "DELETE", "/t1" + q, nil, 401},
		{"delete with a wrong token", "DELETE", "/t1" + q, []string{"Authorization", "Bearer nope"}, 401},
		{"delete a file", "DELETE", "/t1/720p/seg-00001.m4s", admin, 405},
		{"delete a bad title", "DELETE", "/t.1" + q, admin, 400},
		{"delete with a bad bound", "DELETE", "/t1?tokens_until=soon", admin, 400},
		{"delete", "DELETE", "/t1" + q, admin, 204},
		{"delete again", "DELETE", "/t1/" + q, admin, 204},
		{"old token after", "GET", old, nil, 403},
		{"other title", "GET", other, nil, 200},
	}
	for _, s := range steps {
		resp, body := call(t, s.method, srv.URL+s.path, nil, s.hdr...)
		if resp.StatusCode != s.want {
			t.Errorf("%s: %s %s = %d %q, want %d", s.name, s.method, s.path, resp.StatusCode, body, s.want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "t1")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("t1's directory after the delete: %v, want it gone", err)
	}
	// Published again: the old token is still refused, a later one
	// served; and so after a restart on the same root.
	put("t1")
	cfg := DefaultConfig()
	cfg.Root = root
	restarted, err := New(cfg, Deps{AdminToken: "adm", Keys: keys.Public(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewServer(restarted)
	t.Cleanup(func() { srv2.Close(); restarted.Close() })
	for _, base := range []string{srv.URL, srv2.URL} {
		if resp, body := call(t, "GET", base+old, nil); resp.StatusCode != 403 || !strings.Contains(string(body), "taken down") {
			t.Errorf("old token, published again: %d %q, want 403 taken down", resp.StatusCode, body)
		}
		if resp, _ := call(t, "GET", base+fresh, nil); resp.StatusCode != 200 {
			t.Errorf("token issued after the takedown: %d, want 200", resp.StatusCode)
		}
	}
	if resp, _ := call(t, "GET", srv.URL+"/"+takedownsFile, nil, admin...); resp.StatusCode == 200 {
		t.Errorf("the takedown file is served")
	}
}
