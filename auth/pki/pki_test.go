package pki_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/auth/pki"
	"github.com/fillcast/fillcast/auth/pki/pkitest"
)

// issue returns the files of a certificate l issues.
func issue(t *testing.T, l *pkitest.Lab, role, id string, hosts ...string) (cert, key string) {
	t.Helper()
	f := l.Issue(t, role, id, hosts...)
	return f.Cert, f.Key
}

// selfSigned returns the files of a certificate no CA signed.
func selfSigned(t *testing.T, uris ...string) (cert, key string) {
	t.Helper()
	f := pkitest.SelfSigned(t, "", uris...)
	return f.Cert, f.Key
}

func mustServer(t *testing.T, cert, key, ca string) *tls.Config {
	t.Helper()
	c, err := pki.ServerTLS(cert, key, ca)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustClient(t *testing.T, cert, key, ca string) *tls.Config {
	t.Helper()
	c, err := pki.ClientTLS(cert, key, ca)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// result is what each side of a handshake saw.
type result struct {
	server, client       tls.ConnectionState
	serverErr, clientErr error
}

// handshake connects a client to a server on loopback. The server writes
// a byte once its handshake succeeds, so a client that TLS 1.3 let
// finish before the server checked its certificate still learns of the
// refusal.
func handshake(t *testing.T, server, client *tls.Config) result {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var r result
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			r.serverErr = err
			return
		}
		defer c.Close()
		tc := tls.Server(c, server)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if r.serverErr = tc.Handshake(); r.serverErr == nil {
			r.server = tc.ConnectionState()
			tc.Write([]byte{1})
		}
	}()
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: client}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		r.clientErr = err
	} else {
		tc := c.(*tls.Conn)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			r.clientErr = err
		}
		r.client = tc.ConnectionState()
		c.Close()
	}
	<-done
	return r
}

// TestIdentityOverTLS: the identity a server and a client read from each
// other is the one issued, and only a certificate that chains to the CA
// the reader trusts has one.
func TestIdentityOverTLS(t *testing.T) {
	l := pkitest.New(t)
	other := pkitest.New(t)
	nodeCert, nodeKey := issue(t, l, pki.RoleNode, "n1", "127.0.0.1", "localhost")
	appCert, appKey := issue(t, l, pki.RoleAppliance, "a1")
	opCert, opKey := issue(t, l, pki.RoleOperator, "alice")
	strangerCert, strangerKey := issue(t, other, pki.RoleNode, "n1", "127.0.0.1")
	selfCert, selfKey := selfSigned(t, "fillcast://node/n1")

	server := mustServer(t, nodeCert, nodeKey, l.CAFile())
	tests := []struct {
		name           string
		cert, key      string
		wantRole       string // "" with wantOK false: connected without identity
		wantID         string
		wantOK, wantIn bool // identity seen by the server; handshake accepted
	}{
		{"node", nodeCert, nodeKey, pki.RoleNode, "n1", true, true},
		{"appliance", appCert, appKey, pki.RoleAppliance, "a1", true, true},
		{"operator", opCert, opKey, pki.RoleOperator, "alice", true, true},
		{"no certificate", "", "", "", "", false, true},
		{"certificate of another CA", strangerCert, strangerKey, "", "", false, false},
		// Its issuer is none the server names as acceptable, so the
		// client does not even send it.
		{"self-signed certificate", selfCert, selfKey, "", "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := handshake(t, server, mustClient(t, tt.cert, tt.key, l.CAFile()))
			if accepted := r.serverErr == nil && r.clientErr == nil; accepted != tt.wantIn {
				t.Fatalf("accepted = %v (server: %v, client: %v), want %v", accepted, r.serverErr, r.clientErr, tt.wantIn)
			}
			if !tt.wantIn {
				return
			}
			role, id, ok := pki.PeerIdentity(&r.server)
			if role != tt.wantRole || id != tt.wantID || ok != tt.wantOK {
				t.Errorf("server saw %q %q %v, want %q %q %v", role, id, ok, tt.wantRole, tt.wantID, tt.wantOK)
			}
			// The client verified the server: a node.
			if role, id, ok := pki.PeerIdentity(&r.client); role != pki.RoleNode || id != "n1" || !ok {
				t.Errorf("client saw %q %q %v, want node n1", role, id, ok)
			}
		})
	}
}

