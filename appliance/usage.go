package appliance

import (
	"github.com/fillcast/fillcast/appliance/agent"
	"github.com/fillcast/fillcast/appliance/server"
	"github.com/fillcast/fillcast/appliance/usage"
	"github.com/prometheus/client_golang/prometheus"
)

// newRecorder makes the recorder the server sums its responses in for
// the control plane: none without ControlPlanes, where nobody would take
// the summaries.
func newRecorder(cfg Config) (*usage.Recorder, error) {
	if len(cfg.ControlPlanes) == 0 {
		return nil, nil
	}
	return usage.New(usage.Config{Appliance: cfg.ID, Site: cfg.Site}, usage.Deps{})
}

// recorder is the server's Deps.Usage: a.rec, or a nil interface (not
// one holding a nil pointer) when there is none.
func (a *Appliance) recorder() server.Recorder {
	if a.rec == nil {
		return nil
	}
	return a.rec
}

// newUsageReporter makes the reporter that sends a.rec's summaries
// through a.cp every UsageInterval, and registers its metrics in reg.
func (a *Appliance) newUsageReporter(reg prometheus.Registerer) error {
	r, err := agent.NewUsageReporter(agent.UsageConfig{Interval: a.cfg.UsageInterval},
		agent.UsageDeps{ControlPlane: a.cp, Source: a.rec, Log: a.log})
	if err != nil {
		return err
	}
	a.usage = r
	return reg.Register(r.Collector())
}
