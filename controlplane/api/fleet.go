package api

import (
	"context"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/cluster"
	"github.com/fillcast/fillcast/controlplane/fleet"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/gateway"
)

// registration returns the registration of appliance id, which the
// route's policy admitted as itself; an appliance revoked since is
// refused.
func (a *API) registration(r *http.Request, id string) (*fsm.Registration, error) {
	var reg *fsm.Registration
	a.read(func(s *fsm.State) { reg = s.Registrations[id] })
	if reg == nil {
		return nil, gateway.Forbidden(r.Context(), "not_registered", "appliance "+id+" is not registered")
	}
	return reg, nil
}

// heartbeat records an appliance's heartbeat (soft state, passed on to the
// other nodes) and keeps its registry entry current. The route's policy
// admitted the appliance as itself; the heartbeat must also match its
// registration: its site and profile, and a URL it was registered with.
func (a *API) heartbeat(w http.ResponseWriter, r *http.Request) error {
	var hb fillcast.Heartbeat
	if err := gateway.DecodeJSON(r, &hb); err != nil {
		return err
	}
	id := r.PathValue("id")
	reg, err := a.registration(r, id)
	if err != nil {
		return err
	}
	switch {
	case !reg.AllowsURL(hb.URL):
		return gateway.Forbidden(r.Context(), "url_not_registered", "appliance "+id+" advertised "+hb.URL)
	case hb.Site != reg.Site || hb.Profile != reg.Profile:
		return gateway.Forbidden(r.Context(), "registration_mismatch",
			"appliance "+id+" says site "+hb.Site+", profile "+hb.Profile+"; registered as "+reg.Site+", "+reg.Profile)
	}
	if err := a.d.Fleet.Heartbeat(id, hb, false); err != nil {
		return gateway.Errorf(http.StatusBadRequest, "%v", err)
	}
	a.reg.observe(fsm.Appliance{ID: id, Site: hb.Site, Profile: hb.Profile, URL: hb.URL, CapacityBytes: hb.CapacityBytes}, a.read)
	// The answer carries the takedowns the appliance has not applied;
	// none to apply is a 204.
	var reply fillcast.HeartbeatReply
	var seq uint64
	a.read(func(s *fsm.State) {
		if s.Takedowns != nil {
			seq = s.Takedowns.Seq
		}
	})
	if hb.TakedownSeq > seq {
		// The appliance applied takedowns this node has not yet (it
		// beat through a node further on), or it comes from another
		// history (a cluster restored from an older backup): only a
		// node that is current can tell, and one that cannot waits
		// for the next beat rather than send every takedown again.
		if a.current(r.Context()) != nil {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
	}
	a.read(func(s *fsm.State) { reply = s.Takedowns.Reply(hb.TakedownSeq) })
	if reply.TakedownSeq == hb.TakedownSeq && len(reply.Takedowns) == 0 && !reply.Resync {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return gateway.WriteJSON(w, http.StatusOK, reply)
}

func (a *API) peerHeartbeat(w http.ResponseWriter, r *http.Request) error {
	var b fleet.Beat
	if err := gateway.DecodeJSON(r, &b); err != nil {
		return err
	}
	if err := a.d.Fleet.PeerHeartbeat(b); err != nil {
		return gateway.Errorf(http.StatusBadRequest, "%v", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ApplianceView is one appliance in GET /v1/fleet: its registry entry and
// its latest heartbeat.
type ApplianceView struct {
	fsm.Appliance
	// Live: heard from within the staleness bound. Steerable: the
	// steering snapshot in force sends new players to it (for the titles
	// it holds, if it is a flash appliance).
	Live      bool                `json:"live"`
	Steerable bool                `json:"steerable"`
	LastSeen  *time.Time          `json:"last_seen,omitempty"`
	Heartbeat *fillcast.Heartbeat `json:"heartbeat,omitempty"`
}

// fleet lists every appliance known to the registry or heard from.
func (a *API) fleet(w http.ResponseWriter, r *http.Request) error {
	now := a.d.Now()
	stale := a.d.Fleet.Steerer().Config().StaleAfter
	views := map[string]*ApplianceView{}
	a.read(func(s *fsm.State) {
		for id, ap := range s.Appliances {
			views[id] = &ApplianceView{Appliance: *ap}
		}
	})
	for _, b := range a.d.Fleet.Beats() {
		v := views[b.ID]
		if v == nil {
			v = &ApplianceView{Appliance: fsm.Appliance{ID: b.ID, Site: b.Beat.Site, Profile: b.Beat.Profile, URL: b.Beat.URL, CapacityBytes: b.Beat.CapacityBytes}}
			views[b.ID] = v
		}
		hb, seen := b.Beat, b.Seen
		v.Heartbeat, v.LastSeen = &hb, &seen
		v.Live = now.Sub(seen) < stale
		// What steering itself will do: the published snapshot, which
		// follows heartbeats within the fleet's rebuild interval.
		v.Steerable = a.d.Fleet.Current().Serving(b.ID, now)
	}
	out := make([]*ApplianceView, 0, len(views))
	for _, v := range views {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return gateway.WriteJSON(w, http.StatusOK, out)
}

func (a *API) cluster(w http.ResponseWriter, r *http.Request) error {
	return gateway.WriteJSON(w, http.StatusOK, a.d.Node.Status())
}

// registrar writes an appliance's registry entry through raft when a
// heartbeat shows it is new or changed, one write at a time in the API's
// Run, so heartbeats never wait on raft.
type registrar struct {
	node Node
	log  *slog.Logger
	mu   sync.Mutex
	want map[string]fsm.Appliance
	kick chan struct{}
}

func newRegistrar(node Node, log *slog.Logger) *registrar {
	return &registrar{node: node, log: log, want: map[string]fsm.Appliance{}, kick: make(chan struct{}, 1)}
}

// observe queues ap for registration if the registry lacks or differs
// from it.
func (g *registrar) observe(ap fsm.Appliance, read func(func(*fsm.State))) {
	var same bool
	read(func(s *fsm.State) {
		cur := s.Appliances[ap.ID]
		same = cur != nil && *cur == ap
	})
	if same {
		return
	}
	g.mu.Lock()
	g.want[ap.ID] = ap
	g.mu.Unlock()
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// run writes the registrations observe queues until ctx is done.
func (g *registrar) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.kick:
		}
		g.mu.Lock()
		batch := g.want
		g.want = map[string]fsm.Appliance{}
		g.mu.Unlock()
		for _, ap := range batch {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := g.node.Apply(cctx, fsm.Command{Op: fsm.OpPutAppliance, Appliance: &ap})
			cancel()
			if err != nil && ctx.Err() == nil {
				// The next heartbeat retries.
				g.log.Warn("api: register appliance", "id", ap.ID, "err", err, "no_leader", err == cluster.ErrNoLeader)
			}
		}
	}
}