// TestRequirePeer: a server narrowed to nodes refuses every other
// certificate and no certificate, and a client narrowed to nodes refuses a
// server that is not one.
func TestRequirePeer(t *testing.T) {
	l := pkitest.New(t)
	nodeCert, nodeKey := issue(t, l, pki.RoleNode, "n1", "127.0.0.1")
	appCert, appKey := issue(t, l, pki.RoleAppliance, "a1", "127.0.0.1")
	opCert, opKey := issue(t, l, pki.RoleOperator, "alice")
	srvCert, srvKey := issue(t, l, pki.RoleServer, "origin", "127.0.0.1")
	nodesOnly := pki.RequirePeer(mustServer(t, nodeCert, nodeKey, l.CAFile()), pki.RoleNode)
	tests := []struct {
		name      string
		server    *tls.Config
		client    *tls.Config
		wantIn    bool
		wantInErr string
	}{
		{"node to node", nodesOnly, pki.RequirePeer(mustClient(t, nodeCert, nodeKey, l.CAFile()), pki.RoleNode), true, ""},
		{"appliance to node", nodesOnly, mustClient(t, appCert, appKey, l.CAFile()), false, "peer is appliance a1"},
		{"operator to node", nodesOnly, mustClient(t, opCert, opKey, l.CAFile()), false, "peer is operator alice"},
		{"no certificate to node", nodesOnly, mustClient(t, "", "", l.CAFile()), false, ""},
		{"node to an appliance as server", mustServer(t, appCert, appKey, l.CAFile()), pki.RequirePeer(mustClient(t, nodeCert, nodeKey, l.CAFile()), pki.RoleNode), false, "peer is appliance a1"},
		{"node to a server without identity", mustServer(t, srvCert, srvKey, ""), pki.RequirePeer(mustClient(t, nodeCert, nodeKey, l.CAFile()), pki.RoleNode), false, "names no fillcast identity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := handshake(t, tt.server, tt.client)
			accepted := r.serverErr == nil && r.clientErr == nil
			if accepted != tt.wantIn {
				t.Fatalf("accepted = %v (server: %v, client: %v), want %v", accepted, r.serverErr, r.clientErr, tt.wantIn)
			}
			if tt.wantInErr != "" && !strings.Contains(errors.Join(r.serverErr, r.clientErr).Error(), tt.wantInErr) {
				t.Errorf("errors %v / %v, want one mentioning %q", r.serverErr, r.clientErr, tt.wantInErr)
			}
		})
	}
}

