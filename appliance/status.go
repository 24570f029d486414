package appliance

import (
	"os"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance/agent"
	"github.com/fillcast/fillcast/appliance/fill"
	"github.com/fillcast/fillcast/appliance/tlsconf"

	"github.com/prometheus/client_golang/prometheus"
)

// Status is the body of GET /v1/status.
type Status struct {
	ID      string `json:"id"`
	Site    string `json:"site"`
	Profile string `json:"profile"`
	// PID is the process serving: it changes with each upgrade.
	PID     int        `json:"pid"`
	UptimeS int64      `json:"uptime_s"`
	Memory  TierStatus `json:"memory"`
	Disk    TierStatus `json:"disk"`
	// DiskDirs are the disk tier's directories: a failed one is out of
	// service (Disk counts only the others).
	DiskDirs []DirStatus `json:"disk_dirs"`
	// Moves count the objects moved between the flash and disk classes.
	Moves MoveStatus `json:"moves"`
	// Scrub is the background verification of the disk tier.
	Scrub     ScrubStatus      `json:"scrub"`
	Misses    int64            `json:"misses"`
	Coalesced int64            `json:"coalesced_waits"`
	HitRatio  float64          `json:"hit_ratio"`
	Fills     FillStatus       `json:"fills"`
	Upstreams []UpstreamStatus `json:"upstreams"`
	// Plan is the off-peak fill progress, when a control plane plans.
	Plan *fill.Status `json:"plan,omitempty"`
	// TLS is the served certificate, its OCSP staple and the session
	// ticket keys, with a certificate.
	TLS *tlsconf.Status `json:"tls,omitempty"`
}

// TierStatus describes one cache tier.
type TierStatus struct {
	CapacityBytes int64 `json:"capacity_bytes"`
	UsedBytes     int64 `json:"used_bytes"`
	Objects       int64 `json:"objects,omitempty"`
	Hits          int64 `json:"hits"`
	Evictions     int64 `json:"evictions"`
}

// DirStatus describes one directory of the disk tier.
type DirStatus struct {
	Path string `json:"path"`
	// Class is flash or disk.
	Class         string `json:"class"`
	CapacityBytes int64  `json:"capacity_bytes"`
	UsedBytes     int64  `json:"used_bytes"`
	Objects       int64  `json:"objects"`
	Failed        bool   `json:"failed"`
	// Error is why it was taken out of service.
	Error string `json:"error,omitempty"`
}

// MoveStatus counts the objects promoted to the flash class and demoted
// to the disk class, by popularity.
type MoveStatus struct {
	Promotions int64 `json:"promotions"`
	Demotions  int64 `json:"demotions"`
}

// ScrubStatus counts the scrub's work.
type ScrubStatus struct {
	Objects int64 `json:"objects"`
	Bytes   int64 `json:"bytes"`
	Corrupt int64 `json:"corrupt"`
}

// FillStatus describes the miss path.
type FillStatus struct {
	InFlight        int64 `json:"in_flight"`
	Errors          int64 `json:"errors"`
	CorruptDropped  int64 `json:"corrupt_dropped"`
	DiskWriteErrors int64 `json:"disk_write_errors"`
}

// UpstreamStatus is one upstream's counters.
type UpstreamStatus struct {
	URL     string `json:"url"`
	Fetches int64  `json:"fetches"`
	Errors  int64  `json:"errors"`
}

