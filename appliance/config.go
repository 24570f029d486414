package appliance

import (
	"cmp"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance/agent"
	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/fillcast/fillcast/appliance/fill"
	"github.com/fillcast/fillcast/appliance/server"
	"github.com/fillcast/fillcast/appliance/upstream"
	"github.com/fillcast/fillcast/controlplane/client"
)

// Config is everything an appliance is set up with; the secrets it works
// with come in Deps. Zero values mean the defaults named.
type Config struct {
	// ID is the appliance's id. Required.
	ID string
	// Site is the id of the site it is installed in. Required.
	Site string
	// Profile is fillcast.ProfileFlash or fillcast.ProfileStorage. Zero
	// means storage.
	Profile string
	// HTTP is the listen address, e.g. ":8080". Zero means
	// 127.0.0.1:8080.
	HTTP string
	// Cache configures the tiers (Dir, MemBytes, DiskBytes...).
	Cache cache.Config
	// Upstream configures the miss path.
	Upstream upstream.Config
	// Server configures request handling. Zero AltSvc means the header
	// advertising HTTP/3 on HTTP's port when H3 is on.
	Server server.Config
	// MaxConns caps concurrent connections. Zero means 10000.
	MaxConns int
	// ReadTimeout bounds reading a request's headers. Zero means 10 s.
	ReadTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long. Zero
	// means 60 s.
	IdleTimeout time.Duration
	// ShutdownTimeout bounds the wait for in-flight responses when Run
	// stops. Zero means 30 s.
	ShutdownTimeout time.Duration
	// ControlPlanes, when set, turn on heartbeats and fills with these
	// control-plane URLs. The client learns the other nodes from any one,
	// but only in memory: give two or more (or a DNS name of every node)
	// so that an appliance restarted while one node is down finds the
	// others. The first is also the steering URL that players' manifests
	// advertise unless Server.SteeringURL is set.
	ControlPlanes []string
	// AdvertiseURL is the URL players and peers reach this appliance at,
	// sent in heartbeats. Zero means http://{HTTP}, or https:// with a
	// certificate.
	AdvertiseURL string
	// HeartbeatInterval is the time between heartbeats, and the longest a
	// heartbeat waits for one control-plane node before it tries the
	// next. Zero means 2 s.
	HeartbeatInterval time.Duration
	// FillRateBits caps off-peak fill traffic (bits per second). Zero
	// means 1.2 Gbit/s.
	FillRateBits float64
	// FillPoll is how often the fill manifest is fetched. Zero means 30 s.
	FillPoll time.Duration
	// Now judges the fill window (nil: time.Now; bench/fillsim compresses
	// it); tokens, heartbeats and timeouts keep the wall clock.
	Now func() time.Time
	// TLSCert and TLSKey are PEM files. When set, HTTP/1.1 is served over
	// TLS. HTTP/3 requires them.
	TLSCert, TLSKey string
	// TLSCA, when set, is the PEM file of the CA that https control-plane
	// nodes, peers and origins are checked against, and the appliance
	// presents TLSCert (an appliance certificate of that CA, see fillcast
	// certs) to them as its client certificate. Empty means the system's
	// roots and no client certificate.
	TLSCA string
	// TLSTicketKeys is the session ticket key file (package
	// appliance/tlsconf/ticketkeys) that the processes of an upgrade, and
	// the appliances of a site given the same file, share, so that a
	// player's TLS session resumes on any of them. Empty means
	// tls-ticket-keys in the (first) cache directory, which the appliance
	// creates and rotates, so upgrades resume out of the box (should that
	// disk fail, each process falls back to keys of its own, with a
	// warning). TicketKeysNone keeps each process's keys in memory only.
	TLSTicketKeys string
	// TLSTicketRotate is how often a new key is added to TLSTicketKeys.
	// Zero means every hour for the default file, and never for a file
	// given (whoever provides it rotates it); set it on one appliance to
	// make that appliance the file's owner.
	TLSTicketRotate time.Duration
	// TLSTicketLifetime is how long a session ticket resumes at least:
	// the owner then drops its key. Zero means 24 h.
	TLSTicketLifetime time.Duration
	// H3 turns on HTTP/3 on the UDP port with the number of HTTP's TCP
	// port, and the Alt-Svc header that advertises it.
	H3 bool
	// UDPBufferBytes is the HTTP/3 socket's buffer size. Zero means 8 MiB.
	UDPBufferBytes int
	// DrainTimeout bounds Drain: the wait for steering to move new players
	// away. Zero means 60 s.
	DrainTimeout time.Duration
	// DrainQuiet is how long no new playback session (a request for a
	// master playlist or an MPD) must have arrived, after the control plane
	// accepted the draining heartbeat, for Drain to take it that steering
	// sends new players elsewhere. Zero means 10 s.
	DrainQuiet time.Duration
	// UsageInterval is the time between two usage summaries (requests,
	// bytes, statuses and the players' CMCD per title and rendition) sent
	// to the control plane, with ControlPlanes. Zero means 10 s; at least
	// 10 ms.
	UsageInterval time.Duration
	// AccessLog, when set, is the file the access log is appended to
	// (created if need be): a JSON line per content request with its
	// status, bytes, time taken and the W3C trace id of the playback
	// (package appliance/accesslog), written out every second. Empty
	// means none: it costs about half a microsecond of CPU and 250 bytes
	// of disk per request (BenchmarkMemoryHitAccessLog against
	// BenchmarkMemoryHit in appliance/server).
	AccessLog string
}

