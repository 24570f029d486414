package main

import (
	"slices"
	"testing"
)

func TestMixCycle(t *testing.T) {
	const (
		P = playback
		S = search
		R = recommendations
		E = events
	)
	for _, tc := range []struct {
		name, mix string
		want      []class
	}{
		{"demo", "playback=60,search=20,recommendations=10,events=10", []class{P, S, P, P, R, P, E, P, S, P}},
		{"percent signs", "playback=50%,search=50%", []class{P, S}},
		{"playback only", "playback=1", []class{P}},
		{"zero weight", "playback=2,search=0,events=1", []class{P, E, P}},
		{"order of the flag", "events=1,playback=1", []class{P, E}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parseMix(tc.mix)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.cycle(); !slices.Equal(got, tc.want) {
				t.Errorf("cycle of %q = %v, want %v", tc.mix, got, tc.want)
			}
		})
	}
}

func TestParseMixErrors(t *testing.T) {
	for _, s := range []string{"", "playback", "playback=x", "video=10", "playback=-1", "playback=0", "playback=1,playback=2"} {
		if _, err := parseMix(s); err == nil {
			t.Errorf("parseMix(%q): no error", s)
		}
	}
}

func TestClassOf(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want class
		ok   bool
	}{
		{"http://127.0.0.1:1/v1/playback/t01?protocol=hls&stream=s", playback, true},
		{"http://127.0.0.1:1/v1/search?q=harbor", search, true},
		{"http://127.0.0.1:1/v1/recommendations", recommendations, true},
		{"http://127.0.0.1:1/v1/events", events, true},
		{"http://127.0.0.1:1/healthz", 0, false},
	} {
		if got, ok := classOf(tc.url); got != tc.want || ok != tc.ok {
			t.Errorf("classOf(%q) = %v, %v; want %v, %v", tc.url, got, ok, tc.want, tc.ok)
		}
	}
}
