package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/ratelimit"
)

// call sends one request to a through the whole filter chain.
type call struct {
	method, path, body string
	bearer, profile    string
	cookie, origin     string
	addr               string
	header             http.Header // more request headers
}

func (c call) do(t *testing.T, a *API) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	req.RemoteAddr = "192.0.2.7:5555"
	if c.addr != "" {
		req.RemoteAddr = c.addr + ":5555"
	}
	req.Header.Set("Content-Type", "application/json")
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	if c.profile != "" {
		req.Header.Set(profileHeader, c.profile)
	}
	if c.cookie != "" {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: c.cookie})
	}
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	a.ServeHTTP(w, req)
	return w
}

func (c call) want(t *testing.T, a *API, code int, out any) string {
	t.Helper()
	w := c.do(t, a)
	if w.Code != code {
		t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, w.Code, w.Body, code)
	}
	if out != nil {
		if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: %v: %s", c.method, c.path, err, w.Body)
		}
	}
	return w.Body.String()
}

// TestSignUpAndSignIn: accounts, sessions and their cookie, the same
// 401 whether or not the email exists, and throttling.
func TestSignUpAndSignIn(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	var acct accountAnswer
	call{method: "POST", path: "/v1/accounts", body: `{"email":"Ann@Example.com","password":"correct horse battery","plan":"basic"}`}.want(t, a, 201, &acct)
	if acct.Email != "ann@example.com" || acct.Plan != "basic" || acct.ID == "" {
		t.Errorf("account %+v", acct)
	}
	for _, tt := range []struct {
		body string
		code int
	}{
		{`{"email":"ann@example.com","password":"another password","plan":"basic"}`, 409},
		{`{"email":"bob@example.com","password":"short","plan":"basic"}`, 400},
		{`{"email":"not an email","password":"correct horse battery","plan":"basic"}`, 400},
		{`{"email":"bob@example.com","password":"correct horse battery","plan":"platinum"}`, 400},
		{`{"email":"bob@example.com","password":"correct horse battery"}`, 400},
		{`{"email":"bob@example.com","password":"correct horse battery","plan":"basic","admin":true}`, 400},
	} {
		call{method: "POST", path: "/v1/accounts", body: tt.body}.want(t, a, tt.code, nil)
	}
	w := call{method: "POST", path: "/v1/sessions", body: `{"email":"ann@example.com","password":"correct horse battery"}`}.do(t, a)
	var s signInAnswer
	if w.Code != 201 || json.Unmarshal(w.Body.Bytes(), &s) != nil || !strings.HasPrefix(s.Token, "fcs.") || s.AccountID != acct.ID || s.ExpiresAt.IsZero() {
		t.Fatalf("sign in: %d %s", w.Code, w.Body)
	}
	ck := w.Result().Cookies()
	if len(ck) != 1 || ck[0].Name != sessionCookie || ck[0].Value != s.Token || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteLaxMode {
		t.Errorf("session cookie %+v", ck)
	}
	wrong := call{method: "POST", path: "/v1/sessions", body: `{"email":"ann@example.com","password":"wrong password!"}`}.want(t, a, 401, nil)
	unknown := call{method: "POST", path: "/v1/sessions", body: `{"email":"nobody@example.com","password":"wrong password!"}`, addr: "198.51.100.9"}.want(t, a, 401, nil)
	if strip(wrong) != strip(unknown) {
		t.Errorf("wrong password answered %q, unknown email %q: want the same", wrong, unknown)
	}
	// Five failures a minute for one email, then 429 even with the
	// right password, from any address.
	for i := range 4 {
		call{method: "POST", path: "/v1/sessions", body: `{"email":"ann@example.com","password":"wrong password!"}`, addr: "203.0.113." + string(rune('1'+i))}.want(t, a, 401, nil)
	}
	w = call{method: "POST", path: "/v1/sessions", body: `{"email":"ann@example.com","password":"correct horse battery"}`, addr: "203.0.113.50"}.do(t, a)
	if w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Errorf("sixth attempt: %d %s (Retry-After %q), want 429", w.Code, w.Body, w.Header().Get("Retry-After"))
	}
	// The session works as a bearer and as a cookie; signing out ends it.
	var me accountView
	call{method: "GET", path: "/v1/account", bearer: s.Token}.want(t, a, 200, &me)
	if me.Email != "ann@example.com" || me.Plan.MaxHeight != 480 || len(me.Profiles) != 1 || me.Profile != me.Profiles[0].ID {
		t.Errorf("account %+v", me)
	}
	call{method: "GET", path: "/v1/account", cookie: s.Token}.want(t, a, 200, nil)
	call{method: "GET", path: "/v1/account"}.want(t, a, 401, nil)
	call{method: "POST", path: "/v1/profiles", body: `{"name":"Evil"}`, cookie: s.Token, origin: "https://evil.example"}.want(t, a, 401, nil)
	call{method: "DELETE", path: "/v1/sessions/current", cookie: s.Token}.want(t, a, 204, nil)
	call{method: "GET", path: "/v1/account", bearer: s.Token}.want(t, a, 401, nil)
}