// DefaultConfig returns a Config with every default filled in, the
// parts' defaults included: the flags of cmd/fillcast take theirs from it.
func DefaultConfig() Config {
	ag, fl := agent.DefaultConfig(), fill.DefaultConfig()
	return Config{
		Profile:           fillcast.ProfileStorage,
		HTTP:              "127.0.0.1:8080",
		Cache:             cache.DefaultConfig(),
		Upstream:          upstream.DefaultConfig(),
		Server:            server.DefaultConfig(),
		MaxConns:          10000,
		ReadTimeout:       10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ShutdownTimeout:   30 * time.Second,
		HeartbeatInterval: ag.Interval,
		FillRateBits:      fl.RateBits,
		FillPoll:          fl.Poll,
		UDPBufferBytes:    8 << 20,
		DrainTimeout:      60 * time.Second,
		DrainQuiet:        10 * time.Second,
		UsageInterval:     agent.DefaultUsageConfig().Interval,
	}
}

// Validate reports the first problem of c, or of the parts' configs it
// holds, as a *fillcast.ConfigError.
func (c Config) Validate() error {
	switch {
	case c.ID == "":
		return fillcast.ConfigErrorf("appliance", "ID", "required: the appliance's id")
	case c.Site == "":
		return fillcast.ConfigErrorf("appliance", "Site", "required: the id of the site the appliance is installed in")
	case c.Profile != "" && c.Profile != fillcast.ProfileFlash && c.Profile != fillcast.ProfileStorage:
		return fillcast.ConfigErrorf("appliance", "Profile", "%q: want flash or storage", c.Profile)
	case c.TLSCert != "" && c.TLSKey == "":
		return fillcast.ConfigErrorf("appliance", "TLSKey", "required with a certificate: the file of its private key")
	case c.TLSKey != "" && c.TLSCert == "":
		return fillcast.ConfigErrorf("appliance", "TLSCert", "required with a private key: the file of its certificate")
	case c.H3 && c.TLSCert == "":
		return fillcast.ConfigErrorf("appliance", "TLSCert", "required with HTTP/3, as is the key: QUIC is always encrypted")
	case c.MaxConns < 0:
		return fillcast.ConfigErrorf("appliance", "MaxConns", "%d is negative", c.MaxConns)
	case c.UDPBufferBytes < 0:
		return fillcast.ConfigErrorf("appliance", "UDPBufferBytes", "%d is negative", c.UDPBufferBytes)
	case c.FillRateBits < 0:
		return fillcast.ConfigErrorf("appliance", "FillRateBits", "%v is negative", c.FillRateBits)
	case c.UsageInterval > 0 && c.UsageInterval < agent.MinUsageInterval:
		return fillcast.ConfigErrorf("appliance", "UsageInterval", "%v: want at least %v (0 means 10s)", c.UsageInterval, agent.MinUsageInterval)
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"ReadTimeout", c.ReadTimeout}, {"IdleTimeout", c.IdleTimeout}, {"ShutdownTimeout", c.ShutdownTimeout},
		{"HeartbeatInterval", c.HeartbeatInterval}, {"FillPoll", c.FillPoll},
		{"DrainTimeout", c.DrainTimeout}, {"DrainQuiet", c.DrainQuiet}, {"UsageInterval", c.UsageInterval},
	} {
		if f.v < 0 {
			return fillcast.ConfigErrorf("appliance", f.name, "%v is negative", f.v)
		}
	}
	if len(c.ControlPlanes) > 0 {
		if err := c.clientConfig().Validate(); err != nil {
			var ce *fillcast.ConfigError
			if errors.As(err, &ce) {
				return fillcast.ConfigErrorf("appliance", "ControlPlanes", "%s", ce.Problem)
			}
			return err
		}
	}
	if c.H3 {
		addr := c.withDefaults().HTTP
		_, port, err := net.SplitHostPort(addr)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n <= 0 {
			return fillcast.ConfigErrorf("appliance", "HTTP", "%q: HTTP/3 needs a fixed port (the UDP port has the same number)", addr)
		}
	}
	if err := c.Cache.Validate(); err != nil {
		return fillcast.InField("Cache", err)
	}
	if err := c.Upstream.Validate(); err != nil {
		return fillcast.InField("Upstream", err)
	}
	if err := c.Server.Validate(); err != nil {
		return fillcast.InField("Server", err)
	}
	if err := c.validateTLS(); err != nil {
		return err
	}
	return c.validateSteering()
}

