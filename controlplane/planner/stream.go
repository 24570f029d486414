package planner

import (
	"encoding/json"
	"time"

	"github.com/fillcast/fillcast/controlplane/stream"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/events"
	"github.com/fillcast/fillcast/controlplane/popularity"
)

// The planner folds the event stream into popularity (package stream's
// Handler): play events count starts in the region of the viewer's site,
// and appliances' usage summaries count bytes in the region of the
// appliance's site, from every node and the whole fleet. The tracker
// keeps the stream position with its state, and saves both together.

// Position returns the stream position popularity has folded to.
func (p *Planner) Position() (time.Time, uint64) { return p.tracker.Position() }

// Reset forgets the viewing folded from a stream that is gone.
func (p *Planner) Reset(stream time.Time) { p.tracker.ResetStream(stream) }

// Handle folds the stream's message at seq.
func (p *Planner) Handle(seq uint64, kind string, data []byte) {
	var obs []popularity.Observation
	switch kind {
	case stream.KindViewer:
		batch, err := events.DecodeRecord(data)
		if err != nil {
			p.log.Warn("planner: stream message skipped", "seq", seq, "err", err)
			break
		}
		regions := map[string]string{}
		for i := range batch {
			e := &batch[i]
			if e.Type != events.TypePlay || e.Site == "" {
				continue
			}
			region, ok := regions[e.Site]
			if !ok {
				region = p.regionOf(e.Site)
				regions[e.Site] = region
			}
			if region != "" {
				obs = append(obs, popularity.Observation{Region: region, Title: e.Title, Starts: 1, At: p.at(e.TS)})
			}
		}
	case stream.KindUsage:
		var u fillcast.Usage
		if err := json.Unmarshal(data, &u); err != nil {
			p.log.Warn("planner: stream message skipped", "seq", seq, "err", err)
			break
		}
		if region := p.regionOf(u.Site); region != "" {
			at := p.at(u.End)
			for _, r := range u.Titles {
				obs = append(obs, popularity.Observation{Region: region, Title: r.Title, Bytes: r.Bytes, At: at})
			}
		}
	}
	// Even a message with nothing to count moves the position on.
	p.tracker.ObserveBatch(seq, obs)
}

// at places a time of the stream on the planner's clock: as long ago on
// it as t is on the wall clock, so that a simulation compressing the
// planner's clock still decays what it observes.
func (p *Planner) at(t time.Time) time.Time {
	ago := time.Since(t)
	if t.IsZero() || ago < 0 { // never in the future: decay would grow it
		ago = 0
	}
	return p.cfg.Now().Add(-ago)
}
