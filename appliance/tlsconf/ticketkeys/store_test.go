package ticketkeys

import (
	"bytes"
	"crypto/tls"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast/appliance/tlsconf/tlstest"
	"github.com/fillcast/fillcast/internal/clocktest"
)

var t0 = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)

// server serves TLS on loopback with the tickets of st.
func server(t *testing.T, st *Store, p *tlstest.PKI) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	st.Install(cfg)
	return tlstest.Serve(t, cfg) // a clone, as the appliance serves
}

// connect makes one connection and reports whether it resumed.
func connect(t *testing.T, addr string, p *tlstest.PKI, version uint16, cache tls.ClientSessionCache) bool {
	t.Helper()
	return tlstest.Dial(t, addr, p.Pool, version, cache).DidResume
}

func newStore(t *testing.T, cfg Config, clock *clocktest.Clock) *Store {
	t.Helper()
	s, err := New(cfg, Deps{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	return s
}

var versions = []struct {
	name string
	v    uint16
}{{"TLS 1.2", tls.VersionTLS12}, {"TLS 1.3", tls.VersionTLS13}}

// TestTicketsSurviveRotationUntilTheyAgeOut: a ticket resumes, still
// resumes once a rotation made a new key encrypt, on another process
// reading the same file too, and no longer (a full handshake, no error)
// once its key was dropped.
func TestTicketsSurviveRotationUntilTheyAgeOut(t *testing.T) {
	t.Parallel()
	cert, err := tlstest.NewPKI(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tv := range versions {
		t.Run(tv.name, func(t *testing.T) {
			t.Parallel()
			clock := clocktest.New(t0)
			file := filepath.Join(t.TempDir(), "keys")
			cfg := Config{File: file, Rotate: time.Hour, Lifetime: 3 * time.Hour}
			owner := newStore(t, cfg, clock)
			addr := server(t, owner, cert)
			reader := newStore(t, Config{File: file}, clock) // another process
			readerAddr := server(t, reader, cert)

			if connect(t, addr, cert, tv.v, tls.NewLRUClientSessionCache(4)) {
				t.Fatal("first connection resumed")
			}
			lru := tls.NewLRUClientSessionCache(4)
			connect(t, addr, cert, tv.v, lru)
			if !connect(t, addr, cert, tv.v, lru) {
				t.Fatal("second connection did not resume")
			}
			old := &tlstest.HeldCache{}
			connect(t, addr, cert, tv.v, old)
			if !connect(t, readerAddr, cert, tv.v, old) {
				t.Fatal("the other process's ticket did not resume")
			}

			clock.Advance(time.Hour)
			if err := owner.Tick(); err != nil {
				t.Fatal(err)
			}
			if got := owner.Status(); got.Keys != 2 || !got.ActiveSince.Equal(t0) {
				t.Fatalf("after the rotation: %+v, want 2 keys, the first still active (the new one dated ahead)", got)
			}
			clock.Advance(cfg.withDefaults().Lead)
			owner.Tick()
			if err := reader.Reload(); err != nil {
				t.Fatal(err)
			}
			for _, s := range []*Store{owner, reader} {
				if got := s.Status(); got.Keys != 2 || !got.ActiveSince.After(t0) {
					t.Fatalf("after the lead: %+v, want the new key active", got)
				}
			}
			for name, a := range map[string]string{"owner": addr, "reader": readerAddr} {
				if !connect(t, a, cert, tv.v, old) {
					t.Fatalf("%s: a ticket of the previous key did not resume", name)
				}
			}

			clock.Advance(cfg.Lifetime)
			owner.Tick()
			reader.Reload()
			if got := owner.Status().Keys; got != 2 {
				t.Fatalf("%d keys after a lifetime, want 2 (the first's successor and its own)", got)
			}
			for name, a := range map[string]string{"owner": addr, "reader": readerAddr} {
				if connect(t, a, cert, tv.v, old) {
					t.Fatalf("%s: a ticket of a dropped key resumed", name)
				}
			}
		})
	}
}

// TestOwnersRotateOnce: two processes owning the file (an upgrade's
// parent and child) due at the same moment add one key, not two, and end
// with the same keys.
func TestOwnersRotateOnce(t *testing.T) {
	t.Parallel()
	clock := clocktest.New(t0)
	file := filepath.Join(t.TempDir(), "keys")
	cfg := Config{File: file, Rotate: time.Hour}
	a, b := newStore(t, cfg, clock), newStore(t, cfg, clock)
	clock.Advance(2 * time.Hour)
	var wg sync.WaitGroup
	for _, s := range []*Store{a, b} {
		wg.Go(func() {
			if err := s.Tick(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	keys, err := readFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("%d keys in the file, want 2", len(keys))
	}
	for name, s := range map[string]*Store{"a": a, "b": b} {
		s.mu.Lock()
		got := s.cur
		s.mu.Unlock()
		if len(got) != 2 || got[0] != keys[0] || got[1] != keys[1] {
			t.Errorf("%s does not use the file's keys", name)
		}
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, %v: want 0600", fi.Mode(), err)
	}
}

const goodKey = "2026-12-07T08:00:00Z 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"

// TestBadKeyFiles: a file that cannot be used is a clear error at start,
// that names the file and never quotes a key; at run time it keeps the
// keys in use.
func TestBadKeyFiles(t *testing.T) {
	t.Parallel()
	secret := "00112233445566778899aabbccddeeff00112233445566778899aabbccddee" // 62 digits
	tests := []struct {
		name, body string
		mode       os.FileMode
		owner      bool
		wantIn     []string
	}{
		{"readable by others", goodKey, 0o644, false, []string{"mode", "chmod 600"}},
		{"readable by the group, owned", goodKey, 0o640, true, []string{"readable by group or others"}},
		{"empty", "", 0o600, false, []string{"no key"}},
		{"comments only", "# keys\n\n", 0o600, true, []string{"no key"}},
		{"truncated key", "2026-12-07T08:00:00Z " + secret + "\n", 0o600, false, []string{"line 1", "62 characters", "truncated"}},
		{"not hex", "2026-12-07T08:00:00Z " + strings.Repeat("zz", 32) + "\n", 0o600, true, []string{"line 1", "hex"}},
		{"no date", secret + "ff\n", 0o600, false, []string{"line 1", "want"}},
		{"bad date", "yesterday " + secret + "ff\n", 0o600, false, []string{"line 1", "RFC 3339"}},
		{"zeros", "2026-12-07T08:00:00Z " + strings.Repeat("0", 64) + "\n", 0o600, false, []string{"zeros"}},
		{"missing", "", 0, false, []string{"no such file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "keys")
			if tt.mode != 0 {
				if err := os.WriteFile(file, []byte(tt.body), tt.mode); err != nil {
					t.Fatal(err)
				}
				os.Chmod(file, tt.mode) // past the umask
			}
			cfg := Config{File: file}
			if tt.owner {
				cfg.Rotate = time.Hour
			}
			s, err := New(cfg, Deps{Now: clocktest.New(t0).Now})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Load()
			if err == nil {
				t.Fatal("Load: no error")
			}
			for _, w := range append(tt.wantIn, file) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%v quotes the key", err)
			}
		})
	}

	t.Run("at run time", func(t *testing.T) {
		t.Parallel()
		cert, err := tlstest.NewPKI(t.TempDir(), "")
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "keys")
		if err := os.WriteFile(file, []byte(goodKey), 0o600); err != nil {
			t.Fatal(err)
		}
		s := newStore(t, Config{File: file}, clocktest.New(t0))
		addr := server(t, s, cert)
		cache := tls.NewLRUClientSessionCache(4)
		connect(t, addr, cert, tls.VersionTLS13, cache)
		for _, bad := range []string{"", "2026-12-07T08:00:00Z 0011\n", "garbage"} {
			if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := s.Reload(); err == nil {
				t.Fatalf("Reload of %q: no error", bad)
			}
			if got := s.Status().Keys; got != 1 {
				t.Fatalf("%d keys after a bad reload, want the 1 in use", got)
			}
			if !connect(t, addr, cert, tls.VersionTLS13, cache) {
				t.Fatal("a bad file at run time broke resumption")
			}
		}
	})
}

// TestFormatParses: what an owner writes reads back the same.
func TestFormatParses(t *testing.T) {
	t.Parallel()
	var k1, k2 Key
	k1.Created, k2.Created = t0, t0.Add(time.Hour)
	hex.Decode(k1.Secret[:], []byte(strings.Repeat("ab", 32)))
	hex.Decode(k2.Secret[:], []byte(strings.Repeat("cd", 32)))
	b := Format([]Key{k1, k2})
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != k2 || got[1] != k1 {
		t.Fatalf("Parse(Format) = %v, want newest first", got)
	}
	if !bytes.HasPrefix(b, []byte("#")) {
		t.Errorf("no header: %q", b)
	}
}

// TestActiveKeyWaitsForItsDate: a key dated ahead only decrypts until its
// date; when every key is dated ahead (a clock set back) the oldest
// encrypts.
func TestActiveKeyWaitsForItsDate(t *testing.T) {
	t.Parallel()
	keys := []Key{{Created: t0.Add(time.Minute)}, {Created: t0}, {Created: t0.Add(-time.Hour)}}
	tests := []struct {
		name string
		now  time.Time
		want int
	}{
		{"before the newest's date", t0.Add(30 * time.Second), 1},
		{"at its date", t0.Add(time.Minute), 0},
		{"clock set back", t0.Add(-2 * time.Hour), 2},
	}
	for _, tt := range tests {
		if got := active(keys, tt.now); got != tt.want {
			t.Errorf("%s: active = %d, want %d", tt.name, got, tt.want)
		}
	}
}
