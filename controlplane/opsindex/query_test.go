package opsindex

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/controlplane/events"
)

func TestParseQuery(t *testing.T) {
	tests := []struct {
		raw   string
		want  Query
		param string // the parameter an error names; "" means valid
	}{
		{"", Query{Limit: DefaultLimit}, ""},
		{"type=error&title=t1&appliance=a1&site=s1&user=u%201&limit=20",
			Query{Type: "error", Title: "t1", Appliance: "a1", Site: "s1", User: "u 1", Limit: 20}, ""},
		{"since=15m", Query{SinceAgo: 15 * time.Minute, Limit: DefaultLimit}, ""},
		{"since=1h30m&limit=1000", Query{SinceAgo: 90 * time.Minute, Limit: 1000}, ""},
		{"since=2026-11-26T11:00:00Z", Query{Since: time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC), Limit: DefaultLimit}, ""},
		{"since=2026-11-26T12:00:00.5%2B01:00", Query{Since: time.Date(2026, 11, 26, 11, 0, 0, 5e8, time.UTC), Limit: DefaultLimit}, ""},
		{"limit=1", Query{Limit: 1}, ""},

		{"tile=t1", Query{}, `"tile"`},
		{"title=t1&title=t2", Query{}, "title"},
		{"title=", Query{}, "title"},
		{"type=pause", Query{}, "type"},
		{"type=PLAY", Query{}, "type"},
		{"title=../x", Query{}, "title"},
		{"appliance=" + strings.Repeat("a", events.MaxTextLen+1), Query{}, "appliance"},
		{"site=s%0A1", Query{}, "site"},
		{"user=%FF", Query{}, "user"},
		{"user=" + strings.Repeat("u", events.MaxUserLen+1), Query{}, "user"},
		{"since=yesterday", Query{}, "since"},
		{"since=1d", Query{}, "since"},
		{"since=-5m", Query{}, "since"},
		{"since=0s", Query{}, "since"},
		{"since=2026-11-26", Query{}, "since"},
		{"limit=0", Query{}, "limit"},
		{"limit=1001", Query{}, "limit"},
		{"limit=-1", Query{}, "limit"},
		{"limit=ten", Query{}, "limit"},
		{"limit=99999999999999999999", Query{}, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			v, err := url.ParseQuery(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseQuery(v)
			if tt.param == "" {
				if err != nil {
					t.Fatalf("ParseQuery = %v", err)
				}
				if !sameQuery(got, tt.want) {
					t.Errorf("ParseQuery = %+v, want %+v", got, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrBadQuery) {
				t.Fatalf("ParseQuery = %+v, %v; want an error wrapping ErrBadQuery", got, err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "opsindex: bad query: parameter "+tt.param+": ") {
				t.Errorf("error %q does not name parameter %s", msg, tt.param)
			}
		})
	}
}

func sameQuery(a, b Query) bool {
	as, bs := a.Since, b.Since
	a.Since, b.Since = time.Time{}, time.Time{}
	return a == b && as.Equal(bs)
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"", "type=qoe&title=t1&limit=5", "since=15m", "since=2026-11-26T11:00:00.123%2B02:00&user=x",
		"appliance=a&site=b&since=1h", "limit=0", "title=t&title=u", "since=9999-12-31T23:59:59Z", "since=1.5h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseQuery(v)
		if err != nil {
			if !errors.Is(err, ErrBadQuery) {
				t.Fatalf("error %v does not wrap ErrBadQuery", err)
			}
			return
		}
		if q.Limit < 1 || q.Limit > MaxLimit || q.SinceAgo < 0 || (q.SinceAgo > 0 && !q.Since.IsZero()) {
			t.Fatalf("ParseQuery(%q) = %+v: out of bounds", raw, q)
		}
		back, err := ParseQuery(q.Values())
		if err != nil {
			t.Fatalf("ParseQuery(%q).Values() = %v does not parse: %v", raw, q.Values(), err)
		}
		if !sameQuery(back, q) {
			t.Fatalf("round trip: %+v, want %+v", back, q)
		}
	})
}