// WithDefaults returns c with every zero field of its own set to its
// default, as New uses it (the parts' Configs get theirs in the parts'
// constructors). It is for a caller that needs a value before New, such
// as the address whose socket it opens.
func (c Config) WithDefaults() Config { return c.withDefaults() }

// withDefaults fills the zero fields, and the fields of the parts that
// come from the appliance's own.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.Profile = cmp.Or(c.Profile, d.Profile)
	c.HTTP = cmp.Or(c.HTTP, d.HTTP)
	c.MaxConns = cmp.Or(c.MaxConns, d.MaxConns)
	c.ReadTimeout = cmp.Or(c.ReadTimeout, d.ReadTimeout)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, d.IdleTimeout)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, d.ShutdownTimeout)
	c.HeartbeatInterval = cmp.Or(c.HeartbeatInterval, d.HeartbeatInterval)
	c.FillRateBits = cmp.Or(c.FillRateBits, d.FillRateBits)
	c.FillPoll = cmp.Or(c.FillPoll, d.FillPoll)
	c.UDPBufferBytes = cmp.Or(c.UDPBufferBytes, d.UDPBufferBytes)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, d.DrainTimeout)
	c.DrainQuiet = cmp.Or(c.DrainQuiet, d.DrainQuiet)
	c.UsageInterval = cmp.Or(c.UsageInterval, d.UsageInterval)
	// The server's write timeout bounds the whole connection's writes
	// too, so the fasthttp server needs it with its default (server.New
	// applies it for itself but does not say what it is).
	c.Server.WriteTimeout = cmp.Or(c.Server.WriteTimeout, d.Server.WriteTimeout)
	c.Server.SteeringURL, c.Server.TLS = c.steeringURL(), c.Server.TLS || c.TLSCert != ""
	if c.H3 && c.Server.AltSvc == "" {
		_, port, _ := net.SplitHostPort(c.HTTP)
		c.Server.AltSvc = `h3=":` + port + `"; ma=86400`
	}
	if c.AdvertiseURL == "" {
		scheme := "http://"
		if c.TLSCert != "" {
			scheme = "https://"
		}
		c.AdvertiseURL = scheme + c.HTTP
	}
	return c
}

// clientConfig is the control-plane client's Config: a heartbeat waits
// on one node for at most an interval, since steering drops an appliance
// whose last beat is a few intervals old; manifests keep the client's
// Timeout. c has its defaults.
func (c Config) clientConfig() client.Config {
	return client.Config{URLs: c.ControlPlanes, HeartbeatTimeout: c.HeartbeatInterval}
}
