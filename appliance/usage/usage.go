// Package usage sums what an appliance serves, per title and rendition:
// requests, body bytes, status classes and the players' CMCD
// (appliance/cmcd). The server records every content response into a
// Recorder, from the HTTP/1.1 and HTTP/3 fronts alike (they share one
// handler); the agent cuts a fillcast.Usage summary from it every
// interval and sends it to the control plane (agent.UsageReporter).
//
// Recording runs on the hit path and allocates nothing once a title and
// rendition have been seen: the rows live in maps sharded by title, each
// behind its own mutex, looked up with the request's own strings; a row
// is made, its strings copied, only the first time its pair appears.
// Cut reads and zeroes the rows under each shard's lock and drops the
// rows that stayed idle for a whole interval, so that the maps hold only
// what is being watched, and at most Config.MaxRows pairs.
package usage

import (
	"cmp"
	"hash/maphash"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance/cmcd"
)

// Config configures a Recorder. Zero values mean the defaults named.
type Config struct {
	// Appliance and Site are the appliance's ids, written in every
	// summary. Required.
	Appliance, Site string
	// MaxRows bounds the titles and renditions counted in one interval:
	// the responses of the pairs beyond it are counted as
	// Usage.Unattributed, so that requests for made-up titles cannot grow
	// the appliance's memory or the summary. Zero means
	// fillcast.MaxUsageRows, which is also the most.
	MaxRows int
}

// DefaultConfig returns a Config with every default filled in but the
// appliance's ids.
func DefaultConfig() Config { return Config{MaxRows: fillcast.MaxUsageRows} }

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	if err := fillcast.ValidateTitleID(c.Appliance); err != nil {
		return fillcast.ConfigErrorf("usage", "Appliance", "%v", err)
	}
	if err := fillcast.ValidateTitleID(c.Site); err != nil {
		return fillcast.ConfigErrorf("usage", "Site", "%v", err)
	}
	if c.MaxRows < 0 || c.MaxRows > fillcast.MaxUsageRows {
		return fillcast.ConfigErrorf("usage", "MaxRows", "%d: want 0 to %d (0 means %d)", c.MaxRows, fillcast.MaxUsageRows, fillcast.MaxUsageRows)
	}
	return nil
}

// Deps are what a Recorder works with besides its Config.
type Deps struct {
	// Now stamps the intervals; nil means time.Now.
	Now func() time.Time
}

// Response is one response as the server records it.
type Response struct {
	// Title is the title's id. Rendition is the directory under it, ""
	// for a file at its root. They may view a request's buffer: the
	// Recorder copies them when it keeps them.
	Title, Rendition string
	// Status is the HTTP status; Bytes the body bytes sent.
	Status int
	Bytes  int64
	// CMCD is what the player said with the request; the zero Data when
	// nothing.
	CMCD cmcd.Data
}

// shards is the number of maps the rows are spread over, by title.
const shards = 32

// maxValue bounds each CMCD value summed, so that no sum of an interval
// overflows whatever a player claims.
const maxValue = math.MaxUint32

// sessionBits is the size of a row's bitmap of session ids, whose zero
// bits estimate the distinct ones (linear counting).
const sessionBits = 1024

type rowKey struct{ title, rendition string }

// counts is one row's counters for the interval under way.
type counts struct {
	requests, bytes int64
	status          [4]int64 // 2xx, 3xx, 4xx, 5xx
	cmcd            fillcast.UsageCMCD
	sids            int64 // requests with a session id
	sessions        [sessionBits / 64]uint64
}

type shard struct {
	mu   sync.Mutex
	rows map[rowKey]*counts
	_    [48]byte // each shard on a cache line of its own
}

// Recorder sums responses; see the package doc. It is safe for
// concurrent use.
type Recorder struct {
	cfg          Config
	now          func() time.Time
	seed         maphash.Seed
	shards       [shards]shard
	rows         atomic.Int64 // rows across shards
	unattributed atomic.Int64

	cutMu sync.Mutex
	start time.Time // of the interval under way
}

// New returns a Recorder whose first interval starts now.
func New(cfg Config, d Deps) (*Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.MaxRows = cmp.Or(cfg.MaxRows, fillcast.MaxUsageRows)
	if d.Now == nil {
		d.Now = time.Now
	}
	r := &Recorder{cfg: cfg, now: d.Now, seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].rows = map[rowKey]*counts{}
	}
	r.start = r.stamp(time.Time{})
	return r, nil
}

// stamp returns the wall time now in UTC, or notBefore if that is later:
// a clock set back must not make an interval end before it starts.
func (r *Recorder) stamp(notBefore time.Time) time.Time {
	t := r.now().Round(0).UTC()
	if t.Before(notBefore) {
		return notBefore
	}
	return t
}

