package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// class is a kind of request of the mix.
type class int

const (
	playback class = iota
	search
	recommendations
	events
	numClasses
)

var classNames = [numClasses]string{"playback", "search", "recommendations", "events"}

func (c class) String() string { return classNames[c] }

// mix is the weight of each class.
type mix [numClasses]int

// parseMix reads "playback=60,search=20,recommendations=10,events=10".
// A class left out weighs nothing.
func parseMix(s string) (mix, error) {
	var m mix
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		i := slices.Index(classNames[:], strings.TrimSpace(name))
		n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(w), "%")))
		if !ok || i < 0 || err != nil || n < 0 || seen[name] {
			return m, fmt.Errorf("-mix %q: want class=weight pairs, comma-separated, of %s, each once", s, strings.Join(classNames[:], ", "))
		}
		seen[name] = true
		m[i] = n
	}
	if m.total() == 0 {
		return m, fmt.Errorf("-mix %q: every weight is 0", s)
	}
	return m, nil
}

func (m mix) total() int {
	t := 0
	for _, w := range m {
		t += w
	}
	return t
}

// share is class c's fraction of the requests.
func (m mix) share(c class) float64 { return float64(m[c]) / float64(m.total()) }

func (m mix) String() string {
	var parts []string
	for c, w := range m {
		if w > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f %%", class(c), 100*m.share(class(c))))
		}
	}
	return strings.Join(parts, ", ")
}

