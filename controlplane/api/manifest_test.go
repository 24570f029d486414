package api

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestManifestRoutes(t *testing.T) {
	a := newTestAPI(t)
	call := func(method, path, body string, admin bool) (int, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if admin {
			req.Header.Set("Authorization", "Bearer adm")
		}
		w := httptest.NewRecorder()
		a.ServeHTTP(w, req)
		return w.Code, w.Body.String()
	}
	tests := []struct {
		name, method, body string
		admin              bool
		want               int
		wantText           string
	}{
		{"none yet", "GET", "", true, 404, "no fill manifest"},
		{"needs admin", "PUT", `{"version":1,"titles":["t1"]}`, false, 401, ""},
		{"unknown title", "PUT", `{"version":1,"titles":["t1","nope"]}`, true, 400, "nope"},
		{"first", "PUT", `{"version":1,"titles":["t1"]}`, true, 200, ""},
		{"not newer", "PUT", `{"version":1,"titles":[]}`, true, 400, "not newer"},
		{"get", "GET", "", true, 200, `"id":"t1"`},
	}
	for _, tt := range tests {
		code, body := call(tt.method, "/v1/appliances/aa/manifest", tt.body, tt.admin)
		if code != tt.want || !strings.Contains(body, tt.wantText) {
			t.Errorf("%s: %d %s; want %d mentioning %q", tt.name, code, body, tt.want, tt.wantText)
		}
	}
	_, body := call("GET", "/v1/appliances/aa/manifest", "", true)
	var v ManifestView
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.Version != 1 || len(v.Titles) != 1 {
		t.Errorf("manifest view = %+v (%v)", v, err)
	}
}
