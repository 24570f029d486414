package tlsconf

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast/appliance/tlsconf/tlstest"
	"github.com/fillcast/fillcast/internal/poll"
	"golang.org/x/crypto/ocsp"
)

// env is a PKI whose leaf names a real responder, and a Server of it.
type env struct {
	log  tlstest.Log
	pki  *tlstest.PKI
	resp *tlstest.Responder
	srv  *Server
	addr string
}

// fast is a Config that polls and retries quickly.
func fast(p *tlstest.PKI) Config {
	return Config{CertFile: p.CertFile, KeyFile: p.KeyFile, Poll: 20 * time.Millisecond,
		OCSPMinRefresh: 50 * time.Millisecond, OCSPRetry: 20 * time.Millisecond, OCSPRetryMax: 100 * time.Millisecond}
}

// newEnv starts a responder answering a, and a running Server of cfg
// (fast(pki) when nil) serving on loopback.
func newEnv(t *testing.T, a tlstest.Answer, responder bool, cfg func(*Config)) *env {
	t.Helper()
	e := &env{resp: tlstest.NewResponder()}
	e.resp.Set(a)
	hs := httptest.NewServer(e.resp)
	t.Cleanup(hs.Close)
	url := ""
	if responder {
		url = hs.URL
	}
	var err error
	if e.pki, err = tlstest.NewPKI(t.TempDir(), url); err != nil {
		t.Fatal(err)
	}
	e.resp.SetPKI(e.pki)
	c := fast(e.pki)
	if cfg != nil {
		cfg(&c)
	}
	e.srv = start(t, c, &e.log)
	e.addr = tlstest.Serve(t, e.srv.TLS())
	return e
}

// start loads and runs a Server until the test ends.
func start(t testing.TB, c Config, log *tlstest.Log) *Server {
	t.Helper()
	s, err := New(c, Deps{Log: log.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return s
}

// staple connects (without resuming) and returns the stapled response
// checked against the current leaf, or nil.
func (e *env) staple(t *testing.T) *ocsp.Response {
	t.Helper()
	cs := tlstest.Dial(t, e.addr, e.pki.Pool, 0, nil)
	if len(cs.OCSPResponse) == 0 {
		return nil
	}
	r, err := ocsp.ParseResponseForCert(cs.OCSPResponse, cs.PeerCertificates[0], e.pki.CA)
	if err != nil {
		t.Fatalf("stapled response: %v", err)
	}
	return r
}

// TestStapleIsGoodAndRefreshedBeforeNextUpdate: the client sees a Good
// response for the leaf, and a fresher one before the first expires.
func TestStapleIsGoodAndRefreshedBeforeNextUpdate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tlstest.Answer{Status: ocsp.Good, Window: 6 * time.Second}, true, nil)
	var first *ocsp.Response
	poll.Until(t, 20*time.Second, "a staple", func() bool { first = e.staple(t); return first != nil })
	if first.Status != ocsp.Good || first.SerialNumber.Cmp(e.pki.Leaf.SerialNumber) != 0 {
		t.Fatalf("staple: status %d for serial %v, want Good for %v", first.Status, first.SerialNumber, e.pki.Leaf.SerialNumber)
	}
	poll.Until(t, 20*time.Second, "a fresher staple", func() bool {
		r := e.staple(t)
		if r != nil && r.ThisUpdate.After(first.ThisUpdate) {
			if now := time.Now(); !now.Before(first.NextUpdate) {
				t.Fatalf("the fresher staple came at %v, after the first's NextUpdate %v", now, first.NextUpdate)
			}
			return true
		}
		return false
	})
	st := e.srv.Status()
	if st.OCSP == nil || !st.OCSP.Stapled || st.OCSP.NextUpdate.IsZero() || st.OCSP.LastError != "" {
		t.Fatalf("Status().OCSP = %+v, want stapled, with its NextUpdate", st.OCSP)
	}
}

// TestStapleAppearsWhenTheResponderComesBack: a responder down at start
// means serving without a staple, and the staple comes with the
// responder.
func TestStapleAppearsWhenTheResponderComesBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tlstest.Answer{Down: true}, true, nil)
	poll.Until(t, 20*time.Second, "two failed fetches", func() bool { return e.resp.Asked() >= 2 })
	if r := e.staple(t); r != nil {
		t.Fatal("stapled while the responder was down")
	}
	if st := e.srv.Status(); st.OCSP == nil || st.OCSP.Stapled || !strings.Contains(st.OCSP.LastError, "503") {
		t.Fatalf("Status().OCSP = %+v, want not stapled, saying the responder's 503", st.OCSP)
	}
	e.resp.Set(tlstest.Answer{Status: ocsp.Good, Window: time.Hour})
	poll.Until(t, 20*time.Second, "a staple once the responder is back", func() bool { return e.staple(t) != nil })
}