// cycle is the order in which the targeter deals out the classes: the
// weights reduced by their greatest common divisor, interleaved by smooth
// weighted round robin (60/20/10/10 gives P S P P R P E P S P), so that
// every window of a few requests has the mix, not runs of one class.
func (m mix) cycle() []class {
	g := 0
	for _, w := range m {
		g = gcd(g, w)
	}
	var weights [numClasses]int
	total := 0
	for c, w := range m {
		weights[c] = w / g
		total += w / g
	}
	var current [numClasses]int
	out := make([]class, 0, total)
	for range total {
		best := -1
		for c := range weights {
			if weights[c] == 0 {
				continue
			}
			current[c] += weights[c]
			if best < 0 || current[c] > current[best] {
				best = c
			}
		}
		current[best] -= total
		out = append(out, class(best))
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// targeter deals out the mix's requests, deterministically: the n-th
// request is the cycle's n-th class, and each class takes the viewers and
// queries in turn. Safe for vegeta's concurrent workers.
type targeter struct {
	cycle      []class
	viewers    []viewer
	searchURLs []string
	recsURL    string
	eventsURL  string
	batch      int
	n          atomic.Uint64
	per        [numClasses]atomic.Uint64
}

func newTargeter(base string, m mix, w *world, batch int) *targeter {
	t := &targeter{cycle: m.cycle(), viewers: w.viewers, recsURL: base + "/v1/recommendations", eventsURL: base + "/v1/events", batch: batch}
	for _, q := range w.queries {
		t.searchURLs = append(t.searchURLs, base+"/v1/search?q="+url.QueryEscape(q))
	}
	return t
}

// next is a vegeta.Targeter.
func (t *targeter) next(tg *vegeta.Target) error {
	c := t.cycle[(t.n.Add(1)-1)%uint64(len(t.cycle))]
	k := t.per[c].Add(1) - 1
	v := &t.viewers[k%uint64(len(t.viewers))]
	tg.Method, tg.Body, tg.Header = "GET", nil, v.header
	switch c {
	case playback:
		tg.URL = v.playbackURL
	case search:
		tg.URL = t.searchURLs[k%uint64(len(t.searchURLs))]
	case recommendations:
		tg.URL = t.recsURL
	case events:
		tg.Method, tg.URL, tg.Header, tg.Body = "POST", t.eventsURL, v.jsonHeader, t.eventBatch(v, k)
	}
	return nil
}

// eventBatch is a batch of progress events on the viewer's stream, with
// ids no other batch of the node has: a batch sent again would be stored
// once, and cost less than a new one.
func (t *targeter) eventBatch(v *viewer, k uint64) []byte {
	b := make([]byte, 0, 160*t.batch)
	b = append(b, '[')
	for j := range t.batch {
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":"load-`...)
		b = strconv.AppendUint(b, k, 10)
		b = append(b, '-')
		b = strconv.AppendInt(b, int64(j), 10)
		b = append(b, `","title":"`...)
		b = append(b, v.title...)
		b = append(b, `","stream_id":"`...)
		b = append(b, v.stream...)
		b = append(b, `","type":"progress","position_s":`...)
		b = strconv.AppendUint(b, 1+k%3000, 10)
		b = append(b, `,"duration_s":3600}`...)
	}
	return append(b, ']')
}

// classOf names a result by its URL's path.
func classOf(u string) (class, bool) {
	i := strings.Index(u, "/v1/")
	if i < 0 {
		return 0, false
	}
	p := u[i:]
	switch {
	case strings.HasPrefix(p, "/v1/playback/"):
		return playback, true
	case strings.HasPrefix(p, "/v1/search"):
		return search, true
	case strings.HasPrefix(p, "/v1/recommendations"):
		return recommendations, true
	case strings.HasPrefix(p, "/v1/events"):
		return events, true
	}
	return 0, false
}

// stats are one class's results in a phase.
type stats struct {
	requests int
	ok       int // 2xx
	shed     int // 503
	limited  int // 429
	// streamLimit are the 429s of playback that say the plan's screens
	// are all taken: the bench's setup, not the node's protection.
	streamLimit int
	other       int // any other status
	noAnswer    int // timeouts and connection errors
	// originFirst are playback answers steered to the origin rather than
	// an appliance: the fleet's heartbeats were not heard.
	originFirst int
	lat         []time.Duration // every request's, answered or not
	errs        map[string]int  // why requests got no answer
}

func (s *stats) add(r *vegeta.Result, w *world) {
	s.requests++
	s.lat = append(s.lat, r.Latency)
	switch {
	case r.Code == 0:
		s.noAnswer++
		if s.errs == nil {
			s.errs = map[string]int{}
		}
		e := r.Error
		if i := strings.LastIndex(e, ": "); i >= 0 {
			e = e[i+2:] // the cause, without the URL
		}
		s.errs[e]++
	case r.Code >= 200 && r.Code < 300:
		s.ok++
		if c, _ := classOf(r.URL); c == playback && !steeredToAppliance(r.Body, w) {
			s.originFirst++
		}
	case r.Code == http.StatusServiceUnavailable:
		s.shed++
	case r.Code == http.StatusTooManyRequests:
		s.limited++
		if bytes.Contains(r.Body, []byte("stream limit")) {
			s.streamLimit++
		}
	default:
		s.other++
	}
}

// steeredToAppliance reports whether a playback answer's first URL is
// on an appliance.
func steeredToAppliance(body []byte, w *world) bool {
	_, rest, ok := bytes.Cut(body, []byte(`"urls":["`))
	if !ok {
		return false
	}
	return w.isAppliance(string(rest[:min(len(rest), 200)]))
}

func (s *stats) merge(o *stats) {
	s.requests += o.requests
	s.ok += o.ok
	s.shed += o.shed
	s.limited += o.limited
	s.streamLimit += o.streamLimit
	s.other += o.other
	s.noAnswer += o.noAnswer
	s.originFirst += o.originFirst
	s.lat = append(s.lat, o.lat...)
	for e, n := range o.errs {
		if s.errs == nil {
			s.errs = map[string]int{}
		}
		s.errs[e] += n
	}
}

func (s *stats) sort() { slices.Sort(s.lat) }

// pct is n as a share of the requests.
func (s *stats) pct(n int) float64 {
	if s.requests == 0 {
		return 0
	}
	return 100 * float64(n) / float64(s.requests)
}

func (s *stats) success() float64 { return s.pct(s.ok) }

// quantile returns the q-quantile of the sorted latencies, by nearest
// rank.
func (s *stats) quantile(q float64) time.Duration {
	if len(s.lat) == 0 {
		return 0
	}
	i := int(q*float64(len(s.lat))+0.999999) - 1
	return s.lat[min(max(i, 0), len(s.lat)-1)]
}

// phase is one constant-rate attack on a node and its results.
type phase struct {
	name     string
	rate     int // requests a second asked for
	duration time.Duration
	elapsed  time.Duration // until the last answer
	cls      [numClasses]stats
	all      stats
	cpu      cpuUse
	// Heartbeats sent and failed during the phase.
	beats, beatsFailed int64
}

// sentRate is the requests a second vegeta sent: less than asked when
// this process did not get the CPU to keep up.
func (p *phase) sentRate() float64 { return float64(p.all.requests) / p.duration.Seconds() }

// minSentShare is the share of the asked rate below which a phase's
// sending is said to have fallen short, and a capacity step fails.
const minSentShare = 0.95

// loadConfig is how the bench's vegeta attacks.
type loadConfig struct {
	timeout time.Duration
	conns   int
}

// bodyKept is how much of each answer vegeta keeps: enough for a
// playback answer's first URL and a 429's reason.
const bodyKept = 1024

// attack sends the targeter's mix at rate for d with vegeta, open loop:
// a slow answer does not slow the requests after it. It returns once
// every request has its answer or gave up.
func attack(ctx context.Context, name string, n *node, w *world, t *targeter, rate int, d time.Duration, lc loadConfig) *phase {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: lc.conns,
		MaxConnsPerHost:     lc.conns,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	atk := vegeta.NewAttacker(vegeta.Client(&http.Client{Transport: tr}), vegeta.Timeout(lc.timeout),
		vegeta.KeepAlive(true), vegeta.Redirects(vegeta.NoFollow), vegeta.MaxBody(bodyKept))
	p := &phase{name: name, rate: rate, duration: d}
	sent0, failed0 := w.beats.Counts()
	m := startCPU(n.pid())
	start := time.Now()
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	for r := range atk.Attack(t.next, vegeta.ConstantPacer{Freq: rate, Per: time.Second}, d, name) {
		c, ok := classOf(r.URL)
		if !ok {
			continue
		}
		p.cls[c].add(r, w)
	}
	p.elapsed = time.Since(start)
	p.cpu = m.stop()
	sent1, failed1 := w.beats.Counts()
	p.beats, p.beatsFailed = sent1-sent0, failed1-failed0
	for c := range p.cls {
		p.all.merge(&p.cls[c])
		p.cls[c].sort()
	}
	p.all.sort()
	return p
}
