package origin

import (
	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/manifestfilter"
	"github.com/fillcast/fillcast/steering/contentsteering"
)

// Config configures a Server. Zero values mean the defaults named.
type Config struct {
	// Root is the directory holding one sub-directory per title. Required.
	Root string
	// MaxUploadBytes bounds one PUT body. Zero means 16 GiB.
	MaxUploadBytes int64
	// Tokens configures the checks of tokens and credentials when Deps.Keys
	// is set: the longest token lifetime accepted (zero: 24 h) and the
	// size of the cache of verified ones (zero: 65536).
	Tokens auth.VerifierConfig
	// VariantBytes bounds the cache of master playlists and MPDs made for
	// players: filtered for tokens with a maximum height, steered with
	// SteeringURL. Zero means 32 MiB.
	VariantBytes int64
	// SteeringURL, when set, is the public URL of the control plane
	// (contentsteering.ValidateBaseURL): the master playlists and MPDs
	// served to players (/c/) advertise the title's Content Steering
	// manifest there, each made once per version and limit; appliances'
	// fills and tools get them as they are. Empty advertises none: the
	// origin may know no control plane.
	SteeringURL string
}

// DefaultConfig returns a Config with every default filled in; Root must
// still be set.
func DefaultConfig() Config {
	return Config{MaxUploadBytes: 16 << 30, Tokens: auth.DefaultVerifierConfig(), VariantBytes: manifestfilter.DefaultCacheBytes}
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	if c.Root == "" {
		return fillcast.ConfigErrorf("origin", "Root", "required: the directory holding one sub-directory per title")
	}
	if c.MaxUploadBytes < 0 {
		return fillcast.ConfigErrorf("origin", "MaxUploadBytes", "%d is negative", c.MaxUploadBytes)
	}
	if c.VariantBytes < 0 {
		return fillcast.ConfigErrorf("origin", "VariantBytes", "%d is negative", c.VariantBytes)
	}
	if c.SteeringURL != "" {
		if err := contentsteering.ValidateBaseURL(c.SteeringURL); err != nil {
			return fillcast.ConfigErrorf("origin", "SteeringURL", "%v", err)
		}
	}
	if err := c.Tokens.Validate(); err != nil {
		return fillcast.InField("Tokens", err)
	}
	return nil
}

// withDefaults fills the zero fields; c has passed Validate.
func (c Config) withDefaults() Config {
	if c.MaxUploadBytes == 0 {
		c.MaxUploadBytes = DefaultConfig().MaxUploadBytes
	}
	if c.VariantBytes == 0 {
		c.VariantBytes = DefaultConfig().VariantBytes
	}
	return c
}
