package gateway

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type site struct {
	ID       string   `json:"id"`
	Kind     string   `json:"kind"`
	Prefixes []string `json:"prefixes"`
	Window   struct {
		Start int `json:"start_hour"`
	} `json:"fill_window"`
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		contentType string
		body        string
		limit       int64
		wantStatus  int // 0: success
		wantMsg     string
	}{
		{"good", "application/json", `{"id":"isp1","kind":"isp","prefixes":["203.0.113.0/24"]}`, 0, 0, ""},
		{"no content type is fine", "", `{"id":"isp1"}`, 0, 0, ""},
		{"json with charset", "application/json; charset=utf-8", `{"id":"isp1"}`, 0, 0, ""},
		{"unknown field", "", `{"id":"isp1","kindd":"isp"}`, 0, 400, `unknown field "kindd"`},
		{"wrong type", "", `{"id":7}`, 0, 400, `field "id": want a string, got JSON number`},
		{"nested wrong type", "", `{"fill_window":{"start_hour":"two"}}`, 0, 400, `field "fill_window.start_hour": want a number`},
		{"array element type", "", `{"prefixes":[1]}`, 0, 400, `field "prefixes": want a string`},
		{"not an object", "", `[1,2]`, 0, 400, "body: want an object, got JSON array"},
		{"syntax", "", `{"id":}`, 0, 400, "malformed JSON at byte 7"},
		{"truncated", "", `{"id":"isp1"`, 0, 400, "ends in the middle"},
		{"empty", "", ``, 0, 400, "request body is empty"},
		{"trailing value", "", `{"id":"a"} {"id":"b"}`, 0, 400, "unexpected data after the JSON value"},
		{"trailing whitespace ok", "", "{\"id\":\"a\"}\n\t ", 0, 0, ""},
		{"form content type", "application/x-www-form-urlencoded", `id=a`, 0, 415, "send application/json"},
		{"too big", "", `{"id":"` + strings.Repeat("a", 100) + `"}`, 32, 413, "larger than 32 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/v1/sites", strings.NewReader(tt.body))
			if tt.body == "" {
				r.Body = http.NoBody
			}
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			if tt.limit > 0 {
				r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, tt.limit)
			}
			var s site
			err := DecodeJSON(r, &s)
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("DecodeJSON = %v, want nil", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("DecodeJSON = %v, want an *Error", err)
			}
			if e.Status != tt.wantStatus || !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("got %d %q, want %d containing %q", e.Status, e.Message, tt.wantStatus, tt.wantMsg)
			}
		})
	}
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		v          any
		wantErr    bool
		wantBody   string
		wantStatus int
	}{
		{"snake case struct", struct {
			SteeringURL string `json:"steering_url"`
		}{"http://a/b?x=1&y=2"}, false, "{\"steering_url\":\"http://a/b?x=1&y=2\"}\n", 201},
		{"unencodable", map[string]any{"f": func() {}}, true, "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			err := WriteJSON(w, 201, tt.v)
			if (err != nil) != tt.wantErr {
				t.Fatalf("WriteJSON = %v, want error %v", err, tt.wantErr)
			}
			if got := w.Body.String(); got != tt.wantBody || w.Code != tt.wantStatus {
				t.Errorf("got %d %q, want %d %q", w.Code, got, tt.wantStatus, tt.wantBody)
			}
			if !tt.wantErr && w.Header().Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type = %q", w.Header().Get("Content-Type"))
			}
		})
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"id":"a"}`, `{"kindd":1}`, `{"fill_window":{"start_hour":"x"}}`, `[`, `{} {}`, `"s"`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/", io.NopCloser(strings.NewReader(body)))
		var s site
		err := DecodeJSON(r, &s)
		if err == nil {
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Status != 400 || e.Message == "" {
			t.Fatalf("DecodeJSON(%q) = %v, want a 400 *Error with a message", body, err)
		}
	})
}

func TestWriteJSONETag(t *testing.T) {
	t.Parallel()
	v := map[string]int{"version": 3}
	w := httptest.NewRecorder()
	if err := WriteJSONETag(w, httptest.NewRequest("GET", "/", nil), v); err != nil {
		t.Fatal(err)
	}
	tag := w.Header().Get("ETag")
	if w.Code != 200 || w.Body.String() != "{\"version\":3}\n" || len(tag) != 34 {
		t.Fatalf("first GET: %d %q, ETag %q", w.Code, w.Body.String(), tag)
	}
	tests := []struct {
		name, ifNoneMatch string
		v                 any
		want              int
	}{
		{"same value, its tag", tag, v, 304},
		{"same value, weak and in a list", `"other", W/` + tag, v, 304},
		{"same value, any", "*", v, 304},
		{"same value, another tag", `"0123"`, v, 200},
		{"changed value, the old tag", tag, map[string]int{"version": 4}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("If-None-Match", tt.ifNoneMatch)
			w := httptest.NewRecorder()
			if err := WriteJSONETag(w, r, tt.v); err != nil {
				t.Fatal(err)
			}
			if w.Code != tt.want || (tt.want == 304) != (w.Body.Len() == 0) || w.Header().Get("ETag") == "" {
				t.Errorf("got %d with %d bytes, ETag %q; want %d", w.Code, w.Body.Len(), w.Header().Get("ETag"), tt.want)
			}
		})
	}
	if err := WriteJSONETag(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), map[string]any{"f": func() {}}); err == nil {
		t.Error("an unencodable value was written")
	}
}
