package appliance

import (
	"errors"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
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
