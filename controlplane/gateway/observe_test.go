package gateway

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/controlplane/gateway/adaptive"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/prometheus/client_golang/prometheus"
)

func TestAccessLog(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, Config{})
	tg.handle(t, "GET /v1/titles/{id}", RouteOptions{Name: "get_title"}, func(w http.ResponseWriter, r *http.Request) error {
		tg.clock.Advance(1500 * time.Microsecond)
		if r.PathValue("id") == "bad" {
			return errors.New("catalog: corrupt record")
		}
		_, err := w.Write([]byte("hello"))
		return err
	})
	tg.do(t, "GET", "/v1/titles/t1", http.Header{"X-Request-Id": {"req-1"}}, "")
	tg.do(t, "GET", "/v1/titles/bad", http.Header{"X-Request-Id": {"req-2"}}, "")
	tg.do(t, "GET", "/nowhere", http.Header{"X-Request-Id": {"req-3"}}, "")
	want := map[string]map[string]any{
		"req-1": {"level": "INFO", "method": "GET", "route": "get_title", "path": "/v1/titles/t1", "status": 200.0, "bytes": 5.0, "duration": 1.5e6, "client": "127.0.0.1"},
		"req-2": {"level": "WARN", "route": "get_title", "status": 500.0, "error": "catalog: corrupt record"},
		"req-3": {"level": "INFO", "route": "unmatched", "status": 404.0},
	}
	poll.Until(t, 10*time.Second, "three access log lines", func() bool {
		n := 0
		for _, l := range tg.log.lines(t) {
			if l["msg"] == "request" {
				n++
			}
		}
		return n == 3
	})
	for _, l := range tg.log.lines(t) {
		if l["msg"] != "request" {
			continue
		}
		id, _ := l["request_id"].(string)
		fields, ok := want[id]
		if !ok {
			t.Errorf("unexpected access log line %v", l)
			continue
		}
		for k, v := range fields {
			if l[k] != v {
				t.Errorf("%s: %s = %v, want %v", id, k, l[k], v)
			}
		}
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, Config{})
	tg.handle(t, "GET /v1/playback/{title}", RouteOptions{Name: "playback"}, text("{}"))
	tg.handle(t, "GET /v1/search", RouteOptions{Name: "search"}, func(w http.ResponseWriter, r *http.Request) error {
		return Errorf(http.StatusBadRequest, "empty query")
	})
	for range 3 {
		tg.do(t, "GET", "/v1/playback/t1", nil, "")
	}
	tg.do(t, "GET", "/v1/search", nil, "")
	tg.do(t, "GET", "/v1/nothing", nil, "")
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"fillcast_api_requests_total", map[string]string{"route": "playback", "code": "200"}, 3},
		{"fillcast_api_requests_total", map[string]string{"route": "search", "code": "400"}, 1},
		{"fillcast_api_requests_total", map[string]string{"route": "unmatched", "code": "404"}, 1},
		{"fillcast_api_request_duration_seconds", map[string]string{"route": "playback"}, 3},
		{"fillcast_api_in_flight_requests", map[string]string{"route": "playback"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name+" "+tt.labels["route"], func(t *testing.T) {
			poll.Until(t, 10*time.Second, "the count", func() bool { return metricValue(t, tg.reg, tt.name, tt.labels) == tt.want })
		})
	}
}

func TestMetricsRegistration(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	if _, err := New(Config{}, Deps{Registerer: reg}); err != nil {
		t.Fatalf("first New: %v", err)
	}
	_, err := New(Config{}, Deps{Registerer: reg})
	if err == nil || !strings.HasPrefix(err.Error(), "gateway: register metrics") {
		t.Errorf("second New on the same registry = %v, want a registration error", err)
	}
	if _, err := New(Config{}, Deps{}); err != nil {
		t.Errorf("New without a registerer = %v, want nil", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"zero", Config{}, ""},
		{"defaults", DefaultConfig(), ""},
		{"fixed and off", Config{Concurrency: ConcurrencyConfig{Off: true, Fixed: 10}}, ""},
		{"negative fixed limit", Config{Concurrency: ConcurrencyConfig{Fixed: -1}}, "config Concurrency.Fixed: "},
		{"adaptive minimum above maximum", Config{Concurrency: ConcurrencyConfig{Adaptive: adaptive.Config{MinLimit: 50, MaxLimit: 10}}}, "config Concurrency.Adaptive.MaxLimit: "},
		{"adaptive tolerance", Config{Concurrency: ConcurrencyConfig{Adaptive: adaptive.Config{Tolerance: 0.5}}}, "config Concurrency.Adaptive.Tolerance: "},
		{"negative retry after", Config{ShedRetryAfter: -1}, "config ShedRetryAfter: "},
		{"negative body", Config{MaxBodyBytes: -1}, "config MaxBodyBytes: "},
		{"negative buffer", Config{MaxBufferBytes: -1}, "config MaxBufferBytes: "},
		{"nil filter", Config{Inbound: []InboundFilter{nil}}, "config Inbound: filter 0 is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), "gateway: ") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate = %v, want a gateway: error about %q", err, tt.wantErr)
			}
		})
	}
}