// TestNeverStaplesABadResponse: Revoked, Unknown and expired answers are
// never stapled; a Revoked answer removes a good staple at once; a staple
// is no longer served past its NextUpdate when the responder is down.
func TestNeverStaplesABadResponse(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		a    tlstest.Answer
	}{
		{"revoked", tlstest.Answer{Status: ocsp.Revoked, Window: time.Hour}},
		{"unknown", tlstest.Answer{Status: ocsp.Unknown, Window: time.Hour}},
		{"expired", tlstest.Answer{Status: ocsp.Good, Window: time.Hour, Shift: -2 * time.Hour}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.a, true, nil)
			poll.Until(t, 20*time.Second, "three answers", func() bool { return e.resp.Asked() >= 3 })
			if r := e.staple(t); r != nil {
				t.Fatalf("stapled a response with status %d", r.Status)
			}
		})
	}
	t.Run("revoked after good", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, tlstest.Answer{Status: ocsp.Good, Window: 2 * time.Second}, true, nil)
		poll.Until(t, 20*time.Second, "a staple", func() bool { return e.staple(t) != nil })
		e.resp.Set(tlstest.Answer{Status: ocsp.Revoked, Window: time.Hour})
		poll.Until(t, 20*time.Second, "the staple removed", func() bool { return e.staple(t) == nil })
	})
	t.Run("past NextUpdate", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, tlstest.Answer{Status: ocsp.Good, Window: 2 * time.Second}, true, nil)
		var r *ocsp.Response
		poll.Until(t, 20*time.Second, "a staple", func() bool { r = e.staple(t); return r != nil })
		e.resp.Set(tlstest.Answer{Down: true})
		poll.Until(t, 20*time.Second, "the staple removed", func() bool { return e.staple(t) == nil })
		if now := time.Now(); now.Before(r.NextUpdate) {
			t.Fatalf("unstapled at %v, before the staple's NextUpdate %v", now, r.NextUpdate)
		}
	})
}

// TestNoResponderNoStaple: a certificate without a responder is served
// without a staple and without complaint.
func TestNoResponderNoStaple(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tlstest.Answer{Status: ocsp.Good, Window: time.Hour}, false, nil)
	if r := e.staple(t); r != nil {
		t.Fatal("stapled without a responder")
	}
	if st := e.srv.Status(); st.OCSP != nil || st.TicketKeys != nil {
		t.Fatalf("Status() = %+v, want no OCSP and no shared ticket keys", st)
	}
}

// TestRenewedCertificateIsServed: new certificate files are served from
// the next poll, stapled for the new leaf; files that do not load keep
// the previous certificate.
func TestRenewedCertificateIsServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tlstest.Answer{Status: ocsp.Good, Window: time.Hour}, true, nil)
	poll.Until(t, 20*time.Second, "a staple", func() bool { return e.staple(t) != nil })
	old := e.pki.Leaf.SerialNumber
	if err := e.pki.Issue(e.pki.Leaf.OCSPServer[0]); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, "the new leaf stapled", func() bool {
		r := e.staple(t) // checked against the leaf served
		return r != nil && r.SerialNumber.Cmp(e.pki.Leaf.SerialNumber) == 0
	})
	seen := e.log.Count("do not load") // the new key may have been seen before its certificate
	if err := os.WriteFile(e.pki.CertFile, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, "the watch to see the broken file", func() bool { return e.log.Count("do not load") > seen })
	cs := tlstest.Dial(t, e.addr, e.pki.Pool, 0, nil)
	if got := cs.PeerCertificates[0].SerialNumber; got.Cmp(e.pki.Leaf.SerialNumber) != 0 || got.Cmp(old) == 0 {
		t.Fatalf("served serial %v after a broken file, want %v", got, e.pki.Leaf.SerialNumber)
	}
}

