// Package steeringtest builds synthetic fleets, clients and Zipf-skewed
// title requests for the tests and benchmarks of package steering and for
// bench/steering, the way net/http/httptest serves net/http's tests. The
// fleets are real steering inputs (sites with nested IPv4 and IPv6
// prefixes, flash and storage appliances, reported loads), generated
// deterministically from a seed.
package steeringtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"sort"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/internal/clocktest"
	"github.com/fillcast/fillcast/steering"
)

// Clock is a fake clock for steering.New: it stands still until moved.
// It is safe for concurrent use.
type Clock = clocktest.Clock

// NewClock returns a clock reading t.
func NewClock(t time.Time) *Clock { return clocktest.New(t) }

// Zipf draws ranks in [0, n) with P(k) proportional to 1/(k+1)^s. Unlike
// math/rand/v2's Zipf it accepts any s > 0, including the s = 0.9 that
// fits video popularity. It is not safe for concurrent use.
type Zipf struct {
	r   *rand.Rand
	cdf []float64
}

// NewZipf returns a Zipf sampler over n ranks with exponent s.
func NewZipf(r *rand.Rand, s float64, n int) *Zipf {
	cdf := make([]float64, n)
	sum := 0.0
	for k := 0; k < n; k++ {
		sum += math.Pow(float64(k+1), -s)
		cdf[k] = sum
	}
	for k := range cdf {
		cdf[k] /= sum
	}
	return &Zipf{r: r, cdf: cdf}
}

// Next returns the next rank; 0 is the most popular.
func (z *Zipf) Next() int {
	u := z.r.Float64()
	k := sort.SearchFloat64s(z.cdf, u)
	if k >= len(z.cdf) {
		k = len(z.cdf) - 1
	}
	return k
}

// Title returns the id of the title of popularity rank k.
func Title(k int) string { return fmt.Sprintf("t%06d", k) }

// Spec describes a synthetic fleet.
type Spec struct {
	ISPSites     int     // ISP sites, each the child of an IX site
	IXSites      int     // IX sites, storage appliances only
	PerSite      int     // appliances in every site
	FlashPerSite int     // of which flash, in ISP sites
	Titles       int     // catalog size
	FlashTitles  int     // titles a flash appliance holds: mostly the most popular
	Prefixes     int     // IPv4 /24s per ISP site, plus one IPv6 /48
	Weighted     bool    // storage appliances weigh 2, flash 1; else all 1
	OwnSets      bool    // each flash appliance its own title set; else one per site
	MaxLoad      float64 // reported loads are uniform in [0, MaxLoad) times weight
	Seed         uint64
}

// LibrarySpec is the fleet of the library benchmark in issue 4: 1,000
// appliances in 50 sites and a 100k-title catalog.
func LibrarySpec() Spec {
	return Spec{ISPSites: 40, IXSites: 10, PerSite: 20, FlashPerSite: 12, Titles: 100000,
		FlashTitles: 5000, Prefixes: 20, Weighted: true, MaxLoad: 200, Seed: 1}
}

// Fleet is a generated steering input and clients to steer.
type Fleet struct {
	Sites      []fillcast.Site
	Appliances []steering.Appliance
	Clients    []netip.Addr // each inside some ISP site's prefixes
}