// Status reports the appliance's tiers, hit ratio and fills.
func (a *Appliance) Status() any {
	s := a.cache.Stats()
	st := Status{
		ID: a.cfg.ID, Site: a.cfg.Site, Profile: a.cfg.Profile, PID: os.Getpid(),
		UptimeS:   int64(time.Since(a.start).Seconds()),
		Memory:    TierStatus{CapacityBytes: s.MemCapacity, UsedBytes: s.MemUsed, Hits: s.MemHits, Evictions: s.MemEvictions},
		Disk:      TierStatus{CapacityBytes: s.DiskCapacity, UsedBytes: s.DiskUsed, Objects: s.DiskObjects, Hits: s.DiskHits, Evictions: s.DiskEvictions},
		Misses:    s.Misses,
		Coalesced: s.Coalesced,
		Fills:     FillStatus{InFlight: s.FillsInFlight, Errors: s.FillErrors, CorruptDropped: s.Corrupt, DiskWriteErrors: s.DiskWriteErrors},
		Scrub:     ScrubStatus{Objects: s.Scrubbed, Bytes: s.ScrubbedBytes, Corrupt: s.ScrubCorrupt},
		Moves:     MoveStatus{Promotions: s.Promotions, Demotions: s.Demotions},
	}
	for _, d := range s.Dirs {
		st.DiskDirs = append(st.DiskDirs, DirStatus{Path: d.Path, Class: string(d.Class), CapacityBytes: d.CapacityBytes, UsedBytes: d.UsedBytes,
			Objects: d.Objects, Failed: d.Failed, Error: d.Error})
	}
	if total := s.MemHits + s.DiskHits + s.Misses; total > 0 {
		st.HitRatio = float64(s.MemHits+s.DiskHits) / float64(total)
	}
	for _, u := range a.up.Stats() {
		st.Upstreams = append(st.Upstreams, UpstreamStatus{URL: u.URL, Fetches: u.Fetches, Errors: u.Errors})
	}
	if a.fill != nil {
		ps := a.fill.Status()
		st.Plan = &ps
	}
	if a.tlsm != nil {
		ts := a.tlsm.Status()
		st.TLS = &ts
	}
	return st
}

// collector exposes the cache and upstream counters to Prometheus, read
// at scrape time so the hot path only touches atomics.
type collector struct {
	a                                                        *Appliance
	hits, misses, coalesced, used, capacity, evictions       *prometheus.Desc
	fillErrors, corrupt, diskErrors, objects, upFetch, upErr *prometheus.Desc
	planBytes, presentBytes, filledBytes, planFailures       *prometheus.Desc
	outsideWindow, streamsCut                                *prometheus.Desc
	dirFailed, dirUsed, dirCapacity                          *prometheus.Desc
	scrubbed, scrubbedBytes, scrubCorrupt, moves             *prometheus.Desc
}