func TestIssueFiles(t *testing.T) {
	l := pkitest.New(t)
	if _, err := pki.NewCA(l.Dir); !errors.Is(err, pki.ErrExists) {
		t.Errorf("second pki.NewCA in one dir: %v, want ErrExists", err)
	}
	loaded, err := pki.LoadCA(l.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(l.CA.Cert) {
		t.Error("pki.LoadCA read another CA")
	}
	if got := loaded.Cert.NotAfter.Sub(time.Now()); got < pki.CAValidity-2*time.Hour || got > pki.CAValidity {
		t.Errorf("CA valid for %v more, want about %v", got, pki.CAValidity)
	}
	certFile, keyFile := issue(t, l, pki.RoleNode, "n1", "127.0.0.1", "cp1.example")
	if want := filepath.Join(l.Dir, "node-n1.pem"); certFile != want {
		t.Errorf("cert file %s, want %s", certFile, want)
	}
	for _, f := range []struct {
		path string
		perm os.FileMode
	}{{filepath.Join(l.Dir, pki.CAKeyFile), 0o600}, {keyFile, 0o600}, {certFile, 0o644}} {
		st, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got&^f.perm != 0 {
			t.Errorf("%s has mode %v, want at most %v", f.path, got, f.perm)
		}
	}
	if _, _, err := pki.Issue(l.CA, pki.RoleNode, "n1", []string{"127.0.0.1"}, l.Dir); !errors.Is(err, pki.ErrExists) {
		t.Errorf("issuing node n1 again: %v, want ErrExists", err)
	}
	c := mustClient(t, certFile, keyFile, l.CAFile())
	leaf := c.Certificates[0].Leaf
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "cp1.example" || len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("SANs %v %v, want cp1.example and 127.0.0.1", leaf.DNSNames, leaf.IPAddresses)
	}
	if got := leaf.NotAfter.Sub(time.Now()); got < pki.LeafValidity-2*time.Hour || got > pki.LeafValidity {
		t.Errorf("leaf valid for %v more, want about %v", got, pki.LeafValidity)
	}

	bad := []struct {
		name, role, id string
		hosts          []string
		want           string
	}{
		{"node without hosts", pki.RoleNode, "n2", nil, "give the host"},
		{"server without hosts", pki.RoleServer, "o", nil, "give the host"},
		{"operator with hosts", pki.RoleOperator, "bob", []string{"h"}, "give no hosts"},
		{"unknown role", "admin", "x", nil, "role"},
		{"id with a slash", pki.RoleNode, "n/2", []string{"h"}, "only letters"},
		{"empty id", pki.RoleAppliance, "", nil, "1 to 64"},
		{"bad host", pki.RoleNode, "n3", []string{"a_b..c"}, "DNS name"},
	}
	for _, tt := range bad {
		if _, _, err := pki.Issue(l.CA, tt.role, tt.id, tt.hosts, l.Dir); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tt.name, err, tt.want)
		}
	}
}

