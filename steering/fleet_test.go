package steering_test

import (
	"errors"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/steering"
	"github.com/fillcast/fillcast/steering/prefix"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  steering.Config
		ok   bool
	}{
		{"zero means defaults", steering.Config{}, true},
		{"defaults", steering.DefaultConfig(), true},
		{"origin", steering.Config{Origin: "https://origin.example/"}, true},
		{"negative epsilon", steering.Config{Epsilon: -0.1}, false},
		{"nan epsilon", steering.Config{Epsilon: math.NaN()}, false},
		{"huge epsilon", steering.Config{Epsilon: 11}, false},
		{"negative stale", steering.Config{StaleAfter: -time.Second}, false},
		{"tiny half-life", steering.Config{RecentHalfLife: time.Microsecond}, false},
		{"half-life outlives heartbeats", steering.Config{StaleAfter: time.Second, RecentHalfLife: time.Hour}, false},
		{"origin without scheme", steering.Config{Origin: "origin.example"}, false},
		{"origin with query", steering.Config{Origin: "http://o/?a=b"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate = %v; want ok %v", err, tc.ok)
			}
			var ce *fillcast.ConfigError
			if err != nil && !errors.As(err, &ce) {
				t.Errorf("Validate = %v; want a *fillcast.ConfigError", err)
			}
			if _, err2 := steering.New(tc.cfg, nil); (err2 == nil) != tc.ok {
				t.Errorf("New error = %v; want ok %v", err2, tc.ok)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	s, err := steering.New(steering.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Config(), steering.DefaultConfig(); got != want {
		t.Errorf("Config() = %+v; want %+v", got, want)
	}
}

// world is a small two-tier topology: two ISP sites under one IX.
func world() []fillcast.Site {
	return []fillcast.Site{
		{ID: "ix-ams", Kind: fillcast.SiteIX, Region: "eu-west"},
		{ID: "isp1-ams", Kind: fillcast.SiteISP, Region: "eu-west", Parent: "ix-ams",
			Prefixes: []string{"203.0.113.0/24", "2001:db8::/32"}},
		{ID: "isp2-ams", Kind: fillcast.SiteISP, Region: "eu-west", Parent: "ix-ams",
			Prefixes: []string{"203.0.113.128/25", "198.51.100.0/24"}},
	}
}

func oca(id, site string) steering.Appliance {
	return steering.Appliance{ID: id, Site: site, URL: "http://" + id + ".example:8080", LastSeen: t0}
}

func TestBuildErrors(t *testing.T) {
	t.Parallel()
	good := []steering.Appliance{oca("a1", "isp1-ams")}
	tests := []struct {
		name    string
		edit    func(ss []fillcast.Site, as []steering.Appliance) ([]fillcast.Site, []steering.Appliance)
		wantErr error
		mention []string
	}{
		{"duplicate site", func(ss []fillcast.Site, as []steering.Appliance) ([]fillcast.Site, []steering.Appliance) {
			return append(ss, ss[1]), as
		}, steering.ErrFleet, []string{`"isp1-ams"`, "twice"}},
		{"bad kind", func(ss []fillcast.Site, as []steering.Appliance) ([]fillcast.Site, []steering.Appliance) {
			ss[0].Kind = "pop"
			return ss, as
		}, steering.ErrFleet, []string{`"ix-ams"`, `"pop"`}},
		{"unknown parent", func(ss []fillcast.Site, as []steering.Appliance) ([]fillcast.Site, []steering.Appliance) {
			ss[1].Parent = "ix-nowhere"
			return ss, as
		}, steering.ErrFleet, []string{`"ix-nowhere"`}},
		{"parent cycle", func(ss []fillcast.Site, as []steering.Appliance) ([]fillcast.Site, []steering.Appliance) {
			ss[0].Parent = "isp1-ams"
			return ss, as
		}, steering.ErrFleet, []string{"cycle"}},
		{"invalid cidr", func(ss []fillcast.Site, as []steering.Appliance) ([]fillcast.Site, []steering.Appliance) {
			ss[1].Prefixes = append(ss[1].Prefixes, "203.0.113.0/33")
			return ss, as
		}, prefix.ErrInvalid, []string{`"isp1-ams"`, `"203.0.113.0/33"`}},
		{"host bits set", func(ss []fillcast.Site, as []steering.Appliance) ([]fillcast.Site, []steering.Appliance) {
			ss[1].Prefixes = append(ss[1].Prefixes, "192.0.2.1/24")
			return ss, as
		}, prefix.ErrInvalid, []string{`"192.0.2.1/24"`, `"192.0.2.0/24"`}},
		{"prefix in two sites", func(ss []fillcast.Site, as []steering.Appliance) ([]fillcast.Site, []steering.Appliance) {
			ss[2].Prefixes = append(ss[2].Prefixes, "2001:db8::/32")
			return ss, as
		}, prefix.ErrConflict, []string{`"isp1-ams"`, `"isp2-ams"`, "2001:db8::/32"}},
		{"duplicate appliance", func(ss []fillcast.Site, as []steering.Appliance) ([]fillcast.Site, []steering.Appliance) {
			return ss, append(as, as[0])
		}, steering.ErrFleet, []string{`"a1"`, "twice"}},
		{"unknown site", func(ss []fillcast.Site, as []steering.Appliance) ([]fillcast.Site, []steering.Appliance) {
			as[0].Site = "isp9"
			return ss, as
		}, steering.ErrFleet, []string{`"a1"`, `"isp9"`}},
		{"relative url", func(ss []fillcast.Site, as []steering.Appliance) ([]fillcast.Site, []steering.Appliance) {
			as[0].URL = "a1.example:8080"
			return ss, as
		}, steering.ErrFleet, []string{`"a1"`, "url"}},
		{"negative weight", func(ss []fillcast.Site, as []steering.Appliance) ([]fillcast.Site, []steering.Appliance) {
			as[0].Weight = -1
			return ss, as
		}, steering.ErrFleet, []string{`"a1"`, "weight"}},
		{"nan load", func(ss []fillcast.Site, as []steering.Appliance) ([]fillcast.Site, []steering.Appliance) {
			as[0].Load = math.NaN()
			return ss, as
		}, steering.ErrFleet, []string{`"a1"`, "load"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := steering.New(steering.Config{}, nil)
			ss, as := tc.edit(world(), append([]steering.Appliance(nil), good...))
			_, err := s.Build(ss, as)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Build error = %v; want %v", err, tc.wantErr)
			}
			for _, m := range tc.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("Build error %q does not mention %s", err, m)
				}
			}
		})
	}
}

