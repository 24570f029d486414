package ratelimit

import (
	"errors"
	"maps"
	"math"
	"strings"
	"testing"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
)

func TestClassOf(t *testing.T) {
	for _, tc := range []struct {
		p    auth.Principal
		want Class
	}{
		{auth.Principal{}, ClassAnonymous},
		{auth.Principal{Kind: auth.Viewer, ID: "acct"}, ClassViewer},
		{auth.Principal{Kind: auth.Operator, ID: "key", Scope: auth.ScopeRead}, ClassAPIKey},
		{auth.Principal{Kind: auth.Appliance, ID: "app"}, ClassAppliance},
		{auth.Principal{Kind: auth.Node, ID: "n1"}, ClassNode},
		{auth.Principal{Kind: auth.Node}, ClassNode},
		{auth.Principal{Kind: auth.Kind(42)}, ClassAnonymous},
	} {
		if got := ClassOf(tc.p); got != tc.want {
			t.Errorf("ClassOf(%v) = %q, want %q", tc.p, got, tc.want)
		}
	}
}

func TestLimitValidate(t *testing.T) {
	for _, tc := range []struct {
		lim  Limit
		ok   bool
		kind string // "unlimited", "blocked" or ""
	}{
		{Limit{20, 40}, true, ""},
		{Limit{-1, 0}, true, "unlimited"},
		{Limit{-5, 7}, true, "unlimited"},
		{Limit{}, true, "blocked"},
		{Limit{MinPerSecond, 1}, true, ""},
		{Limit{MaxPerSecond, MaxBurst}, true, ""},
		{Limit{0, 5}, false, ""},
		{Limit{10, 0}, false, ""},
		{Limit{10, -1}, false, ""},
		{Limit{10, MaxBurst + 1}, false, ""},
		{Limit{MinPerSecond / 2, 1}, false, ""},
		{Limit{MaxPerSecond * 2, 1}, false, ""},
	} {
		t.Run(tc.lim.String(), func(t *testing.T) {
			err := tc.lim.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, tc.ok)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "ratelimit: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			kind := ""
			if tc.lim.Unlimited() {
				kind = "unlimited"
			}
			if tc.lim.Blocked() {
				kind += "blocked"
			}
			if kind != tc.kind {
				t.Errorf("kind = %q, want %q", kind, tc.kind)
			}
		})
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if err := (Limit{bad, 1}).Validate(); err == nil {
			t.Errorf("Limit{%v, 1}.Validate() = nil, want an error", bad)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("Config{}.Validate() = %v", err)
	}
	for _, tc := range []struct {
		name  string
		cfg   Config
		field string
	}{
		{"node class", Config{Classes: map[Class]Limit{ClassNode: {1, 1}}}, "Classes"},
		{"unknown class", Config{Classes: map[Class]Limit{"robots": {1, 1}}}, "Classes"},
		{"bad limit", Config{Classes: map[Class]Limit{ClassViewer: {1, 0}}}, "Classes.viewer"},
		{"negative max keys", Config{MaxKeys: -1}, "MaxKeys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			var ce *fillcast.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Validate() = %v, want a *fillcast.ConfigError", err)
			}
			if ce.Pkg != "ratelimit" || ce.Field != tc.field {
				t.Errorf("got pkg %q field %q, want ratelimit %q", ce.Pkg, ce.Field, tc.field)
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	with := func(over map[Class]Limit) map[Class]Limit {
		m := defaultLimits()
		maps.Copy(m, over)
		return m
	}
	for _, tc := range []struct {
		in   string
		want map[Class]Limit
	}{
		{"", defaultLimits()},
		{"  ", defaultLimits()},
		{"viewer=20/40,anonymous=10/30", defaultLimits()},
		{"viewer=5/10", with(map[Class]Limit{ClassViewer: {5, 10}})},
		{" apikey = 0.5/3 , appliance=off", with(map[Class]Limit{ClassAPIKey: {0.5, 3}, ClassAppliance: {-1, 0}})},
		{"anonymous=0/0", with(map[Class]Limit{ClassAnonymous: {}})},
		{"viewer=1e3/2000", with(map[Class]Limit{ClassViewer: {1000, 2000}})},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseLimits(tc.in)
			if err != nil {
				t.Fatalf("ParseLimits(%q) = %v", tc.in, err)
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("ParseLimits(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
	for _, in := range []string{
		"viewer",
		"viewer=",
		"viewer=20",
		"viewer=20/",
		"viewer=/40",
		"viewer=x/40",
		"viewer=20/4.5",
		"viewer=-1/40",
		"viewer=NaN/4",
		"viewer=Inf/4",
		"viewer=20/0",
		"viewer=0/5",
		"viewer=20/40,viewer=1/1",
		"node=1/1",
		"robots=1/1",
		"viewer=20/40,",
		",",
		"viewer=On",
	} {
		t.Run("bad "+in, func(t *testing.T) {
			got, err := ParseLimits(in)
			if err == nil {
				t.Fatalf("ParseLimits(%q) = %v, want an error", in, got)
			}
			if !strings.HasPrefix(err.Error(), "ratelimit: limits ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestFormatLimits(t *testing.T) {
	if got, want := FormatLimits(defaultLimits()), "viewer=20/40,apikey=100/200,appliance=20/40,anonymous=10/30"; got != want {
		t.Errorf("FormatLimits(defaults) = %q, want %q", got, want)
	}
	m := map[Class]Limit{ClassAnonymous: {-1, 0}, ClassViewer: {0.25, 1}, ClassNode: {1, 1}}
	if got, want := FormatLimits(m), "viewer=0.25/1,anonymous=off"; got != want {
		t.Errorf("FormatLimits = %q, want %q", got, want)
	}
}

// FuzzParseLimits checks that ParseLimits never panics, that whatever it
// accepts is a valid configuration, and that FormatLimits reads back.
func FuzzParseLimits(f *testing.F) {
	for _, s := range []string{"", "viewer=20/40,anonymous=10/30", "apikey=off", "appliance=0/0", "viewer=0.5/1", "viewer=1e9/1000000", "node=1/1", "viewer=20/40,viewer=1/1", "anonymous=0x1p-2/3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseLimits(s)
		if err != nil {
			if m != nil {
				t.Fatalf("ParseLimits(%q) returned %v with error %v", s, m, err)
			}
			return
		}
		if len(m) != numClasses {
			t.Fatalf("ParseLimits(%q) = %v: want every limited class", s, m)
		}
		if err := (Config{Classes: m}).Validate(); err != nil {
			t.Fatalf("ParseLimits(%q) = %v, which does not validate: %v", s, m, err)
		}
		back, err := ParseLimits(FormatLimits(m))
		if err != nil {
			t.Fatalf("ParseLimits(FormatLimits(%v)) = %v", m, err)
		}
		if !maps.Equal(back, m) {
			t.Fatalf("round trip of %q: got %v, want %v", s, back, m)
		}
	})
}

func TestKindIndex(t *testing.T) {
	for k := range auth.Kind(8) {
		p := auth.Principal{Kind: k}
		i, limited := kindIndex(k)
		want, wantLimited := classIndex(ClassOf(p))
		if i != want || limited != wantLimited {
			t.Errorf("kindIndex(%v) = %d, %v; want %d, %v as ClassOf says", k, i, limited, want, wantLimited)
		}
	}
}