// strip removes the request id from an error body.
func strip(body string) string {
	var e map[string]any
	json.Unmarshal([]byte(body), &e)
	delete(e, "request_id")
	b, _ := json.Marshal(e)
	return string(b)
}

// TestProfiles: at most five, the first for good, kids profiles see and
// play only titles rated for them.
func TestProfiles(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	ctx := context.Background()
	for _, tt := range []*fillcast.Title{
		{ID: "family", Name: "Family", Status: "ready", Maturity: "7+", Renditions: []fillcast.Rendition{{ID: "360p", Kind: "video", Height: 360, Bandwidth: 1e6}}},
		{ID: "gore", Name: "Gore", Status: "ready", Maturity: "16+", Renditions: []fillcast.Rendition{{ID: "360p", Kind: "video", Height: 360, Bandwidth: 1e6}}},
	} {
		if err := a.d.Node.Apply(ctx, fsm.Command{Op: fsm.OpPutTitle, Title: tt}); err != nil {
			t.Fatal(err)
		}
	}
	token := signIn(t, a, "fam@example.com", "wall")
	var kid profileView
	call{method: "POST", path: "/v1/profiles", body: `{"name":"Kid","kids":true}`, bearer: token}.want(t, a, 201, &kid)
	for i := range 3 {
		call{method: "POST", path: "/v1/profiles", body: `{"name":"P` + string(rune('0'+i)) + `"}`, bearer: token}.want(t, a, 201, nil)
	}
	call{method: "POST", path: "/v1/profiles", body: `{"name":"Sixth"}`, bearer: token}.want(t, a, 409, nil)
	call{method: "POST", path: "/v1/profiles", body: `{"name":""}`, bearer: token}.want(t, a, 400, nil)
	var me accountView
	call{method: "GET", path: "/v1/account", bearer: token}.want(t, a, 200, &me)
	if len(me.Profiles) != 5 {
		t.Fatalf("profiles %+v", me.Profiles)
	}
	call{method: "DELETE", path: "/v1/profiles/" + me.Profiles[0].ID, bearer: token}.want(t, a, 409, nil)
	call{method: "DELETE", path: "/v1/profiles/" + me.Profiles[4].ID, bearer: token}.want(t, a, 204, nil)
	call{method: "DELETE", path: "/v1/profiles/nothing", bearer: token}.want(t, a, 404, nil)
	call{method: "GET", path: "/v1/account", bearer: token, profile: "nothing"}.want(t, a, 400, nil)

	var page titlePage
	call{method: "GET", path: "/v1/titles", bearer: token, profile: kid.ID}.want(t, a, 200, &page)
	titles := page.Titles
	for _, ti := range titles {
		if ti.ID == "gore" {
			t.Errorf("a kids profile lists %s, rated %s", ti.ID, ti.Maturity)
		}
	}
	if len(titles) != 2 { // t1 (unrated: all) and family
		t.Errorf("kids catalog %d titles, want 2", len(titles))
	}
	call{method: "GET", path: "/v1/titles/gore", bearer: token, profile: kid.ID}.want(t, a, 403, nil)
	call{method: "GET", path: "/v1/playback/gore", bearer: token, profile: kid.ID}.want(t, a, 403, nil)
	call{method: "GET", path: "/v1/playback/family", bearer: token, profile: kid.ID}.want(t, a, 200, nil)
	call{method: "GET", path: "/v1/playback/gore", bearer: token}.want(t, a, 200, nil)
}