func newCollector(a *Appliance) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("fillcast_appliance_"+name, help, labels, nil)
	}
	return &collector{
		a:            a,
		hits:         d("hits_total", "Cache hits by tier.", "tier"),
		misses:       d("misses_total", "Misses that started an upstream fill."),
		coalesced:    d("coalesced_waits_total", "Misses that joined a fill already in progress."),
		used:         d("cache_used_bytes", "Bytes held by each tier.", "tier"),
		capacity:     d("cache_capacity_bytes", "Budget of each tier.", "tier"),
		evictions:    d("evictions_total", "Objects evicted by each tier.", "tier"),
		fillErrors:   d("fill_errors_total", "Fills that failed (upstream error, truncated body)."),
		corrupt:      d("corrupt_objects_total", "Disk objects dropped as torn or corrupt."),
		diskErrors:   d("disk_write_errors_total", "Disk writes that failed (full or broken disk)."),
		objects:      d("disk_objects", "Objects in the disk tier."),
		upFetch:      d("upstream_fetches_total", "Fetches sent to each upstream.", "upstream"),
		upErr:        d("upstream_errors_total", "Failed fetches per upstream.", "upstream"),
		planBytes:    d("plan_bytes", "Bytes the fill manifest plans on this appliance."),
		presentBytes: d("plan_present_bytes", "Planned bytes already on disk."),
		filledBytes:  d("plan_filled_bytes_total", "Bytes fetched by off-peak fills."),
		planFailures: d("plan_fill_failures_total", "Planned files that failed to fill (retried)."),
		outsideWindow: d("plan_filled_outside_window_bytes_total",
			"Fill bytes read after the fill window closed (a read under way at the close)."),
		streamsCut:    d("streams_cut_total", "Responses streamed from a fill that broke off before their end."),
		dirFailed:     d("disk_failed", "1 when the disk-tier directory was taken out of service after I/O errors.", "dir"),
		dirUsed:       d("disk_dir_used_bytes", "Bytes held by each disk-tier directory.", "dir"),
		dirCapacity:   d("disk_dir_capacity_bytes", "Budget of each disk-tier directory.", "dir"),
		scrubbed:      d("scrubbed_objects_total", "Disk objects the background scrub verified."),
		scrubbedBytes: d("scrubbed_bytes_total", "Bytes the background scrub read."),
		scrubCorrupt:  d("scrub_corrupt_total", "Disk objects the background scrub found corrupt (dropped, fetched again on request)."),
		moves:         d("disk_moves_total", "Objects moved between the disk tier's classes, by the class moved to (flash: promoted, disk: demoted).", "to"),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hits, c.misses, c.coalesced, c.used, c.capacity, c.evictions, c.fillErrors, c.corrupt, c.diskErrors, c.objects, c.upFetch, c.upErr,
		c.planBytes, c.presentBytes, c.filledBytes, c.planFailures, c.outsideWindow, c.streamsCut,
		c.dirFailed, c.dirUsed, c.dirCapacity, c.scrubbed, c.scrubbedBytes, c.scrubCorrupt, c.moves} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.a.cache.Stats()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter(c.hits, s.MemHits, "memory")
	counter(c.hits, s.DiskHits, "disk")
	counter(c.misses, s.Misses)
	counter(c.coalesced, s.Coalesced)
	gauge(c.used, s.MemUsed, "memory")
	gauge(c.used, s.DiskUsed, "disk")
	gauge(c.capacity, s.MemCapacity, "memory")
	gauge(c.capacity, s.DiskCapacity, "disk")
	counter(c.evictions, s.MemEvictions, "memory")
	counter(c.evictions, s.DiskEvictions, "disk")
	counter(c.fillErrors, s.FillErrors)
	counter(c.streamsCut, s.StreamsCut)
	counter(c.corrupt, s.Corrupt)
	counter(c.diskErrors, s.DiskWriteErrors)
	gauge(c.objects, s.DiskObjects)
	counter(c.scrubbed, s.Scrubbed)
	counter(c.scrubbedBytes, s.ScrubbedBytes)
	counter(c.scrubCorrupt, s.ScrubCorrupt)
	counter(c.moves, s.Promotions, "flash")
	counter(c.moves, s.Demotions, "disk")
	for _, d := range s.Dirs {
		failed := int64(0)
		if d.Failed {
			failed = 1
		}
		gauge(c.dirFailed, failed, d.Path)
		gauge(c.dirUsed, d.UsedBytes, d.Path)
		gauge(c.dirCapacity, d.CapacityBytes, d.Path)
	}
	for _, u := range c.a.up.Stats() {
		counter(c.upFetch, u.Fetches, u.URL)
		counter(c.upErr, u.Errors, u.URL)
	}
	if c.a.fill != nil {
		p := c.a.fill.Status()
		gauge(c.planBytes, p.PlannedBytes)
		gauge(c.presentBytes, p.PresentBytes)
		counter(c.filledBytes, p.FilledBytes)
		counter(c.planFailures, p.Failures)
		counter(c.outsideWindow, p.OutsideWindowBytes)
	}
}

// counters feeds the heartbeat agent.
func (a *Appliance) counters() agent.Counters {
	u := a.srv.Usage()
	s := a.cache.Stats()
	// A failure is a 5xx the server answered or a body the cache cut
	// short (fillcast.Heartbeat.ErrorRatio).
	c := agent.Counters{Requests: u.Requests, Bytes: u.Bytes, TitleBytes: u.TitleBytes,
		UsedBytes: s.DiskUsed, CapacityBytes: s.DiskCapacity,
		Hits: s.MemHits + s.DiskHits, Lookups: s.MemHits + s.DiskHits + s.Misses,
		Latency: u.Latency, Failed: u.Failed + uint64(s.StreamsCut), FailedDisks: a.cache.FailedDirs()}
	if a.fill != nil {
		p := a.fill.Status()
		c.FillPlannedBytes, c.FillPresentBytes = p.PlannedBytes, p.PresentBytes
		if a.cfg.Profile == fillcast.ProfileFlash {
			c.PlanVersion, c.CompleteTitles = a.fill.Complete()
		}
	}
	return c
}