// TestCheck: a process refuses its own certificate when it is not what
// it must present.
func TestCheck(t *testing.T) {
	l := pkitest.New(t)
	other := pkitest.New(t)
	roots := mustClient(t, "", "", l.CAFile()).RootCAs
	nodeCert, nodeKey := issue(t, l, pki.RoleNode, "n1", "127.0.0.1")
	appCert, appKey := issue(t, l, pki.RoleAppliance, "a1")
	strangerCert, strangerKey := issue(t, other, pki.RoleNode, "n1", "127.0.0.1")
	tests := []struct {
		name, cert, key, role, id, want string
	}{
		{"the node itself", nodeCert, nodeKey, pki.RoleNode, "n1", ""},
		{"another node's id", nodeCert, nodeKey, pki.RoleNode, "n2", "want fillcast://node/n2"},
		{"an appliance's certificate", appCert, appKey, pki.RoleNode, "a1", "does not verify"},
		{"the appliance itself", appCert, appKey, pki.RoleAppliance, "a1", ""},
		{"another CA's certificate", strangerCert, strangerKey, pki.RoleNode, "n1", "does not verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := pki.Check(mustClient(t, tt.cert, tt.key, "").Certificates[0], roots, tt.role, tt.id)
			if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("pki.Check = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestIdentityOfCertificates(t *testing.T) {
	tests := []struct {
		name     string
		uris     []string
		wantRole string
		wantOK   bool
	}{
		{"one identity and another URI", []string{"spiffe://x/y", "fillcast://appliance/a7"}, pki.RoleAppliance, true},
		{"two identities", []string{"fillcast://node/n1", "fillcast://operator/root"}, "", false},
		{"no identity", []string{"https://example.com/"}, "", false},
		{"unknown role", []string{"fillcast://admin/root"}, "", false},
		{"a query after the id", []string{"fillcast://node/n1?x=1"}, "", false},
	}
	for _, tt := range tests {
		certFile, keyFile := selfSigned(t, tt.uris...)
		leaf := mustClient(t, certFile, keyFile, "").Certificates[0].Leaf
		if role, _, ok := pki.Identity(leaf); role != tt.wantRole || ok != tt.wantOK {
			t.Errorf("%s: pki.Identity = %q %v, want %q %v", tt.name, role, ok, tt.wantRole, tt.wantOK)
		}
	}
	if _, _, ok := pki.PeerIdentity(&tls.ConnectionState{}); ok {
		t.Error("a connection without verified chains has an identity")
	}
	if _, _, ok := pki.PeerIdentity(nil); ok {
		t.Error("no connection has an identity")
	}
}

func TestFilesValidate(t *testing.T) {
	tests := []struct {
		name      string
		f         pki.Files
		wantField string
	}{
		{"none", pki.Files{}, ""},
		{"cert and key", pki.Files{Cert: "c", Key: "k"}, ""},
		{"all three", pki.Files{Cert: "c", Key: "k", CA: "ca"}, ""},
		{"cert alone", pki.Files{Cert: "c"}, "Key"},
		{"key alone", pki.Files{Key: "k"}, "Cert"},
		{"CA alone", pki.Files{CA: "ca"}, "Cert"},
	}
	field := func(err error) string {
		if err == nil {
			return ""
		}
		return strings.Split(strings.TrimPrefix(err.Error(), "pki: config "), ":")[0]
	}
	for _, tt := range tests {
		if err := tt.f.Validate(); field(err) != tt.wantField {
			t.Errorf("%s: Validate = %v, want field %q", tt.name, err, tt.wantField)
		}
		want := tt.wantField
		if want == "" && !tt.f.IsZero() && tt.f.CA == "" {
			want = "CA"
		}
		if err := tt.f.ValidateMutual(); field(err) != want {
			t.Errorf("%s: ValidateMutual = %v, want field %q", tt.name, err, want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	l := pkitest.New(t)
	nodeCert, nodeKey := issue(t, l, pki.RoleNode, "n1", "127.0.0.1")
	tests := []struct {
		name string
		err  func() error
		want string
	}{
		{"server without a key", func() error { _, err := pki.ServerTLS(nodeCert, "", ""); return err }, "certificate and its key"},
		{"missing certificate file", func() error { _, err := pki.ServerTLS(nodeCert+".x", nodeKey, ""); return err }, "no such file"},
		{"key of another certificate", func() error { _, err := pki.ClientTLS(nodeCert, filepath.Join(l.Dir, pki.CAKeyFile), ""); return err }, "does not match"},
		{"CA file without certificates", func() error { _, err := pki.ClientTLS("", "", nodeKey); return err }, "holds no PEM certificate"},
		{"CA missing", func() error { _, err := pki.LoadCA(t.TempDir()); return err }, "read the CA"},
	}
	for _, tt := range tests {
		if err := tt.err(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tt.name, err, tt.want)
		}
	}
}

// FuzzParseIdentity: whatever parses is written back the same way by
// pki.URI, and holds only what an id may.
func FuzzParseIdentity(f *testing.F) {
	for _, s := range []string{"fillcast://node/n1", "fillcast://appliance/a-1_b", "fillcast://operator/alice",
		"fillcast://node/", "fillcast://node", "fillcast://x/y", "fillcast://node/a/b", "fillcast://node/-a", "http://node/n1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		role, id, err := pki.ParseIdentity(s)
		if err != nil {
			if !errors.Is(err, pki.ErrBadIdentity) {
				t.Fatalf("error %v does not wrap ErrBadIdentity", err)
			}
			return
		}
		if got := pki.URI(role, id).String(); got != s {
			t.Fatalf("pki.ParseIdentity(%q) = %q %q, written back as %q", s, role, id, got)
		}
		if u, err := url.Parse(s); err != nil || u.Host != role || u.Path != "/"+id || u.RawQuery != "" {
			t.Fatalf("pki.ParseIdentity(%q) accepted what url.Parse reads as %+v, %v", s, u, err)
		}
	})
}
