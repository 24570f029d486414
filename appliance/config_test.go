package appliance

import (
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance/agent"
	"github.com/fillcast/fillcast/appliance/fill"
	"github.com/fillcast/fillcast/appliance/h3/h3test"
	"github.com/fillcast/fillcast/appliance/server"
	"github.com/fillcast/fillcast/appliance/upstream"
)

// configField returns the field path of the *fillcast.ConfigError in err,
// "" for nil, and err's text for another error (so a comparison fails).
func configField(err error) string {
	var ce *fillcast.ConfigError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ce):
		return ce.Field
	}
	return "not a ConfigError: " + err.Error()
}

func TestValidate(t *testing.T) {
	t.Parallel()
	valid := func() Config {
		var c Config
		c.ID, c.Site = "a1", "s1"
		c.Cache.Dir, c.Cache.DiskBytes = "/var/cache/fillcast", 1<<30
		c.Upstream.URLs = []string{"http://origin:9000"}
		return c
	}
	tests := []struct {
		name      string
		tweak     func(*Config)
		wantField string // "" when valid
	}{
		{"zero fields mean their defaults", func(*Config) {}, ""},
		{"no id", func(c *Config) { c.ID = "" }, "ID"},
		{"no site", func(c *Config) { c.Site = "" }, "Site"},
		{"bad profile", func(c *Config) { c.Profile = "edge" }, "Profile"},
		{"negative max conns", func(c *Config) { c.MaxConns = -1 }, "MaxConns"},
		{"negative drain quiet", func(c *Config) { c.DrainQuiet = -time.Second }, "DrainQuiet"},
		{"negative heartbeat", func(c *Config) { c.HeartbeatInterval = -time.Second }, "HeartbeatInterval"},
		{"negative usage interval", func(c *Config) { c.UsageInterval = -time.Second }, "UsageInterval"},
		{"tiny usage interval", func(c *Config) { c.UsageInterval = time.Millisecond }, "UsageInterval"},
		{"shortest usage interval", func(c *Config) { c.UsageInterval = agent.MinUsageInterval }, ""},
		{"bad control plane", func(c *Config) { c.ControlPlanes = []string{"cp1:7000"} }, "ControlPlanes"},
		{"no cache dir", func(c *Config) { c.Cache.Dir = "" }, "Cache.Dir"},
		{"no disk budget", func(c *Config) { c.Cache.DiskBytes = 0 }, "Cache.DiskBytes"},
		{"no upstream", func(c *Config) { c.Upstream.URLs = nil }, "Upstream.URLs"},
		{"negative upstream timeout", func(c *Config) { c.Upstream.ConnectTimeout = -time.Second }, "Upstream.ConnectTimeout"},
		{"short max URI", func(c *Config) { c.Server.MaxURILen = 10 }, "Server.MaxURILen"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid()
			tc.tweak(&cfg)
			if err := cfg.Validate(); configField(err) != tc.wantField {
				t.Fatalf("Validate: got %v, want field %q", err, tc.wantField)
			}
		})
	}
}

// TestDefaultConfigHoldsEveryDefault: the defaults the flags of
// cmd/fillcast show are the ones the parts apply, written once.
func TestDefaultConfigHoldsEveryDefault(t *testing.T) {
	t.Parallel()
	d, ag, fl, up := DefaultConfig(), agent.DefaultConfig(), fill.DefaultConfig(), upstream.DefaultConfig()
	tests := []struct {
		name      string
		got, want any
	}{
		{"HeartbeatInterval", d.HeartbeatInterval, ag.Interval},
		{"UsageInterval", d.UsageInterval, agent.DefaultUsageConfig().Interval},
		{"FillRateBits", d.FillRateBits, fl.RateBits},
		{"FillPoll", d.FillPoll, fl.Poll},
		{"Upstream.ConnectTimeout", d.Upstream.ConnectTimeout, up.ConnectTimeout},
		{"Upstream.IdleTimeout", d.Upstream.IdleTimeout, up.IdleTimeout},
		{"Upstream.HeaderTimeout", d.Upstream.HeaderTimeout, up.HeaderTimeout},
		{"Server.WriteTimeout", d.Server.WriteTimeout, server.DefaultConfig().WriteTimeout},
	}
	for _, tt := range tests {
		if tt.got != tt.want || reflect.ValueOf(tt.got).IsZero() {
			t.Errorf("DefaultConfig().%s = %v, want %v (not zero)", tt.name, tt.got, tt.want)
		}
	}
	if got := (Config{}).WithDefaults(); got.HeartbeatInterval != d.HeartbeatInterval || got.UsageInterval != d.UsageInterval || got.FillPoll != d.FillPoll || got.HTTP != d.HTTP {
		t.Errorf("zero Config with defaults: %+v", got)
	}
}

// TestHeartbeatTimeoutIsTheInterval: the control-plane client gives a
// heartbeat one interval per node (steering drops an appliance whose
// beats are a few intervals old) and leaves manifests the client's
// Timeout.
func TestHeartbeatTimeoutIsTheInterval(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		interval time.Duration
		want     time.Duration
	}{
		{"default", 0, 2 * time.Second},
		{"set", 500 * time.Millisecond, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		c := Config{ControlPlanes: []string{"http://cp1:7000"}, HeartbeatInterval: tt.interval}
		cc := c.withDefaults().clientConfig()
		if cc.HeartbeatTimeout != tt.want || cc.Timeout != 0 || !slices.Equal(cc.URLs, c.ControlPlanes) {
			t.Errorf("%s: client config %+v, want HeartbeatTimeout %v and the default Timeout", tt.name, cc, tt.want)
		}
	}
}

// TestNewReportsTheTLSFileAtFault: a certificate or key that cannot be
// loaded is reported against the field of the file at fault, naming the
// files and why.
func TestNewReportsTheTLSFileAtFault(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, err := h3test.WriteCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	other, err := h3test.WriteCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name, cert, key string
		wantField       string   // "" when New succeeds
		wantIn          []string // in the problem
	}{
		{"a good pair", cert.CertFile, cert.KeyFile, "", nil},
		{"no certificate file", missing, cert.KeyFile, "TLSCert", []string{missing, "no such file"}},
		{"no key file", cert.CertFile, missing, "TLSKey", []string{missing, "no such file"}},
		{"a key that is not the certificate's", cert.CertFile, other.KeyFile, "TLSCert", []string{cert.CertFile, other.KeyFile, "does not match"}},
		{"a key file that is not a key", cert.CertFile, cert.CertFile, "TLSCert", []string{cert.CertFile, "key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig()
			cfg.ID, cfg.Site = "a1", "s1"
			cfg.Cache.Dir, cfg.Cache.DiskBytes = t.TempDir(), 1<<20
			cfg.Upstream.URLs = []string{"http://127.0.0.1:1"}
			cfg.TLSCert, cfg.TLSKey = tt.cert, tt.key
			a, err := New(cfg, Deps{Keys: keys(t)})
			if err == nil {
				a.Close()
			}
			if got := configField(err); got != tt.wantField {
				t.Fatalf("New: %v, want field %q", err, tt.wantField)
			}
			for _, s := range tt.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%v does not say %q", err, s)
				}
			}
		})
	}
}
