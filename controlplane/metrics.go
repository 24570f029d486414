package controlplane

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// registerMetrics registers the metrics the parts read when scraped:
// raft, the fleet, the event stream, the planner, ingest and the billing
// report. The
// API, gateway, breakers, accounts and billing's counters register their
// own as they are built.
func (n *Node) registerMetrics(reg prometheus.Registerer) error {
	cs := []prometheus.Collector{n.raft.Collector(), n.fleet.Collector(), n.stream.Collector(), n.billing.svc.ReportCollector(0), n.plan.Collector()}
	if n.ingest != nil {
		cs = append(cs, n.ingest.Collector())
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("controlplane: register metrics: %w", err)
		}
	}
	return nil
}
