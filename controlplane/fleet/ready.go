package fleet

import (
	"fmt"
	"time"

	"github.com/fillcast/fillcast/controlplane/fsm"
)

// WarmUp is how long a node collects heartbeats before its fleet view
// counts as fresh although some registered appliance has not been heard
// from: longer than an appliance's heartbeat interval and steering's
// staleness bound, so every live appliance has beaten by then, directly
// or through another node.
const WarmUp = 10 * time.Second

// Fresh reports why this node's view of the fleet cannot be trusted yet,
// or nil: Run has collected heartbeats for WarmUp, or every registered
// appliance has been heard from.
func (f *Fleet) Fresh() error {
	started := f.running.Load()
	if started == 0 {
		return fmt.Errorf("fleet: not running yet")
	}
	if f.d.Now().Sub(time.Unix(0, started)) >= WarmUp {
		return nil
	}
	var registered, missing []string
	f.d.Registry.Read(func(s *fsm.State) {
		for id := range s.Registrations {
			registered = append(registered, id)
		}
	})
	f.mu.Lock()
	for _, id := range registered {
		if _, ok := f.beats[id]; !ok {
			missing = append(missing, id)
		}
	}
	f.mu.Unlock()
	if len(missing) > 0 {
		return fmt.Errorf("fleet: warming up: %d registered appliances not heard from yet (e.g. %s)", len(missing), missing[0])
	}
	return nil
}
