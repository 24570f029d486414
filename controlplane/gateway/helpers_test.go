package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the JSON log records written so far.
func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		if l == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// testGateway is a Gateway served on loopback with its registry and log.
type testGateway struct {
	*Gateway
	srv   *httptest.Server
	reg   *prometheus.Registry
	log   *syncBuffer
	clock *fakeClock
}

func newTestGateway(t *testing.T, cfg Config) *testGateway {
	t.Helper()
	return newAuthGateway(t, cfg, nil)
}

// keyAuthn authenticates "Bearer <key>" by looking the key up.
func keyAuthn(keys map[string]auth.Principal) Authenticator {
	return AuthenticatorFunc(func(r *http.Request) (auth.Principal, error) {
		key := auth.Bearer(r.Header.Get("Authorization"))
		if key == "" {
			return auth.Principal{}, nil
		}
		if p, ok := keys[key]; ok {
			return p, nil
		}
		return auth.Principal{}, errors.New("unknown key")
	})
}

// newAuthGateway is newTestGateway with an authenticator.
func newAuthGateway(t *testing.T, cfg Config, authn Authenticator) *testGateway {
	t.Helper()
	return newGatewayWith(t, cfg, func(d *Deps) { d.Authenticator = authn })
}

// newGatewayWith is newTestGateway with Deps changed by tweak, which
// sees the test's logger, registry, fake clock and seed already in place.
func newGatewayWith(t *testing.T, cfg Config, tweak func(*Deps)) *testGateway {
	t.Helper()
	tg := &testGateway{reg: prometheus.NewRegistry(), log: &syncBuffer{}, clock: newFakeClock()}
	deps := Deps{
		Logger:     slog.New(slog.NewJSONHandler(tg.log, nil)),
		Registerer: tg.reg,
		Now:        tg.clock.Now,
		Rand:       strings.NewReader("0123456789abcdef"),
	}
	tweak(&deps)
	g, err := New(cfg, deps)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tg.Gateway = g
	tg.srv = httptest.NewServer(g)
	t.Cleanup(func() {
		tg.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tg
}

func (tg *testGateway) handle(t *testing.T, pattern string, opts RouteOptions, h HandlerFunc) {
	t.Helper()
	if err := tg.Handle(pattern, opts, h); err != nil {
		t.Fatalf("Handle(%q): %v", pattern, err)
	}
}

// response is what a test looks at in an answer.
type response struct {
	status int
	header http.Header
	body   string
}

func (tg *testGateway) do(t *testing.T, method, path string, header http.Header, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, tg.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := tg.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// errorBodyOf decodes a JSON error body.
func errorBodyOf(t *testing.T, r response) errorBody {
	t.Helper()
	var eb errorBody
	if err := json.Unmarshal([]byte(r.body), &eb); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	return eb
}

// metricValue returns the value of the metric family name with exactly
// the labels given, or -1 if there is none.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			return value(m)
		}
	}
	return -1
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

// text is an endpoint that writes s.
func text(s string) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		_, err := io.WriteString(w, s)
		return err
	}
}

func mustURL(path string) *url.URL {
	u, err := url.Parse(path)
	if err != nil {
		panic(err)
	}
	return u
}