// TestStreamLimit: a plan's screens are leases that playbacks take, that
// a stream id reuses, that end by DELETE or by going quiet, and that
// hold across nodes (the leases are in the replicated state).
func TestStreamLimit(t *testing.T) {
	t.Parallel()
	a := newTestAPIWith(t, func(d *Deps) { withDiscovery(t, d, t.TempDir()) })
	ctx := context.Background()
	if err := a.d.Node.Apply(ctx, fsm.Command{Op: fsm.OpPutTitle, Title: &fillcast.Title{ID: "uhd", Name: "UHD only", Status: "ready",
		Renditions: []fillcast.Rendition{{ID: "2160p", Kind: "video", Height: 2160, Bandwidth: 2e7}}}}); err != nil {
		t.Fatal(err)
	}
	token := signIn(t, a, "one@example.com", "basic")
	var first fillcast.Playback
	call{method: "GET", path: "/v1/playback/t1", bearer: token}.want(t, a, 200, &first)
	if first.StreamID == "" {
		t.Fatalf("playback %+v: no stream id", first)
	}
	body := call{method: "GET", path: "/v1/playback/t1", bearer: token}.want(t, a, 429, nil)
	if !strings.Contains(body, "stream limit reached: your plan allows 1 screen at once") {
		t.Errorf("second stream: %s", body)
	}
	call{method: "GET", path: "/v1/playback/t1?stream=" + first.StreamID, bearer: token}.want(t, a, 200, nil)
	call{method: "POST", path: "/v1/streams/" + first.StreamID + "/keepalive", bearer: token}.want(t, a, 204, nil)
	call{method: "POST", path: "/v1/events", body: `[{"id":"p1","title":"t1","type":"progress","position_s":3,"duration_s":60,"stream_id":"` + first.StreamID + `"}]`, bearer: token}.want(t, a, 202, nil)
	other := signIn(t, a, "two@example.com", "basic")
	call{method: "DELETE", path: "/v1/streams/" + first.StreamID, bearer: other}.want(t, a, 404, nil)
	call{method: "DELETE", path: "/v1/streams/" + first.StreamID, bearer: token}.want(t, a, 204, nil)
	call{method: "GET", path: "/v1/playback/t1", bearer: token}.want(t, a, 200, nil)
	// A plan below every rendition.
	body = call{method: "GET", path: "/v1/playback/uhd", bearer: other}.want(t, a, 403, nil)
	if !strings.Contains(body, "480p") {
		t.Errorf("uhd on basic: %s", body)
	}
	call{method: "GET", path: "/v1/playback/t1"}.want(t, a, 401, nil)
}

// TestEventsBelongToTheProfile: events are recorded as the session's
// profile whatever "user" they name, history is the caller's own, and an
// account's events are rate limited.
func TestEventsBelongToTheProfile(t *testing.T) {
	t.Parallel()
	a := newTestAPIWith(t, func(d *Deps) { withDiscovery(t, d, t.TempDir()) })
	a.eventLimit = ratelimit.NewTable(ratelimit.Limit{PerSecond: 1, Burst: 3}, 0)
	token := signIn(t, a, "ev@example.com", "basic")
	var me accountView
	call{method: "GET", path: "/v1/account", bearer: token}.want(t, a, 200, &me)
	call{method: "POST", path: "/v1/events", body: `[{"id":"e1","user":"someone-else","title":"t1","type":"progress","position_s":10,"duration_s":100}]`, bearer: token}.want(t, a, 202, nil)
	call{method: "POST", path: "/v1/events", body: `[{"id":"e2","title":"invented","type":"play","position_s":0}]`, bearer: token}.want(t, a, 400, nil)
	call{method: "POST", path: "/v1/events", body: `[{"id":"e3","title":"t1","type":"play","position_s":0}]`}.want(t, a, 401, nil)
	var h struct {
		User             string `json:"user"`
		ContinueWatching []struct {
			Title string `json:"title"`
		} `json:"continue_watching"`
	}
	call{method: "GET", path: "/v1/history", bearer: token}.want(t, a, 200, &h)
	if h.User != me.Profile || len(h.ContinueWatching) != 1 || h.ContinueWatching[0].Title != "t1" {
		t.Errorf("own history %+v, want t1 for profile %s", h, me.Profile)
	}
	call{method: "GET", path: "/v1/users/someone-else/history", bearer: token}.want(t, a, 403, nil)
	call{method: "GET", path: "/v1/users/" + me.Profile + "/history", bearer: "adm"}.want(t, a, 200, nil)
	w := call{method: "POST", path: "/v1/events", body: `[{"id":"e4","title":"t1","type":"play"},{"id":"e5","title":"t1","type":"play"},{"id":"e6","title":"t1","type":"play"}]`, bearer: token}.do(t, a)
	if w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Errorf("over the account's event rate: %d %s", w.Code, w.Body)
	}
}
