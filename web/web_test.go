package web

import (
	"io/fs"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func TestServesPageAndAssets(t *testing.T) {
	t.Parallel()
	u, err := New()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, wantType, wantBody string
		code                     int
	}{
		{"/", "text/html", `<script type="module" src="/ui/app.js">`, 200},
		{"/ui/app.js", "javascript", "import", 200},
		{"/ui/style.css", "text/css", ":root", 200},
		{"/ui/nope.js", "", "", 404},
		{"/other", "", "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			u.ServeHTTP(w, httptest.NewRequest("GET", tt.path, nil))
			if w.Code != tt.code {
				t.Fatalf("GET %s = %d, want %d", tt.path, w.Code, tt.code)
			}
			if got := w.Header().Get("Content-Type"); !strings.Contains(got, tt.wantType) {
				t.Errorf("Content-Type %q, want %q", got, tt.wantType)
			}
			if !strings.Contains(w.Body.String(), tt.wantBody) {
				t.Errorf("body lacks %q", tt.wantBody)
			}
		})
	}
}

func TestPageLoadsNothingFromElsewhere(t *testing.T) {
	t.Parallel()
	u, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"https://", "http://", "//cdn"} {
		if strings.Contains(string(u.index), bad) {
			t.Errorf("index.html refers to %q: the pages must work offline", bad)
		}
	}
	if csp := "default-src 'self'"; !strings.Contains(pageCSP, csp) {
		t.Errorf("CSP %q lacks %q", pageCSP, csp)
	}
}

func TestMissingVendorFiles(t *testing.T) {
	t.Parallel()
	u, err := newUI(fstest.MapFS{"static/index.html": {Data: []byte("<!doctype html>")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Missing(); len(got) != len(vendorFiles) {
		t.Errorf("Missing() = %v, want %v", got, vendorFiles)
	}
	if _, err := newUI(fstest.MapFS{}); err == nil {
		t.Error("a tree without index.html was accepted")
	}
}

// TestLocalStorageHoldsNoSecrets: the viewer's session is the HttpOnly
// cookie and the operator key lives in sessionStorage; the one thing the
// pages put in localStorage is the id of the profile picked.
func TestLocalStorageHoldsNoSecrets(t *testing.T) {
	t.Parallel()
	u, err := New()
	if err != nil {
		t.Fatal(err)
	}
	scripts, err := fs.Glob(u.files, "*.js")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, name := range scripts {
		b, err := fs.ReadFile(u.files, name)
		if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		for i := strings.Index(src, "localStorage.setItem("); i >= 0; i = strings.Index(src, "localStorage.setItem(") {
			src = src[i+len("localStorage.setItem("):]
			if !strings.HasPrefix(src, "PROFILE,") {
				got, _, _ := strings.Cut(src, ")")
				t.Errorf("%s: localStorage.setItem(%s): want only the profile id (PROFILE) kept there", name, got)
			}
		}
	}
}