// TestTicketsResumeAcrossServers: two Servers sharing a key file (an
// owner and a reader: the two processes of an upgrade) resume each
// other's tickets, and a key file replaced by configuration management
// is picked up by the watch.
func TestTicketsResumeAcrossServers(t *testing.T) {
	t.Parallel()
	p, err := tlstest.NewPKI(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "tickets")
	c := fast(p)
	c.TicketKeys, c.TicketRotate = file, time.Hour
	a := start(t, c, &tlstest.Log{})
	c.TicketRotate = 0
	var blog tlstest.Log
	b := start(t, c, &blog)
	addrA, addrB := tlstest.Serve(t, a.TLS()), tlstest.Serve(t, b.TLS())

	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		held := &tlstest.HeldCache{}
		if tlstest.Dial(t, addrA, p.Pool, v, held).DidResume {
			t.Fatal("the first handshake resumed")
		}
		if !tlstest.Dial(t, addrB, p.Pool, v, held).DidResume {
			t.Fatalf("version %x: a ticket of the owner did not resume on the reader", v)
		}
	}
	if st := b.Status(); st.ResumedHandshakes != 2 || st.FullHandshakes != 0 || st.TicketKeys == nil || st.TicketKeys.Keys != 1 {
		t.Fatalf("reader's Status() = %+v, want 2 resumed handshakes, no full one, 1 key", st)
	}

	// Configuration management writes a new key, keeping the old.
	old, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	since := b.Status().TicketKeys.ActiveSince
	next := since.Add(time.Second).Format(time.RFC3339) + " " + strings.Repeat("5a", 32) + "\n" // active within a second
	if err := os.WriteFile(file+".new", append([]byte(next), old...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file+".new", file); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Server{"owner": a, "reader": b} {
		poll.Until(t, 20*time.Second, name+" to use the new key", func() bool {
			k := s.Status().TicketKeys
			return k.Keys == 2 && k.ActiveSince.After(since)
		})
	}

	// A broken file keeps the keys in use.
	if err := os.WriteFile(file, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, "the reader to see the broken file", func() bool { return blog.Count("does not load") > 0 })
	if k := b.Status().TicketKeys; k.Keys != 2 {
		t.Fatalf("%d keys after a broken file, want the 2 in use", k.Keys)
	}
	held := &tlstest.HeldCache{}
	tlstest.Dial(t, addrA, p.Pool, 0, held)
	if !tlstest.Dial(t, addrB, p.Pool, 0, held).DidResume {
		t.Fatal("a broken key file stopped resumption")
	}
}

// TestTicketKeyFileProblems: a key file that is bad is an error at
// start even when optional; one that cannot be created is one only when
// not optional.
func TestTicketKeyFileProblems(t *testing.T) {
	t.Parallel()
	p, err := tlstest.NewPKI(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	open := filepath.Join(dir, "world-readable")
	if err := os.WriteFile(open, []byte("2026-12-07T08:00:00Z "+strings.Repeat("ab", 32)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o644)
	uncreatable := filepath.Join(open, "keys") // under a file
	for _, tt := range []struct {
		name     string
		file     string
		optional bool
		want     string // "" when Load succeeds
	}{
		{"bad mode", open, false, "chmod 600"},
		{"bad mode, optional", open, true, "chmod 600"},
		{"bad, owned", open, false, "remove it and a new one is written"},
		{"cannot be created", uncreatable, false, "not a directory"},
		{"cannot be created, optional", uncreatable, true, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := fast(p)
			c.TicketKeys, c.TicketRotate, c.TicketKeysOptional = tt.file, time.Hour, tt.optional
			s, err := New(c, Deps{})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Load()
			if tt.want == "" {
				if err != nil || s.Status().TicketKeys != nil {
					t.Fatalf("Load: %v, %+v: want this process's own keys", err, s.Status().TicketKeys)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "TicketKeys") {
				t.Fatalf("Load: %v, want a TicketKeys error saying %q", err, tt.want)
			}
		})
	}
}

// TestStapleDroppedWithTheIssuer: certificate files rewritten with the
// same leaf but without its issuer (which the OCSP loop needs to refresh
// the staple) are served without the staple, never with one left to
// expire.
func TestStapleDroppedWithTheIssuer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tlstest.Answer{Status: ocsp.Good, Window: time.Hour}, true, nil)
	poll.Until(t, 20*time.Second, "a staple", func() bool { return e.staple(t) != nil })
	chain, err := os.ReadFile(e.pki.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := pem.Decode(chain)
	if leaf == nil {
		t.Fatal("no PEM in the certificate file")
	}
	seen := e.log.Count("certificate reloaded")
	if err := os.WriteFile(e.pki.CertFile, pem.EncodeToMemory(leaf), 0o600); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, "the leaf alone reloaded", func() bool { return e.log.Count("certificate reloaded") > seen })
	if r := e.staple(t); r != nil {
		t.Fatalf("stapled (next update %v) without the issuer to refresh the staple", r.NextUpdate)
	}
}
