package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth/pki"
	"github.com/fillcast/fillcast/auth/pki/pkitest"
)

// TestTLS: with Deps.TLS the Client trusts the cluster's CA and presents
// its certificate, which the node verifies and reads the identity of.
func TestTLS(t *testing.T) {
	lab := pkitest.New(t)
	node := lab.Issue(t, pki.RoleNode, "n1", "127.0.0.1")
	app := lab.Issue(t, pki.RoleAppliance, "a1")
	seen := make(chan string, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		role, id, _ := pki.PeerIdentity(r.TLS)
		select {
		case seen <- role + " " + id:
		default:
		}
		json.NewEncoder(w).Encode(fillcast.ClusterStatus{ID: "n1", Leader: "n1"})
	}))
	var err error
	if srv.TLS, err = pki.ServerTLS(node.Cert, node.Key, node.CA); err != nil {
		t.Fatal(err)
	}
	srv.StartTLS()
	defer srv.Close()

	tc, err := pki.ClientTLS(app.Cert, app.Key, app.CA)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{URLs: []string{srv.URL}}, Deps{TLS: tc})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if st, err := c.Cluster(context.Background()); err != nil || st.Leader != "n1" {
		t.Fatalf("Cluster over TLS = %+v, %v", st, err)
	}
	if got := <-seen; got != "appliance a1" {
		t.Errorf("the node saw %q, want appliance a1", got)
	}

	// Without the CA, the node's certificate is not trusted.
	plain, err := New(Config{URLs: []string{srv.URL}}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.Cluster(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Cluster without the CA = %v, want a certificate error", err)
	}

	if _, err := New(Config{URLs: []string{srv.URL}}, Deps{TLS: tc, HTTP: http.DefaultClient}); err == nil {
		t.Error("New took both Deps.TLS and Deps.HTTP")
	}
}
