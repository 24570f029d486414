package main

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fillcast/fillcast/appliance/cache"
)

// TestCacheDirFlag: --cache-dir takes DIR[:CLASS][:SIZE], repeated on the
// command line or comma-separated (as an environment variable or a config
// file gives it), and refuses a bad size or class with the form it wants.
func TestCacheDirFlag(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "appliance.conf")
	if err := os.WriteFile(conf, []byte("cache-dir /ssd0:800GiB, /hdd0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		want    cacheDirs
		wantErr string
	}{
		{"one directory", []string{"--cache-dir", "/var/cache/fillcast"}, cacheDirs{{Path: "/var/cache/fillcast"}}, ""},
		{"repeated, with budgets", []string{"--cache-dir", "/ssd0:800GiB", "--cache-dir", "/hdd0:8TiB"},
			cacheDirs{{Path: "/ssd0", Bytes: 800 << 30}, {Path: "/hdd0", Bytes: 8 << 40}}, ""},
		{"comma-separated", []string{"--cache-dir", "/a:1GiB,/b"}, cacheDirs{{Path: "/a", Bytes: 1 << 30}, {Path: "/b"}}, ""},
		{"config file", []string{"--config", conf}, cacheDirs{{Path: "/ssd0", Bytes: 800 << 30}, {Path: "/hdd0"}}, ""},
		{"bad size", []string{"--cache-dir", "/a:lots"}, nil, `bad size "lots"`},
		{"zero size", []string{"--cache-dir", "/a:0"}, nil, `bad size "0"`},
		{"no path", []string{"--cache-dir", ":1GiB"}, nil, "no directory: want DIR[:CLASS][:SIZE]"},
		{"classes and budgets", []string{"--cache-dir", "/ssd0:flash:800GiB", "--cache-dir", "/hdd0:disk:8TiB,/hdd1:disk"},
			cacheDirs{{Path: "/ssd0", Class: cache.ClassFlash, Bytes: 800 << 30}, {Path: "/hdd0", Class: cache.ClassDisk, Bytes: 8 << 40},
				{Path: "/hdd1", Class: cache.ClassDisk}}, ""},
		{"bad class", []string{"--cache-dir", "/a:nvme:1GiB"}, nil, `bad class "nvme": the class is flash or disk`},
		{"neither class nor size", []string{"--cache-dir", "/a:nvme"}, nil, `bad size "nvme" (or class: flash or disk)`},
		{"class without a path", []string{"--cache-dir", ":disk"}, nil, "no directory"},
		{"too many parts", []string{"--cache-dir", "/a:disk:1GiB:2GiB"}, nil, "too many parts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFlagSet("appliance", "", io.Discard)
			var got cacheDirs
			fs.Var(&got, "cache-dir", "")
			err := parseFlags(fs, tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// FuzzCacheDirFlag: what --cache-dir accepts is directories with a path,
// a class of flash, disk or none, and a budget of 0 (none) or more, which
// print back to a value that reads the same; what it refuses, it refuses
// naming the form it wants.
func FuzzCacheDirFlag(f *testing.F) {
	for _, s := range []string{"/var/cache/fillcast", "/ssd0:800GiB", "/ssd0:flash:800GiB,/hdd0:disk:8TiB", "/a:disk", "/a:flash:",
		":disk", "/a:nvme:1GiB", "/a::1GiB", "/a:disk:1:2", "/a:0", "/a:disk:-1", " /a , /b:disk ", ",", "/a:1.5 GiB", "/a:flash:flash", "/a:disk:15.99EiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var got cacheDirs
		if err := got.Set(s); err != nil {
			if !strings.Contains(err.Error(), cacheDirForm) {
				t.Fatalf("Set(%q) error %q does not give the form", s, err)
			}
			return
		}
		for _, d := range got {
			if d.Path == "" || d.Bytes < 0 || d.Class != "" && d.Class != cache.ClassFlash && d.Class != cache.ClassDisk {
				t.Fatalf("Set(%q) = %+v", s, got)
			}
		}
		var again cacheDirs
		if err := again.Set(got.String()); err != nil {
			t.Fatalf("Set(%q) prints as %q, which reads back as %v", s, got.String(), err)
		}
		if again.String() != got.String() || len(again) != len(got) {
			t.Fatalf("Set(%q) prints as %q, which reads back as %q", s, got.String(), again.String())
		}
		for i := range got {
			if again[i].Path != got[i].Path || again[i].Class != got[i].Class {
				t.Fatalf("Set(%q) = %+v reads back as %+v", s, got, again)
			}
		}
	})
}
