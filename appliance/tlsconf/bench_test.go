package tlsconf

import (
	"crypto/tls"
	"path/filepath"
	"testing"
	"time"

	"github.com/fillcast/fillcast/appliance/tlsconf/tlstest"
)

// BenchmarkHandshake measures a whole connection on loopback (dial,
// handshake, two bytes, close; client and server CPU both) with a full
// handshake and with one resumed by a session ticket of the shared keys:
// what a player's reconnection after an upgrade costs either way.
func BenchmarkHandshake(b *testing.B) {
	p, err := tlstest.NewPKI(b.TempDir(), "")
	if err != nil {
		b.Fatal(err)
	}
	c := fast(p)
	c.TicketKeys, c.TicketRotate = filepath.Join(b.TempDir(), "tickets"), time.Hour
	s := start(b, c, &tlstest.Log{})
	addr := tlstest.Serve(b, s.TLS())
	for _, bc := range []struct {
		name  string
		cache func() tls.ClientSessionCache
	}{
		{"full", func() tls.ClientSessionCache { return nil }},
		{"resumed", func() tls.ClientSessionCache { return &tlstest.HeldCache{} }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cache := bc.cache()
			tlstest.Dial(b, addr, p.Pool, tls.VersionTLS13, cache)
			b.ResetTimer()
			for b.Loop() {
				cs := tlstest.Dial(b, addr, p.Pool, tls.VersionTLS13, cache)
				if cs.DidResume != (cache != nil) {
					b.Fatalf("resumed %v", cs.DidResume)
				}
			}
		})
	}
}
