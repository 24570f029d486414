package cache

// Stats are the cache's counters and gauges. The disk tier's gauges count
// its healthy directories; its counters, all of them.
type Stats struct {
	MemHits, DiskHits, Misses, Coalesced int64
	FillErrors, Corrupt, DiskWriteErrors int64
	// StreamsCut counts the readers of a fill that saw it break off
	// before their end: clients whose body was cut short (or, for a
	// manifest the server reads whole, answered 502).
	StreamsCut                          int64
	MemEvictions, DiskEvictions         int64
	MemUsed, MemCapacity                int64
	DiskUsed, DiskCapacity, DiskObjects int64
	FillsInFlight                       int64
	// Scrubbed and ScrubbedBytes count the objects the scrub verified,
	// and ScrubCorrupt those it found corrupt (and dropped).
	Scrubbed, ScrubbedBytes, ScrubCorrupt int64
	// Promotions and Demotions count the objects moved to the flash
	// class and to the disk class.
	Promotions, Demotions int64
	// Dirs are the disk tier's directories, in Config.Dirs order.
	Dirs []DirStats
}

// DirStats describe one directory of the disk tier.
type DirStats struct {
	Path                                string
	Class                               Class
	UsedBytes, CapacityBytes, Objects   int64
	Evictions, Corrupt, DiskWriteErrors int64
	// Failed says the directory was taken out of service, for Error.
	Failed bool
	Error  string
}

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	c.fmu.Lock()
	inflight := len(c.inflight)
	c.fmu.Unlock()
	s := Stats{
		MemHits: c.memHits.Load(), DiskHits: c.diskHits.Load(), Misses: c.misses.Load(),
		Coalesced: c.coalesced.Load(), FillErrors: c.fillErrors.Load(), StreamsCut: c.streamsCut.Load(),
		FillsInFlight: int64(inflight), Promotions: c.promotions.Load(), Demotions: c.demotions.Load(),
	}
	for _, d := range c.disks {
		ds := d.stats()
		s.Dirs = append(s.Dirs, ds)
		s.Corrupt += ds.Corrupt
		s.DiskWriteErrors += ds.DiskWriteErrors
		s.DiskEvictions += ds.Evictions
		s.Scrubbed += d.scrubbed.Load()
		s.ScrubbedBytes += d.scrubbedBytes.Load()
		s.ScrubCorrupt += d.scrubCorrupt.Load()
		if !ds.Failed {
			s.DiskUsed += ds.UsedBytes
			s.DiskCapacity += ds.CapacityBytes
			s.DiskObjects += ds.Objects
		}
	}
	if c.mem != nil {
		s.MemUsed, s.MemCapacity, s.MemEvictions = c.mem.used(), c.cfg.MemBytes, c.mem.evictions.Load()
	}
	return s
}

// FailedDirs returns the directories taken out of service.
func (c *Cache) FailedDirs() []string {
	var out []string
	for _, d := range c.disks {
		if d.failed.Load() {
			out = append(out, d.dir)
		}
	}
	return out
}

func (d *disk) stats() DirStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return DirStats{
		Path: d.dir, Class: className(d.class), UsedBytes: d.used, CapacityBytes: d.max, Objects: int64(len(d.index)),
		Evictions: d.evictions.Load(), Corrupt: d.corrupt.Load(), DiskWriteErrors: d.writeErrors.Load(),
		Failed: d.failed.Load(), Error: d.failErr,
	}
}

// className names the class of index i.
func className(i int) Class {
	if i == diskIdx {
		return ClassDisk
	}
	return ClassFlash
}
