package profiling

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
)

// TestPyroscopeTags runs the profiler against a fake Pyroscope ingest
// endpoint and wants the profiles labelled with the appliance and site.
// Not parallel: it turns on the process's one CPU profiler.
func TestPyroscopeTags(t *testing.T) {
	var mu sync.Mutex
	var names []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		names = append(names, r.URL.Path+"?"+r.URL.Query().Get("name"))
		mu.Unlock()
	}))
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.PyroscopeURL = srv.URL
	cfg.Tags = map[string]string{"appliance": "a1", "site": "isp1-ams"}
	cfg.UploadRate = time.Second
	p, err := Start(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	p.Close() // uploads what it has
	p.Close() // twice is fine
	mu.Lock()
	defer mu.Unlock()
	if len(names) == 0 {
		t.Fatal("no profile reached the Pyroscope server")
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "/ingest?fillcast.appliance") || !strings.Contains(n, "appliance=a1") || !strings.Contains(n, "site=isp1-ams") {
			t.Fatalf("upload %q: want /ingest with name fillcast.appliance{appliance=a1,site=isp1-ams,...}", n)
		}
	}
}

func TestAdminListener(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, token, auth string
		want              int
	}{
		{"no token configured", "", "", 200},
		{"token required, missing", "secret", "", 401},
		{"token required, wrong", "secret", "Bearer nope", 401},
		{"token required, given", "secret", "Bearer secret", 200},
		{"token required, scheme in lower case", "secret", "bearer secret", 200},
		{"token required, trailing space", "secret", "Bearer secret ", 200},
		{"token required, a longer one", "secret", "Bearer secrets", 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := Start(DefaultConfig(), Deps{AdminToken: tc.token})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			p.ServeAdmin(ln)
			defer p.Close()
			req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/debug/pprof/goroutine?debug=1", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status: got %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == 200 && !strings.Contains(string(body), "goroutine profile") {
				t.Fatalf("body is not a goroutine profile: %.100q", body)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cfg       Config
		wantField string // "" when valid
	}{
		{"off", Config{}, ""},
		{"url", Config{PyroscopeURL: "http://pyroscope:4040"}, ""},
		{"not a url", Config{PyroscopeURL: "pyroscope:4040"}, "PyroscopeURL"},
		{"upload too often", Config{UploadRate: time.Millisecond}, "UploadRate"},
		{"upload rate negative", Config{UploadRate: -time.Second}, "UploadRate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			var ce *fillcast.ConfigError
			switch {
			case tc.wantField == "" && err != nil:
				t.Fatalf("Validate: got %v, want nil", err)
			case tc.wantField != "" && (!errors.As(err, &ce) || ce.Field != tc.wantField):
				t.Fatalf("Validate: got %v, want a *fillcast.ConfigError for %s", err, tc.wantField)
			}
		})
	}
}
