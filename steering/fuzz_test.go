package steering_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/fillcast/fillcast/steering"
	"github.com/fillcast/fillcast/steering/rendezvous"
	"github.com/fillcast/fillcast/steering/steeringtest"
)

// fuzzFleet decodes bytes into appliances over world()'s three sites:
// two bytes each for site, weight, draining, staleness, titles and load.
func fuzzFleet(data []byte) []steering.Appliance {
	var as []steering.Appliance
	sites := []string{"ix-ams", "isp1-ams", "isp2-ams"}
	for i := 0; len(data) >= 2 && i < 24; i++ {
		b, l := data[0], data[1]
		data = data[2:]
		a := oca(fmt.Sprintf("a%02d", i), sites[b%3])
		a.Weight = float64(b >> 2 & 3) // 0 means 1
		a.Draining = b&0x10 != 0 && b&0x20 != 0
		if b&0x40 != 0 && b&0x20 == 0 {
			a.LastSeen = t0.Add(-time.Minute)
		}
		if b&0x80 != 0 {
			a.Titles = steering.NewTitleSet([]string{"t1"})
		}
		a.Load = float64(l)
		as = append(as, a)
	}
	return as
}

func FuzzSteer(f *testing.F) {
	f.Add([]byte{1, 0, 4, 10, 7, 200, 2, 3, 0, 0}, uint8(0), true)
	f.Add([]byte{0x81, 0, 0x91, 5, 0x31, 9, 2, 2, 0x42, 0}, uint8(2), false)
	f.Add([]byte{1, 255, 1, 255, 1, 0, 5, 1, 9, 2, 13, 3}, uint8(1), true)
	clients := []string{"203.0.113.1", "203.0.113.129", "2001:db8::1", "::ffff:198.51.100.4", "192.0.2.1"}
	f.Fuzz(func(t *testing.T, data []byte, c uint8, t1 bool) {
		as := fuzzFleet(data)
		s, err := steering.New(steering.Config{Origin: "http://origin:1"}, steeringtest.NewClock(t0).Now)
		if err != nil {
			t.Fatal(err)
		}
		fl, err := s.Build(world(), as)
		if err != nil {
			t.Fatal(err)
		}
		req := steering.Request{Client: netip.MustParseAddr(clients[int(c)%len(clients)]), Title: "t2", DryRun: true}
		if t1 {
			req.Title = "t1"
		}
		got := fl.Steer(nil, req)
		if again := fl.Steer(nil, req); describe(again) != describe(got) {
			t.Fatalf("Steer gave %s then %s", describe(got), describe(again))
		}
		if len(got) > steering.MaxTargets || got[len(got)-1].Role != steering.RoleOrigin {
			t.Fatalf("Steer = %s; want at most %d targets ending with the origin", describe(got), steering.MaxTargets)
		}
		seen := map[string]bool{}
		for i, x := range got[:len(got)-1] {
			if seen[x.Appliance] {
				t.Fatalf("Steer = %s: %s twice", describe(got), x.Appliance)
			}
			seen[x.Appliance] = true
			if !fl.Eligible(x.Appliance, req.Title, t0) {
				t.Fatalf("Steer = %s: %s is not eligible", describe(got), x.Appliance)
			}
			want := []steering.Role{steering.RolePrimary, steering.RoleSecond, steering.RoleParent}[i]
			if i == 1 && x.Role == steering.RoleParent {
				want = steering.RoleParent
			}
			if x.Role != want || (x.Role == steering.RoleSecond) != (x.Site == got[0].Site && i > 0) {
				t.Fatalf("Steer = %s: target %d has role %s in site %s", describe(got), i, x.Role, x.Site)
			}
		}
		if len(got) == 1 {
			return
		}
		// Primary and second are the first two of the site's ranking,
		// computed here the slow way.
		want := oracle(fl, as, got[0].Site, req.Title, 0.25)
		if got[0].Appliance != want[0] || got[1].Role == steering.RoleSecond && got[1].Appliance != want[1] {
			t.Fatalf("Steer = %s; the site ranks %v", describe(got), want)
		}
	})
}

func FuzzTitleSet(f *testing.F) {
	f.Add("t1,t2,t3", "t2")
	f.Add("", "")
	f.Add("a,a,b", "c")
	f.Fuzz(func(t *testing.T, list, probe string) {
		var titles []string
		want := map[string]bool{}
		start := 0
		for i := 0; i <= len(list); i++ {
			if i == len(list) || list[i] == ',' {
				titles = append(titles, list[start:i])
				want[list[start:i]] = true
				start = i + 1
			}
		}
		s := steering.NewTitleSet(titles)
		if s.Len() != len(want) {
			t.Fatalf("Len = %d; want %d", s.Len(), len(want))
		}
		for _, x := range titles {
			if !s.Has(x) {
				t.Fatalf("Has(%q) = false after adding it", x)
			}
		}
		collides := false // a 64-bit hash collision is the set's one way to err
		for _, x := range titles {
			collides = collides || x != probe && rendezvous.Key(x) == rendezvous.Key(probe)
		}
		if got := s.Has(probe); got != want[probe] && !collides {
			t.Fatalf("Has(%q) = %v; want %v", probe, got, want[probe])
		}
	})
}