func TestUpdateNeedsOwnFleet(t *testing.T) {
	t.Parallel()
	s1, _ := steering.New(steering.Config{}, nil)
	s2, _ := steering.New(steering.Config{}, nil)
	f, err := s1.Build(world(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Update(f, nil); !errors.Is(err, steering.ErrFleet) {
		t.Errorf("Update with another steerer's fleet = %v; want ErrFleet", err)
	}
	if _, err := s1.Update(nil, nil); !errors.Is(err, steering.ErrFleet) {
		t.Errorf("Update(nil) = %v; want ErrFleet", err)
	}
	g, err := s1.Update(f, []steering.Appliance{oca("a1", "isp1-ams")})
	if err != nil {
		t.Fatal(err)
	}
	if g.Len() != 1 || f.Len() != 0 {
		t.Errorf("Len after Update = %d (old fleet %d); want 1 (0)", g.Len(), f.Len())
	}
	bad := oca("a1", "isp1-ams")
	bad.URL = "ftp://a1.example"
	if _, err := s1.Update(g, []steering.Appliance{bad}); !errors.Is(err, steering.ErrFleet) {
		t.Errorf("Update with a changed, bad URL = %v; want ErrFleet", err)
	}
}

func TestZeroTitleSetIsEmpty(t *testing.T) {
	t.Parallel()
	s, _ := steering.New(steering.Config{}, func() time.Time { return t0 })
	a := oca("a1", "isp1-ams")
	a.Titles = &steering.TitleSet{}
	f, err := s.Build(world(), []steering.Appliance{a})
	if err != nil {
		t.Fatal(err)
	}
	if a.Titles.Has("t1") || a.Titles.Len() != 0 || f.Eligible("a1", "t1", t0) {
		t.Errorf("zero TitleSet holds titles")
	}
	if got := f.Steer(nil, steering.Request{Client: netip.MustParseAddr("203.0.113.1"), Title: "t1"}); len(got) != 0 {
		t.Errorf("Steer = %v; want nothing from an appliance holding no titles", got)
	}
}

func TestServing(t *testing.T) {
	t.Parallel()
	s, _ := steering.New(steering.Config{}, func() time.Time { return t0 })
	all, none, some := oca("a1", "isp1-ams"), oca("a2", "isp1-ams"), oca("a3", "isp1-ams")
	none.Titles, some.Titles = steering.NewTitleSet(nil), steering.NewTitleSet([]string{"t1"})
	f, err := s.Build(world(), []steering.Appliance{all, none, some})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		id   string
		want bool
	}{{"a1", true}, {"a2", false}, {"a3", true}, {"nope", false}} {
		if got := f.Serving(tt.id, t0); got != tt.want {
			t.Errorf("Serving(%s) = %v, want %v", tt.id, got, tt.want)
		}
	}
}
