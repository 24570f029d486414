package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/auth/pki"
	"github.com/fillcast/fillcast/controlplane/fleet"
	"github.com/fillcast/fillcast/controlplane/recs"
	"github.com/fillcast/fillcast/controlplane/search"
	"github.com/fillcast/fillcast/controlplane/squeeze"
	"github.com/fillcast/fillcast/web"
)

// The principals of the authorization table, in its column order.
const (
	pAnonymous = "anonymous"
	pViewer    = "viewer"
	pSelf      = "appliance_self"  // appliance aa, on its own id
	pOther     = "appliance_other" // appliance aa, on ab's id
	pNode      = "node"
	pRead      = "read"
	pIngest    = "ingest"
	pOperator  = "operator"
	pAdmin     = "admin"
)

var principals = []string{pAnonymous, pViewer, pSelf, pOther, pNode, pRead, pIngest, pOperator, pAdmin}

// allowed is the authorization table: for every route, by name, the
// principals it admits (admin is always admitted and not listed). A route
// missing here fails TestAuthorizationTable: a new route needs a row.
var allowed = map[string][]string{
	"whoami": {"*"}, "steering": {"*"}, "healthz": {"*"}, "web_page": {"*"}, "web_assets": {"*"},
	"list_plans": {"*"}, "create_account": {"*"}, "sign_in": {"*"},
	"playback": {pViewer}, "events": {pViewer}, "history": {pViewer}, "recommendations": {pViewer},
	"get_account": {pViewer}, "sign_out": {pViewer}, "sign_out_everywhere": {pViewer},
	"create_profile": {pViewer}, "delete_profile": {pViewer}, "keepalive": {pViewer}, "end_stream": {pViewer},
	"list_titles": {pViewer, pRead, pIngest, pOperator}, "get_title": {pViewer, pRead, pIngest, pOperator},
	"title_file": {pViewer, pRead, pIngest, pOperator}, "search": {pViewer, pRead, pIngest, pOperator},
	"suggest": {pViewer, pRead, pIngest, pOperator}, "similar": {pViewer, pRead, pIngest, pOperator},
	"user_history": {pOperator, pRead}, "put_plan": {pOperator},
	"create_title": {pOperator}, "put_title": {pOperator}, "delete_title": {pOperator},
	"ingest":    {pOperator, pIngest},
	"list_jobs": {pOperator, pIngest, pRead}, "get_job": {pOperator, pIngest, pRead},
	"list_sites": {pOperator, pRead}, "get_site": {pOperator, pRead}, "put_site": {pOperator}, "delete_site": {pOperator},
	"list_rules": {pOperator, pRead}, "put_rule": {pOperator}, "delete_rule": {pOperator}, "rules_audit": {pOperator, pRead},
	"start_squeeze": {pOperator}, "list_squeezes": {pOperator, pRead}, "get_squeeze": {pOperator, pRead}, "cancel_squeeze": {pOperator},
	"fleet": {pOperator, pRead}, "metrics": {pOperator, pRead}, "list_appliances": {pOperator, pRead},
	"get_keys": {"*"}, "cluster": {pSelf, pOther, pNode, pOperator, pRead},
	"put_keys": {}, "create_api_key": {}, "list_api_keys": {}, "delete_api_key": {},
	"put_appliance": {}, "delete_appliance": {},
	"heartbeat":      {pSelf},
	"usage":          {pSelf},
	"ops_events":     {pOperator, pRead},
	"ops_qoe":        {pOperator, pRead},
	"fill_pass":      {pSelf},
	"get_manifest":   {pSelf, pOperator, pRead},
	"title_filelist": {pSelf, pOther, pNode, pRead, pIngest, pOperator},
	"put_manifest":   {pOperator},
	"peer_heartbeat": {pNode}, "join": {pNode}, "apply": {pNode}, "read_index": {pNode},
	"readyz": {"*"}, "remove_member": {}, "backup": {}, "remove_member_forward": {pNode},
	"subscribe": {pViewer}, "get_subscription": {pViewer}, "change_plan": {pViewer}, "cancel_subscription": {pViewer},
	"list_invoices": {pViewer}, "get_invoice": {pViewer},
	"billing_report": {pOperator, pRead}, "billing_verify": {pOperator, pRead}, "billing_renewals": {pOperator},
}

// bodies are the request bodies of routes whose endpoint checks the
// caller further once the policy admitted it: a heartbeat must match the
// registration, so the table sends a true one.
var bodies = map[string]string{
	"heartbeat": `{"site":"isp1","profile":"storage","url":"http://aa:8080","health":"ok"}`,
	"sign_in":   `{"email":"viewer@example.com","password":"correct horse battery"}`,
}

