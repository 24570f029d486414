package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/auth/pki"
	"github.com/fillcast/fillcast/internal/poll"
)

// TestCerts: fillcast certs makes a CA and certificates that check
// against it, signs later ones with the same CA, and never replaces a
// file.
func TestCerts(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "certs")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"certs", "--dir", dir, "--nodes", "n1,n2", "--appliances", "a1",
		"--operators", "alice", "--servers", "origin", "--hosts", "127.0.0.1,cp.example"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "made a CA") {
		t.Errorf("output %q does not say it made a CA", out.String())
	}
	ca, err := os.ReadFile(filepath.Join(dir, pki.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ role, id string }{
		{pki.RoleNode, "n1"}, {pki.RoleNode, "n2"}, {pki.RoleAppliance, "a1"}, {pki.RoleOperator, "alice"},
	} {
		base := filepath.Join(dir, pki.FileName(c.role, c.id))
		tc, err := pki.ClientTLS(base+".pem", base+"-key.pem", filepath.Join(dir, pki.CAFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := pki.Check(tc.Certificates[0], tc.RootCAs, c.role, c.id); err != nil {
			t.Errorf("%s %s: %v", c.role, c.id, err)
		}
		if !strings.Contains(out.String(), c.role+" "+c.id+": "+base+".pem") {
			t.Errorf("output %q does not list %s", out.String(), base)
		}
	}
	st, err := os.Stat(filepath.Join(dir, pki.CAKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("CA key: %v %v, want mode 0600", st.Mode(), err)
	}

	// Later: the same CA signs a new appliance.
	out.Reset()
	if err := run(context.Background(), []string{"certs", "--dir", dir, "--appliances", "a2"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, pki.CAFile)); !bytes.Equal(again, ca) || !strings.Contains(out.String(), "using the CA") {
		t.Errorf("second run replaced the CA or did not say it used it: %q", out.String())
	}

	bad := []struct {
		name string
		args []string
		want error
		text string
	}{
		{"an existing certificate", []string{"--dir", dir, "--nodes", "n1"}, pki.ErrExists, "node-n1"},
		{"no --dir", []string{"--nodes", "n9"}, errUsage, "--dir"},
		{"a bad id", []string{"--dir", dir, "--appliances", "a/3"}, nil, "only letters"},
		{"a node without hosts", []string{"--dir", dir, "--nodes", "n9", "--hosts", ""}, nil, "give the host"},
	}
	for _, tt := range bad {
		err := run(context.Background(), append([]string{"certs"}, tt.args...), io.Discard, io.Discard)
		if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("%s: %v, want an error mentioning %q", tt.name, err, tt.text)
		}
	}
}

// TestOriginServesTLS: with --tls-cert the origin serves HTTPS, which a
// client trusting the lab's CA reads and publishes to.
func TestOriginServesTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	if err := run(context.Background(), []string{"certs", "--dir", certs, "--servers", "origin", "--nodes", "n1"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	addr := freeLoopback(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"origin", "--root", filepath.Join(dir, "root"), "--http", addr, "--admin-token", "adm",
			"--tls-cert", filepath.Join(certs, "server-origin.pem"), "--tls-key", filepath.Join(certs, "server-origin-key.pem"),
			"--tls-ca", filepath.Join(certs, pki.CAFile)}, io.Discard, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("origin: %v", err)
		}
	}()
	// The node's client: the lab's CA, presenting its certificate.
	tc, err := pki.ClientTLS(filepath.Join(certs, "node-n1.pem"), filepath.Join(certs, "node-n1-key.pem"), filepath.Join(certs, pki.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: tc}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	url := "https://" + addr + "/t1/master.m3u8"
	poll.UntilNil(t, 10*time.Second, "a PUT over https", func() error {
		req, _ := http.NewRequest(http.MethodPut, url, strings.NewReader("#EXTM3U\n"))
		req.Header.Set("Authorization", "Bearer adm")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("PUT: %s", resp.Status)
		}
		return nil
	})
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "#EXTM3U\n" {
		t.Errorf("GET over https: %s %q", resp.Status, b)
	}
	// Plain HTTP to the TLS port gets nothing served.
	if resp, err := http.Get("http://" + addr + "/t1/master.m3u8"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("the TLS port served plain HTTP")
		}
	}
}
