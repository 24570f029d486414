package appliance

import (
	"strings"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/steering/contentsteering"
)

// steeringURL is the public URL of the control plane whose Content
// Steering manifests the master playlists and MPDs served to players
// advertise: Server.SteeringURL, else the first of ControlPlanes (players
// are assumed to reach the control plane where the appliance does; set
// Server.SteeringURL when they reach it elsewhere), else none.
func (c Config) steeringURL() string {
	if c.Server.SteeringURL != "" || len(c.ControlPlanes) == 0 {
		return c.Server.SteeringURL
	}
	return strings.TrimRight(c.ControlPlanes[0], "/")
}

// validateSteering reports a first control-plane URL that cannot be the
// steering URL it stands in for (Server.Validate checks one given).
func (c Config) validateSteering() error {
	if c.Server.SteeringURL != "" || len(c.ControlPlanes) == 0 {
		return nil
	}
	if err := contentsteering.ValidateBaseURL(c.steeringURL()); err != nil {
		return fillcast.ConfigErrorf("appliance", "ControlPlanes", "the first, %q, is the steering URL players' manifests advertise "+
			"when Server.SteeringURL is not set: %v", c.ControlPlanes[0], err)
	}
	return nil
}