// tableServer is the API over TLS with every kind of credential.
type tableServer struct {
	api     *API
	srv     *httptest.Server
	bearer  map[string]string       // principal -> Authorization value
	clients map[string]*http.Client // principal -> client (node: its certificate)
}

func newTableServer(t *testing.T) *tableServer {
	t.Helper()
	dir := t.TempDir()
	a := newTestAPIWith(t, func(d *Deps) {
		withDiscovery(t, d, dir)
		withBilling(t, d, t.TempDir())
	})
	ca, err := pki.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	srvCert, srvKey, err := pki.Issue(ca, pki.RoleNode, "n1", []string{"127.0.0.1"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	nodeCert, nodeKey, err := pki.Issue(ca, pki.RoleNode, "n2", []string{"127.0.0.1"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	serverTLS, err := pki.ServerTLS(srvCert, srvKey, filepath.Join(dir, pki.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	ts := &tableServer{srv: httptest.NewUnstartedServer(a), bearer: map[string]string{}, clients: map[string]*http.Client{}}
	ts.srv.TLS = serverTLS
	ts.srv.StartTLS()
	t.Cleanup(ts.srv.Close)
	client := func(cert, key string) *http.Client {
		c, err := pki.ClientTLS(cert, key, filepath.Join(dir, pki.CAFile))
		if err != nil {
			t.Fatal(err)
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: c}}
	}
	plain := client("", "")
	for _, p := range principals {
		ts.clients[p] = plain
	}
	ts.clients[pNode] = client(nodeCert, nodeKey)
	ts.bearer[pAdmin] = "Bearer adm"
	ts.bearer[pViewer] = "Bearer " + signIn(t, a, "viewer@example.com", "wall")
	ts.api = a

	for _, scope := range []string{pRead, pIngest, pOperator} {
		var v APIKeyView
		ts.mustDo(t, pAdmin, "POST", "/v1/apikeys", `{"name":"`+scope+` key","scope":"`+scope+`"}`, http.StatusCreated, &v)
		if !strings.HasPrefix(v.Key, auth.APIKeyPrefix) {
			t.Fatalf("new %s key %q", scope, v.Key)
		}
		ts.bearer[scope] = "Bearer " + v.Key
	}
	for _, id := range []string{"aa", "ab"} {
		var reg Registration
		ts.mustDo(t, pAdmin, "PUT", "/v1/appliances/"+id, `{"site":"isp1","profile":"storage","urls":["http://`+id+`:8080"]}`, http.StatusOK, &reg)
		if id == "aa" {
			ts.bearer[pSelf] = "Bearer " + reg.Credential
			ts.bearer[pOther] = "Bearer " + reg.Credential
		}
	}
	return ts
}

// withDiscovery adds the viewer-facing parts, as a node opens them, so
// that their routes are in the registry too.
func withDiscovery(t *testing.T, d *Deps, dir string) {
	t.Helper()
	ev := newLocalEvents(t)
	idx, err := search.Open(search.Config{}, d.Log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	rs, err := recs.New(recs.DefaultConfig(), recs.Deps{Source: ev.viewing, Finished: ev.viewing, Logger: d.Log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	ui, err := web.New()
	if err != nil {
		t.Fatal(err)
	}
	d.Events, d.Search, d.Recs, d.UI = ev, idx, rs, ui
	runner, err := squeeze.New(squeeze.Config{}, squeeze.Deps{Store: d.Node.(*localNode), Stats: fleetStats{d.Fleet},
		Leader: func() bool { return true }, Log: d.Log})
	if err != nil {
		t.Fatal(err)
	}
	d.Squeeze = runner
}

// fleetStats are the squeeze tests' appliance stats from the fleet's
// heartbeats, as the node gives them.
type fleetStats struct{ f *fleet.Fleet }

func (s fleetStats) Appliance(id string) (squeeze.Stats, bool) {
	b, ok := s.f.Beat(id)
	return squeeze.Stats{P99Millis: b.Beat.P99Millis, ErrorRatio: b.Beat.ErrorRatio, RPS: b.Beat.RPS, Seen: b.Seen}, ok
}

// do sends a request as principal p and returns the status and body.
func (ts *tableServer) do(t *testing.T, p, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if b := ts.bearer[p]; b != "" {
		req.Header.Set("Authorization", b)
	}
	resp, err := ts.clients[p].Do(req)
	if err != nil {
		t.Fatalf("%s %s as %s: %v", method, path, p, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (ts *tableServer) mustDo(t *testing.T, p, method, path, body string, want int, out any) {
	t.Helper()
	code, b := ts.do(t, p, method, path, body)
	if code != want {
		t.Fatalf("%s %s as %s: %d %s, want %d", method, path, p, code, b, want)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(b), out); err != nil {
			t.Fatal(err)
		}
	}
}

// pathFor fills a route pattern's wildcards for principal p: an
// appliance's own routes get aa's id (ab's for pOther); others an id that
// names nothing, so that an admitted write changes nothing.
func pathFor(pattern string, self bool, p string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	id := "nothing"
	if self {
		id = "aa"
		if p == pOther {
			id = "ab"
		}
	}
	r := strings.NewReplacer("{id}", id, "{title}", "t1", "{path...}", "poster.jpg", "{digest}", strings.Repeat("0", 64), "{$}", "")
	path = r.Replace(path)
	if strings.HasSuffix(path, "/ui/") {
		path += "app.js"
	}
	return method, path
}

// TestAuthorizationTable walks the route registry: every route, called by
// every kind of principal with a real credential, is admitted (any status
// but 401 and 403) or refused (401 without a credential, 403 "forbidden"
// with one) exactly as the table says.
func TestAuthorizationTable(t *testing.T) {
	t.Parallel()
	ts := newTableServer(t)
	routes := ts.srv.Config.Handler.(*API).gw.Routes()
	if len(routes) < 40 {
		t.Fatalf("only %d routes registered", len(routes))
	}
	for _, rt := range routes {
		want, ok := allowed[rt.Name]
		if !ok {
			t.Errorf("route %s (%s) has no row in the authorization table", rt.Name, rt.Pattern)
			continue
		}
		// The routes between nodes trust no operator; the viewers' own
		// routes act for a viewer alone.
		admits := map[string]bool{pAdmin: !rt.Policy.NodesOnly && !rt.Policy.ViewersOnly}
		for _, p := range want {
			if p == "*" {
				for _, q := range principals {
					admits[q] = true
				}
			}
			admits[p] = true
		}
		self := rt.Policy.Appliance == auth.ApplianceSelf
		for _, p := range principals {
			if p == pViewer && strings.HasPrefix(rt.Name, "sign_out") {
				// Signing out ends sessions: use another account's.
				ts.bearer["leaving"], ts.clients["leaving"] = "Bearer "+signIn(t, ts.api, rt.Name+"@example.com", "basic"), ts.clients[pViewer]
				p = "leaving"
			}
			method, path := pathFor(rt.Pattern, self, p)
			body := bodies[rt.Name]
			if body == "" && (method == "POST" || method == "PUT") {
				body = "{}"
			}
			code, b := ts.do(t, p, method, path, body)
			if p == "leaving" {
				p = pViewer
			}
			switch {
			case admits[p] && (code == 401 || code == 403):
				t.Errorf("%s %s as %s: %d %s, want admitted", method, path, p, code, b)
			case !admits[p] && p == pAnonymous && code != 401:
				t.Errorf("%s %s as %s: %d, want 401", method, path, p, code)
			case !admits[p] && p != pAnonymous && (code != 403 || !strings.Contains(b, `"error":"forbidden"`)):
				t.Errorf("%s %s as %s: %d %s, want 403 forbidden", method, path, p, code, b)
			}
		}
	}
	for name := range allowed {
		found := false
		for _, rt := range routes {
			found = found || rt.Name == name
		}
		if !found {
			t.Errorf("the table lists route %s, which is not registered", name)
		}
	}
}

// TestFilesQuery: GET /v1/titles/{id}?files=1, which may make the
// control plane fetch and decode a list of tens of MiB, is for the
// operators' scopes alone among those get_title admits: a viewer gets
// 403 saying so, and the title without files=1. Appliances and nodes,
// which get_title does not admit, read lists by title_filelist.
func TestFilesQuery(t *testing.T) {
	t.Parallel()
	ts := newTableServer(t)
	admits := map[string]bool{pRead: true, pIngest: true, pOperator: true, pAdmin: true}
	for _, p := range principals {
		code, b := ts.do(t, p, "GET", "/v1/titles/t1?files=1", "")
		switch {
		case admits[p] && (code != 200 || !strings.Contains(b, `"files":[{"path":"poster.jpg"`)):
			t.Errorf("?files=1 as %s: %d %s, want 200 with the files", p, code, b)
		case p == pViewer && (code != 403 || !strings.Contains(b, "files=1 is for operators")):
			t.Errorf("?files=1 as a viewer: %d %s, want 403 saying it is for operators", code, b)
		case p == pAnonymous && code != 401:
			t.Errorf("?files=1 anonymous: %d, want 401", code)
		case !admits[p] && p != pViewer && p != pAnonymous && code != 403:
			t.Errorf("?files=1 as %s: %d %s, want 403 (get_title does not admit it)", p, code, b)
		}
	}
	if code, b := ts.do(t, pViewer, "GET", "/v1/titles/t1", ""); code != 200 || strings.Contains(b, `"files"`) {
		t.Errorf("t1 as a viewer: %d %s, want 200 without files", code, b)
	}
}

// fillPass asks for a fill pass with an appliance's credential.
func fillPass(t *testing.T, ts *tableServer, cred string) string {
	t.Helper()
	ts.bearer["pass-holder"], ts.clients["pass-holder"] = "Bearer "+cred, ts.clients[pAnonymous]
	var p fillcast.FillPass
	ts.mustDo(t, "pass-holder", "POST", "/v1/appliances/aa/fillpass", "", 200, &p)
	if !strings.HasPrefix(p.Pass, auth.FillPassPrefix+"aa.") || p.ExpiresAt.IsZero() {
		t.Fatalf("fill pass %+v", p)
	}
	return p.Pass
}

// TestBadCredentials: a wrong, revoked or reissued credential is 401 on
// every route, public ones included (a client must learn its key is bad).
func TestBadCredentials(t *testing.T) {
	t.Parallel()
	ts := newTableServer(t)
	var keys []APIKeyView
	ts.mustDo(t, pAdmin, "GET", "/v1/apikeys", "", 200, &keys)
	if len(keys) != 3 || keys[0].Key != "" {
		t.Fatalf("listed keys %+v: want three, without secrets", keys)
	}
	readKey := ts.bearer[pRead]
	ts.mustDo(t, pRead, "GET", "/v1/fleet", "", 200, nil)
	for _, k := range keys {
		if k.Scope == "read" {
			ts.mustDo(t, pAdmin, "DELETE", "/v1/apikeys/"+k.ID, "", 204, nil)
		}
	}
	var me Whoami
	ts.mustDo(t, pOperator, "GET", "/v1/whoami", "", 200, &me)
	if me.Kind != "operator" || len(me.Scopes) != 1 || me.Scopes[0] != "operator" {
		t.Errorf("whoami with the operator key: %+v", me)
	}
	oldCred := ts.bearer[pSelf]
	tok, _, err := ts.api.d.Accounts.SignIn(context.Background(), "viewer@example.com", "correct horse battery", netip.MustParseAddr("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	signedOut := "Bearer " + tok
	ts.bearer["x"], ts.clients["x"] = signedOut, ts.clients[pAnonymous]
	ts.mustDo(t, "x", "DELETE", "/v1/sessions/current", "", 204, nil)
	var fresh Registration
	ts.mustDo(t, pAdmin, "PUT", "/v1/appliances/aa", `{"site":"isp1","profile":"storage","urls":["http://aa:8080"]}`, 200, &fresh)
	ts.bearer["fresh"], ts.clients["fresh"] = "Bearer "+fresh.Credential, ts.clients[pAnonymous]
	ts.mustDo(t, "fresh", "GET", "/v1/cluster", "", 200, nil)
	for name, bearer := range map[string]string{
		"revoked key":         readKey,
		"reissued credential": oldCred,
		"wrong admin token":   "Bearer adm2",
		// What peers and the origin see of an appliance is no credential here.
		"a fill pass":                         "Bearer " + fillPass(t, ts, fresh.Credential),
		"the node token of another admin key": "Bearer " + auth.NodeToken("adm2"),
		"forged api key":                      "Bearer fck.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"garbage credential":                  "Bearer fca.k1.aa.00.xx",
		"forged session":                      "Bearer fcs." + strings.Repeat("A", 26) + "." + strings.Repeat("A", 43),
		"signed-out session":                  signedOut,
	} {
		ts.bearer["x"], ts.clients["x"] = bearer, ts.clients[pAnonymous]
		for _, path := range []string{"/v1/fleet", "/v1/titles", "/v1/plans"} {
			if code, _ := ts.do(t, "x", "GET", path, ""); code != 401 {
				t.Errorf("%s on %s: %d, want 401", name, path, code)
			}
		}
	}
	// A revoked appliance gets no more fill passes: its peers and the
	// origin refuse it once its last one expires.
	ts.mustDo(t, pAdmin, "DELETE", "/v1/appliances/aa", "", 204, nil)
	if code, b := ts.do(t, "fresh", "POST", "/v1/appliances/aa/fillpass", ""); code != 401 {
		t.Errorf("fill pass for a revoked appliance: %d %s, want 401", code, b)
	}
}
