// Package viewertest signs a viewer in to a running control plane, for
// the tests that play titles through its API: playback needs a viewer's
// session since accounts exist.
package viewertest

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/fillcast/fillcast"
)

// Plan is the plan test viewers are on: every resolution, 16 screens,
// downloads.
const Plan = "test-wall"

// Viewer is a signed-in viewer. Its playbacks reuse one stream lease, so
// that polling playback never reaches the plan's screen limit.
type Viewer struct {
	// Token is the session token.
	Token string

	mu     sync.Mutex
	stream string
}

// New creates the test plan (with the admin token) and an account on it
// at the control plane base, signs in and returns the viewer. client nil
// means http.DefaultClient.
func New(t testing.TB, client *http.Client, base, adminToken string) *Viewer {
	t.Helper()
	plan := `{"name":"Test wall","max_height":4320,"max_streams":16,"downloads":true,"price":{"amount":0,"currency":"EUR"},"period":"month"}`
	do(t, client, "PUT", base+"/v1/plans/"+Plan, plan, "Bearer "+adminToken, http.StatusOK, nil)
	email := strings.ToLower(rand.Text()) + "@test.fillcast"
	body := fmt.Sprintf(`{"email":%q,"password":"correct horse battery","plan":%q}`, email, Plan)
	do(t, client, "POST", base+"/v1/accounts", body, "", http.StatusCreated, nil)
	var s struct {
		Token string `json:"token"`
	}
	do(t, client, "POST", base+"/v1/sessions", fmt.Sprintf(`{"email":%q,"password":"correct horse battery"}`, email), "", http.StatusCreated, &s)
	return &Viewer{Token: s.Token}
}

// Authorize adds the session to a request.
func (v *Viewer) Authorize(r *http.Request) { r.Header.Set("Authorization", "Bearer "+v.Token) }

// Playback asks base for a title's playback (protocol "" is HLS) and
// returns the status, the answer and the raw body.
func (v *Viewer) Playback(t testing.TB, client *http.Client, base, title, protocol string) (int, fillcast.Playback, []byte) {
	t.Helper()
	q := url.Values{}
	if protocol != "" {
		q.Set("protocol", protocol)
	}
	v.mu.Lock()
	if v.stream != "" {
		q.Set("stream", v.stream)
	}
	v.mu.Unlock()
	u := base + "/v1/playback/" + url.PathEscape(title)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	code, b := send(t, client, "GET", u, "", "Bearer "+v.Token)
	var p fillcast.Playback
	if code == http.StatusOK {
		json.Unmarshal(b, &p)
		if p.StreamID != "" {
			v.mu.Lock()
			v.stream = p.StreamID
			v.mu.Unlock()
		}
	}
	return code, p, b
}

func do(t testing.TB, client *http.Client, method, u, body, auth string, want int, out any) {
	t.Helper()
	code, b := send(t, client, method, u, body, auth)
	if code != want {
		t.Fatalf("viewertest: %s %s: %d %s, want %d", method, u, code, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("viewertest: %s %s: %v", method, u, err)
		}
	}
}

func send(t testing.TB, client *http.Client, method, u, body, auth string) (int, []byte) {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequest(method, u, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatalf("viewertest: %v", err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
