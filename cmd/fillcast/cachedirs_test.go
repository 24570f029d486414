package main

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestCacheDirFlag: --cache-dir takes DIR[:SIZE], repeated on the command
// line or comma-separated (as an environment variable or a config file
// gives it), and refuses a bad size with the form it wants.
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
		{"no path", []string{"--cache-dir", ":1GiB"}, nil, "want DIR or DIR:SIZE"},
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
