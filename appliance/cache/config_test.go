package cache

import (
	"errors"
	"testing"

	"github.com/fillcast/fillcast"
)

// TestConfigDirs: Dir or Dirs, each directory once, a budget for each
// (its own or DiskBytes).
func TestConfigDirs(t *testing.T) {
	tests := []struct {
		name  string
		tweak func(*Config)
		field string // "" when valid
	}{
		{"one Dir", func(c *Config) { c.Dir = "/c" }, ""},
		{"Dirs with DiskBytes", func(c *Config) { c.Dirs = []DirConfig{{Path: "/a"}, {Path: "/b"}} }, ""},
		{"Dirs with their own budgets", func(c *Config) {
			c.DiskBytes = 0
			c.Dirs = []DirConfig{{Path: "/a", Bytes: 1 << 30}, {Path: "/b", Bytes: 2 << 30}}
		}, ""},
		{"neither", func(c *Config) {}, "Dir"},
		{"both", func(c *Config) { c.Dir, c.Dirs = "/c", []DirConfig{{Path: "/a"}} }, "Dirs"},
		{"a directory without a budget", func(c *Config) {
			c.DiskBytes = 0
			c.Dirs = []DirConfig{{Path: "/a", Bytes: 1 << 30}, {Path: "/b"}}
		}, "DiskBytes"},
		{"a directory twice", func(c *Config) { c.Dirs = []DirConfig{{Path: "/a"}, {Path: "/a/"}} }, "Dirs"},
		{"an empty path", func(c *Config) { c.Dirs = []DirConfig{{Path: "/a"}, {}} }, "Dirs"},
		{"a negative budget", func(c *Config) { c.Dirs = []DirConfig{{Path: "/a", Bytes: -1}} }, "Dirs"},
		{"a negative scrub rate", func(c *Config) { c.Dir, c.ScrubRate = "/c", -1 }, "ScrubRate"},
		{"flash and disk classes", func(c *Config) {
			c.Dirs = []DirConfig{{Path: "/ssd0", Class: ClassFlash}, {Path: "/hdd0", Class: ClassDisk}, {Path: "/hdd1", Class: ClassDisk}}
		}, ""},
		{"one class, unnamed", func(c *Config) { c.Dirs = []DirConfig{{Path: "/a"}, {Path: "/b", Class: ClassFlash}} }, ""},
		{"disk class only", func(c *Config) { c.Dirs = []DirConfig{{Path: "/hdd0", Class: ClassDisk}} }, ""},
		{"an unknown class", func(c *Config) { c.Dirs = []DirConfig{{Path: "/a", Class: "nvme"}} }, "Dirs"},
		{"an unnamed class beside disk", func(c *Config) { c.Dirs = []DirConfig{{Path: "/a"}, {Path: "/b", Class: ClassDisk}} }, "Dirs"},
		{"a negative move rate", func(c *Config) { c.Dir, c.MoveRate = "/c", -1 }, "MoveRate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.DiskBytes = 1 << 30
			tt.tweak(&c)
			err := c.Validate()
			var ce *fillcast.ConfigError
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("got %v, want valid", err)
			case tt.field != "" && (!errors.As(err, &ce) || ce.Field != tt.field):
				t.Errorf("got %v, want an error in %s", err, tt.field)
			}
		})
	}
}