// Record counts one response. A title that is not a valid id, or one
// more pair than MaxRows, is counted as unattributed; a rendition that
// is not valid (fillcast.ValidUsageRendition) as the title's root.
func (r *Recorder) Record(resp Response) {
	if !validTitle(resp.Title) {
		r.unattributed.Add(1)
		return
	}
	if !fillcast.ValidUsageRendition(resp.Rendition) {
		resp.Rendition = ""
	}
	sh := &r.shards[maphash.String(r.seed, resp.Title)%shards]
	sh.mu.Lock()
	c := sh.rows[rowKey{resp.Title, resp.Rendition}]
	if c == nil {
		if c = r.add(sh, resp.Title, resp.Rendition); c == nil {
			sh.mu.Unlock()
			r.unattributed.Add(1)
			return
		}
	}
	c.add(r.seed, &resp)
	sh.mu.Unlock()
}

// add makes the row of a new pair in sh, whose lock is held, unless
// MaxRows rows exist.
func (r *Recorder) add(sh *shard, title, rendition string) *counts {
	if r.rows.Add(1) > int64(r.cfg.MaxRows) {
		r.rows.Add(-1)
		return nil
	}
	c := new(counts)
	sh.rows[rowKey{strings.Clone(title), strings.Clone(rendition)}] = c
	return c
}

func (c *counts) add(seed maphash.Seed, resp *Response) {
	c.requests++
	c.bytes += max(resp.Bytes, 0)
	if k := resp.Status/100 - 2; k >= 0 && k < len(c.status) {
		c.status[k]++
	}
	d := &resp.CMCD
	if d.Has == 0 {
		return
	}
	m := &c.cmcd
	m.Requests++
	if d.Has&cmcd.KeyBitrate != 0 {
		m.BitrateRequests++
		m.BitrateKbpsSum += min(d.Bitrate, maxValue)
	}
	if d.Has&cmcd.KeyBuffer != 0 {
		m.BufferRequests++
		m.BufferMsSum += min(d.Buffer, maxValue)
	}
	if d.Has&cmcd.KeyThroughput != 0 {
		m.ThroughputRequests++
		m.ThroughputKbpsSum += min(d.Throughput, maxValue)
	}
	if d.Starved {
		m.Starved++
	}
	if d.Has&cmcd.KeySession != 0 {
		c.sids++
		h := maphash.Bytes(seed, d.Session) % sessionBits
		c.sessions[h/64] |= 1 << (h % 64)
	}
}

// Cut ends the interval under way and returns its summary, or nil when
// nothing was recorded in it; the next interval starts at its end.
func (r *Recorder) Cut() *fillcast.Usage {
	r.cutMu.Lock()
	defer r.cutMu.Unlock()
	end := r.stamp(r.start)
	u := &fillcast.Usage{Appliance: r.cfg.Appliance, Site: r.cfg.Site,
		ID: r.cfg.Appliance + "-" + strconv.FormatInt(r.start.UnixNano(), 10), Start: r.start, End: end}
	r.start = end
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for k, c := range sh.rows {
			if c.requests == 0 { // idle for a whole interval: forgotten
				delete(sh.rows, k)
				r.rows.Add(-1)
				continue
			}
			u.Titles = append(u.Titles, c.row(k))
			*c = counts{}
		}
		sh.mu.Unlock()
	}
	u.Unattributed = r.unattributed.Swap(0)
	if len(u.Titles) == 0 && u.Unattributed == 0 {
		return nil
	}
	slices.SortFunc(u.Titles, func(a, b fillcast.UsageRow) int {
		return cmp.Or(strings.Compare(a.Title, b.Title), strings.Compare(a.Rendition, b.Rendition))
	})
	return u
}

func (c *counts) row(k rowKey) fillcast.UsageRow {
	row := fillcast.UsageRow{Title: k.title, Rendition: k.rendition, Requests: c.requests, Bytes: c.bytes,
		Status2xx: c.status[0], Status3xx: c.status[1], Status4xx: c.status[2], Status5xx: c.status[3], CMCD: c.cmcd}
	row.CMCD.Sessions = min(estimate(c.sessions[:]), c.sids)
	return row
}

// estimate is the linear-counting estimate of the distinct values hashed
// into bitmap: m·ln(m/zeros), and m·ln(m) once it is full.
func estimate(bitmap []uint64) int64 {
	m := float64(len(bitmap) * 64)
	zeros := m
	for _, w := range bitmap {
		zeros -= float64(bits.OnesCount64(w))
	}
	return int64(math.Round(m * math.Log(m/max(zeros, 1))))
}

// validTitle is fillcast.ValidateTitleID without the error, which would
// allocate.
func validTitle(id string) bool {
	if id == "" || len(id) > fillcast.MaxTitleIDLen || id[0] == '-' {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !fillcast.IsIDByte(id[i]) {
			return false
		}
	}
	return true
}
