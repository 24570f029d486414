package contentsteering

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestAppendJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		m    Manifest
		want string
	}{
		{
			name: "appliances and origin",
			m: Manifest{
				TTL:       10 * time.Second,
				ReloadURI: "/v1/steering/t1?session=abc",
				Pathways: []Pathway{
					{ID: "oca-1", Host: "10.0.0.1:8080"},
					{ID: "oca-2", Host: "10.0.0.2:8080"},
					{ID: "origin", Host: "origin.example"},
					{ID: "."},
				},
			},
			want: `{"VERSION":1,"TTL":10,"RELOAD-URI":"/v1/steering/t1?session=abc",` +
				`"PATHWAY-PRIORITY":["oca-1","oca-2","origin","."],"PATHWAY-CLONES":[` +
				`{"BASE-ID":".","ID":"oca-1","URI-REPLACEMENT":{"HOST":"10.0.0.1:8080"}},` +
				`{"BASE-ID":".","ID":"oca-2","URI-REPLACEMENT":{"HOST":"10.0.0.2:8080"}},` +
				`{"BASE-ID":".","ID":"origin","URI-REPLACEMENT":{"HOST":"origin.example"}}]}`,
		},
		{
			name: "defaults, no clones",
			m:    Manifest{Pathways: []Pathway{{ID: "cdn-a"}, {ID: "cdn-b"}}},
			want: `{"VERSION":1,"TTL":300,"PATHWAY-PRIORITY":["cdn-a","cdn-b"]}`,
		},
		{
			name: "ttl rounds up, custom base",
			m:    Manifest{TTL: 1500 * time.Millisecond, BaseID: "main", Pathways: []Pathway{{ID: "x", Host: "h"}}},
			want: `{"VERSION":1,"TTL":2,"PATHWAY-PRIORITY":["x"],"PATHWAY-CLONES":[{"BASE-ID":"main","ID":"x","URI-REPLACEMENT":{"HOST":"h"}}]}`,
		},
		{
			name: "reload uri escaped",
			m:    Manifest{ReloadURI: "/s?q=\"a\\b\"", Pathways: []Pathway{{ID: "a"}}},
			want: `{"VERSION":1,"TTL":300,"RELOAD-URI":"/s?q=\"a\\b\"","PATHWAY-PRIORITY":["a"]}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.m.AppendJSON(nil)
			if err != nil {
				t.Fatalf("AppendJSON: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("AppendJSON =\n%s\nwant\n%s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Errorf("AppendJSON gave invalid JSON: %s", got)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := []Pathway{{ID: "a", Host: "h:1"}}
	tests := []struct {
		name string
		m    Manifest
	}{
		{"no pathways", Manifest{}},
		{"negative ttl", Manifest{TTL: -time.Second, Pathways: ok}},
		{"bad id", Manifest{Pathways: []Pathway{{ID: "a b"}}}},
		{"empty id", Manifest{Pathways: []Pathway{{ID: ""}}}},
		{"duplicate id", Manifest{Pathways: []Pathway{{ID: "a"}, {ID: "a", Host: "h"}}}},
		{"clone of itself", Manifest{Pathways: []Pathway{{ID: ".", Host: "h"}}}},
		{"host with scheme", Manifest{Pathways: []Pathway{{ID: "a", Host: "http://h"}}}},
		{"host with path", Manifest{Pathways: []Pathway{{ID: "a", Host: "h/x"}}}},
		{"bad base", Manifest{BaseID: "a/b", Pathways: ok}},
		{"bad reload uri", Manifest{ReloadURI: "http://[::1", Pathways: ok}},
		{"reload uri not utf-8", Manifest{ReloadURI: "/\xff", Pathways: ok}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.m.Validate(); !errors.Is(err, ErrManifest) {
				t.Errorf("Validate = %v; want ErrManifest", err)
			}
			if _, err := tc.m.AppendJSON(nil); !errors.Is(err, ErrManifest) {
				t.Errorf("AppendJSON error = %v; want ErrManifest", err)
			}
		})
	}
}

// wire is the manifest as a player's JSON parser sees it.
type wire struct {
	Version  int      `json:"VERSION"`
	TTL      int64    `json:"TTL"`
	Reload   string   `json:"RELOAD-URI"`
	Priority []string `json:"PATHWAY-PRIORITY"`
	Clones   []struct {
		Base string `json:"BASE-ID"`
		ID   string `json:"ID"`
		Repl struct {
			Host string `json:"HOST"`
		} `json:"URI-REPLACEMENT"`
	} `json:"PATHWAY-CLONES"`
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("/v1/steering/t1", "a", "h:1", "b", "", int64(5))
	f.Add("", ".", "x", "y", "10.0.0.1", int64(0))
	f.Add("\x00\"\\\u2028", "a-b_c.d", "[::1]:80", "o", "o.example", int64(999999))
	f.Fuzz(func(t *testing.T, reload, id1, host1, id2, host2 string, ttl int64) {
		m := Manifest{TTL: time.Duration(ttl) * time.Millisecond, ReloadURI: reload,
			Pathways: []Pathway{{ID: id1, Host: host1}, {ID: id2, Host: host2}}}
		out, err := m.AppendJSON(nil)
		if err != nil {
			if !errors.Is(err, ErrManifest) {
				t.Fatalf("error %v does not wrap ErrManifest", err)
			}
			return
		}
		var w wire
		if err := json.Unmarshal(out, &w); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, out)
		}
		if w.Version != 1 || w.TTL < 1 || w.Reload != reload || !reflect.DeepEqual(w.Priority, []string{id1, id2}) {
			t.Fatalf("decoded %+v from %s; want reload %q and priority [%q %q]", w, out, reload, id1, id2)
		}
		var hosts []string
		for _, c := range w.Clones {
			if c.Base != DefaultBaseID {
				t.Fatalf("clone %+v: base %q; want %q", c, c.Base, DefaultBaseID)
			}
			hosts = append(hosts, c.Repl.Host)
		}
		var want []string
		for _, h := range []string{host1, host2} {
			if h != "" {
				want = append(want, h)
			}
		}
		if !reflect.DeepEqual(hosts, want) {
			t.Fatalf("clone hosts %q; want %q", hosts, want)
		}
	})
}