// Generate builds the fleet described by spec, every appliance seen at
// seen. ISP site i announces a /16 of 10.0.0.0/8, Prefixes-1 /24s of
// 172.16.0.0/12, an IPv6 /48, and one /24 nested inside its neighbour's
// /16, so that longest match matters.
func Generate(spec Spec, seen time.Time) Fleet {
	r := rand.New(rand.NewPCG(spec.Seed, spec.Seed^0x5eed))
	var f Fleet
	for x := 0; x < spec.IXSites; x++ {
		id := fmt.Sprintf("ix-%02d", x)
		f.Sites = append(f.Sites, fillcast.Site{ID: id, Kind: fillcast.SiteIX, Region: fmt.Sprintf("r%02d", x)})
		f.Appliances = append(f.Appliances, appliances(r, spec, id, spec.PerSite, 0, nil, seen)...)
	}
	for i := 0; i < spec.ISPSites; i++ {
		id := fmt.Sprintf("isp-%03d", i)
		st := fillcast.Site{ID: id, Kind: fillcast.SiteISP, Region: fmt.Sprintf("r%02d", i%max(spec.IXSites, 1))}
		if spec.IXSites > 0 {
			st.Parent = fmt.Sprintf("ix-%02d", i%spec.IXSites)
		}
		hi, lo := 10+i/256, i%256
		st.Prefixes = append(st.Prefixes, fmt.Sprintf("%d.%d.0.0/16", hi, lo))
		for j := 1; j < spec.Prefixes; j++ {
			q := i*spec.Prefixes + j
			st.Prefixes = append(st.Prefixes, fmt.Sprintf("172.%d.%d.0/24", 16+q/256, q%256))
		}
		n := (i + 1) % spec.ISPSites
		st.Prefixes = append(st.Prefixes,
			fmt.Sprintf("%d.%d.7.0/24", 10+n/256, n%256), // nested in the neighbour's /16
			fmt.Sprintf("2001:db8:%x::/48", i))
		f.Sites = append(f.Sites, st)
		var titles *steering.TitleSet
		if spec.FlashPerSite > 0 {
			titles = flashTitles(r, spec)
		}
		as := appliances(r, spec, id, spec.PerSite, spec.FlashPerSite, titles, seen)
		for k := range as {
			if as[k].Titles != nil && spec.OwnSets && k > 0 {
				as[k].Titles = flashTitles(r, spec)
			}
		}
		f.Appliances = append(f.Appliances, as...)
		for c := 0; c < 64; c++ {
			p := netip.MustParsePrefix(st.Prefixes[r.IntN(len(st.Prefixes))])
			f.Clients = append(f.Clients, randomIn(r, p))
		}
	}
	return f
}

func appliances(r *rand.Rand, spec Spec, site string, n, flash int, titles *steering.TitleSet, seen time.Time) []steering.Appliance {
	var as []steering.Appliance
	for k := 0; k < n; k++ {
		a := steering.Appliance{
			ID:       fmt.Sprintf("%s-oca-%02d", site, k),
			Site:     site,
			URL:      fmt.Sprintf("http://%s-oca-%02d.example:8080", site, k),
			Weight:   1,
			LastSeen: seen,
		}
		if k < flash {
			a.Titles = titles
		} else if spec.Weighted {
			a.Weight = 2
		}
		a.Load = r.Float64() * spec.MaxLoad * a.Weight
		as = append(as, a)
	}
	return as
}

// flashTitles is what a site's flash appliances hold: the most popular
// titles and a few from the long tail.
func flashTitles(r *rand.Rand, spec Spec) *steering.TitleSet {
	n := min(spec.FlashTitles, spec.Titles)
	ts := make([]string, 0, n)
	for k := 0; k < n*4/5; k++ {
		ts = append(ts, Title(k))
	}
	for len(ts) < n {
		ts = append(ts, Title(r.IntN(spec.Titles)))
	}
	return steering.NewTitleSet(ts)
}

func randomIn(r *rand.Rand, p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		if r.IntN(2) == 1 {
			b[i/8] |= 0x80 >> (i % 8)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Requests returns n requests with Zipf(s) title popularity over the
// catalog, from the fleet's clients.
func Requests(r *rand.Rand, f Fleet, titles int, s float64, n int) []steering.Request {
	z := NewZipf(r, s, titles)
	names := make(map[int]string)
	reqs := make([]steering.Request, n)
	for i := range reqs {
		k := z.Next()
		name, ok := names[k]
		if !ok {
			name = Title(k)
			names[k] = name
		}
		reqs[i] = steering.Request{Client: f.Clients[r.IntN(len(f.Clients))], Title: name}
	}
	return reqs
}

// Site returns one site of n appliances of equal weight holding every
// title, with zero reported load, and a client address inside it: the
// setting of the balance benchmark.
func Site(n int, seen time.Time) ([]fillcast.Site, []steering.Appliance, netip.Addr) {
	sites := []fillcast.Site{{ID: "isp-a", Kind: fillcast.SiteISP, Prefixes: []string{"198.51.100.0/24"}}}
	as := make([]steering.Appliance, n)
	for i := range as {
		as[i] = steering.Appliance{ID: fmt.Sprintf("oca-%02d", i), Site: "isp-a",
			URL: fmt.Sprintf("http://10.0.0.%d:8080", i+1), LastSeen: seen}
	}
	return sites, as, netip.MustParseAddr("198.51.100.10")
}
