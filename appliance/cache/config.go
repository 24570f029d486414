package cache

import (
	"cmp"
	"path/filepath"
	"time"

	"github.com/fillcast/fillcast"
)

// Config configures a Cache. Zero values mean the defaults named.
type Config struct {
	// Dir holds the disk tier when it has one directory: Dir or Dirs is
	// required.
	Dir string
	// Dirs are the disk tier's directories, each on its own disk, when it
	// has several (they replace Dir). Objects are placed across the
	// healthy ones of a class by rendezvous hashing on the key, weighted
	// by budget, so adding or losing one moves only its share; with both
	// classes, the most requested objects are on flash (see Class). A
	// directory whose I/O fails (EIO, a vanished mount) is taken out of
	// service: its objects become misses, filled again onto the others.
	Dirs []DirConfig
	// DiskBytes is the budget of Dir, and of each directory of Dirs that
	// gives none. Required, > 0, unless every directory gives one.
	DiskBytes int64
	// MemBytes is the memory tier's budget; 0 disables the tier.
	MemBytes int64
	// MaxMemObject is the largest object the memory tier holds. Zero means
	// 64 MiB.
	MaxMemObject int64
	// MaxSpoolBytes is the largest fill spooled in memory; larger fills
	// spool in the disk tier's temporary file. Zero means 64 MiB.
	MaxSpoolBytes int64
	// Fsync makes every committed object durable before it is indexed.
	Fsync bool
	// ScrubRate is the bytes per second at which Run re-reads each
	// directory's objects to find bit rot (a corrupt object is dropped, so
	// its next request fetches it again). Zero turns the scrub off;
	// DefaultConfig sets 32 MiB/s.
	ScrubRate int64
	// ScrubEvery is the shortest time between the starts of two scrub
	// passes over a directory. Zero means 1 h.
	ScrubEvery time.Duration
	// VerifyAge bounds how long a disk object is served on the strength of
	// its last verification: one read from disk after that is checked
	// against its checksum first (a corrupt one is dropped and fetched
	// again, never served). Zero means 24 h.
	VerifyAge time.Duration
	// MoveRate is the bytes per second at which objects are promoted and
	// demoted between the flash and disk classes (see DirConfig.Class),
	// so that moves never compete with the hit path for the disks. Zero
	// means 64 MiB/s.
	MoveRate int64
	// Movers is how many moves run at once. Zero means 2.
	Movers int
	// Now is the clock of VerifyAge; nil means time.Now.
	Now func() time.Time
}

// DirConfig is one directory of the disk tier.
type DirConfig struct {
	// Path is the directory. Required.
	Path string
	// Bytes is its budget. Zero means Config.DiskBytes.
	Bytes int64
	// Class is the kind of storage it is on: ClassFlash or ClassDisk.
	// Empty means ClassFlash, so a cache of one class places objects by
	// hashing alone; when any directory is ClassDisk, every directory
	// must name its class.
	Class Class
}

