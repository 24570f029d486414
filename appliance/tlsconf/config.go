package tlsconf

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/fillcast/fillcast"
)

// Config configures a Server. Zero values mean the defaults named.
type Config struct {
	// CertFile is the PEM certificate chain: the leaf first, then the
	// certificate that issued it (which OCSP stapling needs), then any
	// others. Required.
	CertFile string
	// KeyFile is the PEM private key of the leaf. Required.
	KeyFile string
	// TicketKeys is the session ticket key file (appliance/tlsconf/
	// ticketkeys) shared by the processes that should resume each other's
	// sessions. Empty means keys of this process alone: tickets then do
	// not survive an upgrade.
	TicketKeys string
	// TicketRotate, when positive, makes this process an owner of
	// TicketKeys: it creates the file and adds a key every TicketRotate.
	// Zero: the file is only read.
	TicketRotate time.Duration
	// TicketLifetime is how long a ticket resumes at least (owners drop
	// older keys). Zero means 24 h.
	TicketLifetime time.Duration
	// TicketKeysOptional makes a TicketKeys that cannot be read or
	// created (a failed disk, a missing mount: an I/O error, not a bad
	// file) mean keys of this process alone, with a warning, instead of
	// an error: for a default file kept in a cache directory.
	TicketKeysOptional bool
	// Poll is how often the files are checked for changes (a renewed
	// certificate, keys rotated by another process). Zero means 2 s.
	Poll time.Duration
	// OCSPMinRefresh is the shortest time between two OCSP fetches that
	// succeed. Zero means 1 min.
	OCSPMinRefresh time.Duration
	// OCSPRetry is the wait after a failed OCSP fetch, doubled after each
	// further failure up to OCSPRetryMax. Zero means 10 s.
	OCSPRetry time.Duration
	// OCSPRetryMax caps the wait between failed OCSP fetches. Zero means
	// 10 min.
	OCSPRetryMax time.Duration
	// OCSPTimeout bounds one OCSP fetch. Zero means 10 s.
	OCSPTimeout time.Duration
}

// DefaultConfig returns a Config with the defaults filled in; CertFile
// and KeyFile must be set.
func DefaultConfig() Config {
	return Config{TicketLifetime: 24 * time.Hour, Poll: 2 * time.Second, OCSPMinRefresh: time.Minute,
		OCSPRetry: 10 * time.Second, OCSPRetryMax: 10 * time.Minute, OCSPTimeout: 10 * time.Second}
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	switch {
	case c.CertFile == "":
		return fillcast.ConfigErrorf("tlsconf", "CertFile", "required: the PEM certificate chain")
	case c.KeyFile == "":
		return fillcast.ConfigErrorf("tlsconf", "KeyFile", "required: the PEM private key of the certificate")
	case c.TicketKeys == "" && c.TicketRotate != 0:
		return fillcast.ConfigErrorf("tlsconf", "TicketRotate", "given without TicketKeys: the file to rotate")
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"TicketRotate", c.TicketRotate}, {"TicketLifetime", c.TicketLifetime}, {"Poll", c.Poll},
		{"OCSPMinRefresh", c.OCSPMinRefresh}, {"OCSPRetry", c.OCSPRetry}, {"OCSPRetryMax", c.OCSPRetryMax}, {"OCSPTimeout", c.OCSPTimeout},
	} {
		if f.v < 0 {
			return fillcast.ConfigErrorf("tlsconf", f.name, "%v is negative", f.v)
		}
	}
	if c.TicketKeys != "" {
		var ce *fillcast.ConfigError
		if err := c.withDefaults().ticketConfig().Validate(); errors.As(err, &ce) {
			field := map[string]string{"File": "TicketKeys", "Rotate": "TicketRotate", "Lifetime": "TicketLifetime", "Lead": "Poll"}[ce.Field]
			return fillcast.ConfigErrorf("tlsconf", field, "%s", ce.Problem)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	for _, f := range []struct{ v, d *time.Duration }{
		{&c.TicketLifetime, &d.TicketLifetime}, {&c.Poll, &d.Poll}, {&c.OCSPMinRefresh, &d.OCSPMinRefresh},
		{&c.OCSPRetry, &d.OCSPRetry}, {&c.OCSPRetryMax, &d.OCSPRetryMax}, {&c.OCSPTimeout, &d.OCSPTimeout},
	} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	return c
}

// Deps are what a Server works with besides its Config.
type Deps struct {
	// HTTP asks OCSP responders; nil means a client of its own.
	HTTP *http.Client
	// Now is the clock of ticket keys' dates and OCSP responses' validity;
	// nil means time.Now.
	Now func() time.Time
	// Log receives reloads, rotations and stapling news; nil discards.
	Log *slog.Logger
}
