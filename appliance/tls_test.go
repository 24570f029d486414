package appliance

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/appliance/tlsconf/tlstest"
	"github.com/fillcast/fillcast/internal/poll"
	"golang.org/x/crypto/ocsp"
)

// TestTLSStaplesAndResumes serves an appliance over TLS with a
// certificate that names a real OCSP responder: players get a Good
// staple, a second connection resumes with the ticket keys the appliance
// keeps in its cache directory (0600), and /v1/status and /metrics say
// so.
func TestTLSStaplesAndResumes(t *testing.T) {
	t.Parallel()
	resp := tlstest.NewResponder()
	rs := httptest.NewServer(resp)
	defer rs.Close()
	p, err := tlstest.NewPKI(t.TempDir(), rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.SetPKI(p)
	dir := t.TempDir()
	a := startApplianceWith(t, dir, 0, []string{"http://127.0.0.1:1"}, func(c *Config) {
		c.TLSCert, c.TLSKey = p.CertFile, p.KeyFile
	})
	base := "https://" + strings.TrimPrefix(a.url, "http://")
	cache := tls.NewLRUClientSessionCache(4)
	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.Pool, ServerName: "localhost", ClientSessionCache: cache}, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer adm")
		r, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer r.Body.Close()
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		return r, b
	}

	poll.Until(t, 20*time.Second, "a stapled Good response", func() bool {
		r, _ := get("/healthz")
		if r.TLS.DidResume || len(r.TLS.OCSPResponse) == 0 {
			cache = tls.NewLRUClientSessionCache(4) // a resumed handshake carries no staple
			return false
		}
		o, err := ocsp.ParseResponseForCert(r.TLS.OCSPResponse, p.Leaf, p.CA)
		return err == nil && o.Status == ocsp.Good
	})
	if r, _ := get("/healthz"); !r.TLS.DidResume {
		t.Fatal("the second connection did not resume")
	}
	fi, err := os.Stat(filepath.Join(dir, ticketKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("ticket key file: %v, %v: want it, 0600", fi, err)
	}

	_, body := get("/v1/status")
	var st Status
	if err := json.Unmarshal(body, &st); err != nil || st.TLS == nil {
		t.Fatalf("/v1/status: %v %s", err, body)
	}
	if o := st.TLS.OCSP; o == nil || !o.Stapled || o.Responder != rs.URL || st.TLS.TicketKeys == nil || st.TLS.TicketKeys.Keys != 1 || st.TLS.ResumedHandshakes < 1 {
		t.Fatalf("/v1/status tls = %s", body)
	}
	_, body = get("/metrics")
	for _, want := range []string{`fillcast_appliance_tls_handshakes_total{resumed="true"}`, "fillcast_appliance_tls_ocsp_stapled 1",
		"fillcast_appliance_tls_ocsp_next_update_timestamp_seconds", "fillcast_appliance_tls_ticket_keys 1"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestTLSTicketConfig: the ticket settings need a certificate, and a
// rotation shorter than a new key's lead is refused.
func TestTLSTicketConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		tweak     func(*Config)
		wantField string
	}{
		{"defaults", func(c *Config) {}, ""},
		{"a key file without a certificate", func(c *Config) { c.TLSCert, c.TLSKey, c.TLSTicketKeys = "", "", "/k" }, "TLSTicketKeys"},
		{"a rotation without a certificate", func(c *Config) { c.TLSCert, c.TLSKey, c.TLSTicketRotate = "", "", time.Hour }, "TLSTicketRotate"},
		{"a rotation shorter than the lead", func(c *Config) { c.TLSTicketRotate = time.Second }, "TLSTicketRotate"},
		{"a negative lifetime", func(c *Config) { c.TLSTicketLifetime = -time.Hour }, "TLSTicketLifetime"},
		{"a rotating owner of a given file", func(c *Config) { c.TLSTicketKeys, c.TLSTicketRotate = "/k", time.Hour }, ""},
		{"keys in memory", func(c *Config) { c.TLSTicketKeys = TicketKeysNone }, ""},
		{"keys in memory, rotated", func(c *Config) { c.TLSTicketKeys, c.TLSTicketRotate = TicketKeysNone, time.Hour }, "TLSTicketRotate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.ID, cfg.Site = "a1", "s1"
			cfg.Cache.Dir, cfg.Cache.DiskBytes = "/c", 1<<20
			cfg.Upstream.URLs = []string{"http://127.0.0.1:1"}
			cfg.TLSCert, cfg.TLSKey = "c.pem", "k.pem"
			tt.tweak(&cfg)
			if got := configField(cfg.Validate()); got != tt.wantField {
				t.Fatalf("Validate: %v, want field %q", cfg.Validate(), tt.wantField)
			}
		})
	}
}

// TestTLSTicketKeysNone: "none" keeps the keys in memory: no file, and
// no shared keys in the status.
func TestTLSTicketKeysNone(t *testing.T) {
	t.Parallel()
	p, err := tlstest.NewPKI(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.ID, cfg.Site = "a1", "s1"
	cfg.Cache.Dir, cfg.Cache.DiskBytes = dir, 1<<20
	cfg.Upstream.URLs = []string{"http://127.0.0.1:1"}
	cfg.TLSCert, cfg.TLSKey, cfg.TLSTicketKeys = p.CertFile, p.KeyFile, TicketKeysNone
	a, err := New(cfg, Deps{Keys: keys(t), Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if st := a.Status().(Status); st.TLS == nil || st.TLS.TicketKeys != nil {
		t.Fatalf("status tls = %+v, want no shared ticket keys", st.TLS)
	}
	if _, err := os.Stat(filepath.Join(dir, ticketKeyFile)); !os.IsNotExist(err) {
		t.Fatalf("ticket key file: %v, want none", err)
	}
}