// DefaultConfig returns a Config with defaults; Dir (or Dirs) and
// DiskBytes must be set.
func DefaultConfig() Config {
	return Config{MaxMemObject: 64 << 20, MaxSpoolBytes: 64 << 20, ScrubRate: 32 << 20,
		ScrubEvery: time.Hour, VerifyAge: 24 * time.Hour, MoveRate: 64 << 20, Movers: 2}
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	switch {
	case c.Dir == "" && len(c.Dirs) == 0:
		return fillcast.ConfigErrorf("cache", "Dir", "required: the directory of the disk tier")
	case c.Dir != "" && len(c.Dirs) > 0:
		return fillcast.ConfigErrorf("cache", "Dirs", "given with Dir %q: give one directory in Dir or all of them in Dirs", c.Dir)
	case c.DiskBytes < 0 || c.DiskBytes == 0 && c.needsDiskBytes():
		return fillcast.ConfigErrorf("cache", "DiskBytes", "%d: want the disk tier's budget, a positive number of bytes", c.DiskBytes)
	case c.MemBytes < 0:
		return fillcast.ConfigErrorf("cache", "MemBytes", "%d is negative (0 turns the memory tier off)", c.MemBytes)
	case c.MaxMemObject < 0:
		return fillcast.ConfigErrorf("cache", "MaxMemObject", "%d is negative", c.MaxMemObject)
	case c.MaxSpoolBytes < 0:
		return fillcast.ConfigErrorf("cache", "MaxSpoolBytes", "%d is negative", c.MaxSpoolBytes)
	case c.ScrubRate < 0:
		return fillcast.ConfigErrorf("cache", "ScrubRate", "%d is negative (0 turns the scrub off)", c.ScrubRate)
	case c.ScrubEvery < 0:
		return fillcast.ConfigErrorf("cache", "ScrubEvery", "%v is negative", c.ScrubEvery)
	case c.VerifyAge < 0:
		return fillcast.ConfigErrorf("cache", "VerifyAge", "%v is negative", c.VerifyAge)
	case c.MoveRate < 0:
		return fillcast.ConfigErrorf("cache", "MoveRate", "%d is negative", c.MoveRate)
	case c.Movers < 0:
		return fillcast.ConfigErrorf("cache", "Movers", "%d is negative", c.Movers)
	}
	seen := map[string]bool{}
	for i, d := range c.Dirs {
		p := filepath.Clean(d.Path)
		switch {
		case d.Path == "":
			return fillcast.ConfigErrorf("cache", "Dirs", "directory %d: a path is required", i+1)
		case d.Bytes < 0:
			return fillcast.ConfigErrorf("cache", "Dirs", "%s: budget %d is negative (0 means DiskBytes)", d.Path, d.Bytes)
		case seen[p]:
			return fillcast.ConfigErrorf("cache", "Dirs", "%s is given twice", d.Path)
		case d.Class != "" && d.Class != ClassFlash && d.Class != ClassDisk:
			return fillcast.ConfigErrorf("cache", "Dirs", "%s: class %q: want %s or %s", d.Path, d.Class, ClassFlash, ClassDisk)
		}
		seen[p] = true
	}
	return c.validateClasses()
}

// validateClasses refuses a directory without a class beside one of
// ClassDisk: it would be flash by default, which is more likely a
// forgotten class than a choice.
func (c Config) validateClasses() error {
	var disk, unnamed string
	for _, d := range c.Dirs {
		switch d.Class {
		case ClassDisk:
			disk = d.Path
		case "":
			unnamed = d.Path
		}
	}
	if disk != "" && unnamed != "" {
		return fillcast.ConfigErrorf("cache", "Dirs", "%s has no class while %s is %s: name the class (%s or %s) of every directory when any is %s",
			unnamed, disk, ClassDisk, ClassFlash, ClassDisk, ClassDisk)
	}
	return nil
}

// needsDiskBytes reports whether a directory takes DiskBytes as its
// budget.
func (c Config) needsDiskBytes() bool {
	if len(c.Dirs) == 0 {
		return true
	}
	for _, d := range c.Dirs {
		if d.Bytes == 0 {
			return true
		}
	}
	return false
}

// withDefaults fills the zero fields, and Dirs from Dir; c has passed
// Validate.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.MaxMemObject = cmp.Or(c.MaxMemObject, d.MaxMemObject)
	c.MaxSpoolBytes = cmp.Or(c.MaxSpoolBytes, d.MaxSpoolBytes)
	c.ScrubEvery = cmp.Or(c.ScrubEvery, d.ScrubEvery)
	c.VerifyAge = cmp.Or(c.VerifyAge, d.VerifyAge)
	c.MoveRate = cmp.Or(c.MoveRate, d.MoveRate)
	c.Movers = cmp.Or(c.Movers, d.Movers)
	if c.Now == nil {
		c.Now = time.Now
	}
	if len(c.Dirs) == 0 {
		c.Dirs = []DirConfig{{Path: c.Dir}}
	}
	dirs := make([]DirConfig, len(c.Dirs))
	for i, dc := range c.Dirs {
		dirs[i] = DirConfig{Path: filepath.Clean(dc.Path), Bytes: cmp.Or(dc.Bytes, c.DiskBytes), Class: cmp.Or(dc.Class, ClassFlash)}
	}
	c.Dirs = dirs
	return c
}
