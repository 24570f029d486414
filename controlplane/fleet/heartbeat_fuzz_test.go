package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/gateway"
	"github.com/fillcast/fillcast/steering"
)

// decodeBody decodes body as the heartbeat routes do.
func decodeBody(body []byte, v any) error {
	r := httptest.NewRequest("POST", "/v1/appliances/a1/heartbeat", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return gateway.DecodeJSON(r, v)
}

// FuzzHeartbeat: a heartbeat body, from an appliance (POST
// /v1/appliances/{id}/heartbeat) or passed on by a node (peer), is
// refused with fsm.ErrInvalid (a 400) or recorded as it came: then the
// appliance id, site, profile, URL, capacity and health it carries are
// valid, the fleet hands back the same heartbeat, and its JSON decodes and
// validates the same again.
func FuzzHeartbeat(f *testing.F) {
	now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	st, err := steering.New(steering.Config{}, func() time.Time { return now })
	if err != nil {
		f.Fatal(err)
	}
	fl, err := New(Config{NodeID: "n1"}, Deps{Registry: fsm.New(nil), Steerer: st, Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	good := fillcast.Heartbeat{Site: "isp1", Profile: "flash", URL: "http://10.0.0.1:8080", CapacityBytes: 1 << 40, UsedBytes: 1 << 30,
		Health: fillcast.HealthOK, RPS: 120.5, BPS: 9e8, TitleBytes: map[string]int64{"t1": 1 << 20}, HitRatio: 0.97,
		Requests: 12000, P99Millis: 48.5, ErrorRatio: 0.0025, PlanVersion: 7, CompleteTitles: []string{"t1"}}
	hb, _ := json.Marshal(good)
	peer, _ := json.Marshal(Beat{ID: "a2", Beat: good, Seen: now.Add(-time.Second)})
	for _, s := range []struct {
		id   string
		body string
		peer bool
	}{
		{"a1", string(hb), false},
		{"", string(peer), true},
		{"a1", `{"site":"isp1","profile":"storage","url":"https://a1.example:443","health":"draining"}`, false},
		{"a1", `{"site":"isp1","profile":"flash","url":"http://x:1","health":"ok","capacity_bytes":-1}`, false},
		{"a1", `{"site":"isp1","profile":"flash","url":"ftp://x","health":"ok"}`, false},
		{"a1", `{"site":"isp1","profile":"flash","url":"http://x:1","health":"sick"}`, false},
		{"../a1", `{"site":"isp1","profile":"flash","url":"http://x:1","health":"ok"}`, false},
		{"a1", `{"site":"isp1","profile":"flash","url":"http://x:1","health":"ok","bogus":1}`, false},
		{"a1", `{"site":"isp1"} {}`, false},
		{"", `{"id":"a3","heartbeat":{"site":"s","profile":"flash","url":"http://x:1","health":"ok"},"seen":"2099-01-01T00:00:00Z"}`, true},
		{"", `{"id":"a3","heartbeat":{"site":"s","profile":"flash","url":"http://x:1","health":"ok"}}`, true},
		{"a1", `{"title_bytes":{"t1":1e30}}`, false},
	} {
		f.Add(s.id, []byte(s.body), s.peer)
	}
	f.Fuzz(func(t *testing.T, id string, body []byte, fromPeer bool) {
		var b Beat
		var err error
		if fromPeer {
			if decodeBody(body, &b) != nil {
				return
			}
			err = fl.PeerHeartbeat(b)
		} else {
			if decodeBody(body, &b.Beat) != nil {
				return
			}
			b.ID = id
			err = fl.Heartbeat(id, b.Beat, false)
		}
		if err != nil {
			if !errors.Is(err, fsm.ErrInvalid) {
				t.Fatalf("heartbeat %s refused with %v, which does not wrap fsm.ErrInvalid", body, err)
			}
			return
		}
		hb := b.Beat
		if fillcast.ValidateTitleID(b.ID) != nil || (hb.Health != fillcast.HealthOK && hb.Health != fillcast.HealthDraining) ||
			fsm.ValidateAppliance(&fsm.Appliance{ID: b.ID, Site: hb.Site, Profile: hb.Profile, URL: hb.URL, CapacityBytes: hb.CapacityBytes}) != nil {
			t.Fatalf("heartbeat of %q accepted: %s", b.ID, body)
		}
		if fromPeer && (b.Seen.IsZero() || b.Seen.After(now.Add(time.Minute))) {
			t.Fatalf("passed-on heartbeat seen at %v accepted", b.Seen)
		}
		// The fleet keeps the latest: this heartbeat, unless one passed on
		// earlier was seen later.
		seen := b.Seen
		if !fromPeer {
			seen = now
		}
		got, ok := fl.Beat(b.ID)
		want, _ := json.Marshal(hb)
		if have, _ := json.Marshal(got.Beat); !ok || got.Seen.Before(seen) || !got.Seen.After(seen) && !bytes.Equal(have, want) {
			t.Fatalf("fleet holds %s (seen %v, %v) for %q, want %s (seen %v)", have, got.Seen, ok, b.ID, want, seen)
		}
		var again fillcast.Heartbeat
		if err := decodeBody(want, &again); err != nil {
			t.Fatalf("the recorded heartbeat's JSON %s does not decode: %v", want, err)
		}
		if err := validBeat(b.ID, again); err != nil {
			t.Fatalf("the recorded heartbeat's JSON %s does not validate: %v", want, err)
		}
		if back, _ := json.Marshal(again); !bytes.Equal(back, want) {
			t.Fatalf("heartbeat JSON %s reads back as %s", want, back)
		}
	})
}
