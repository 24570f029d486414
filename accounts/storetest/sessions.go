package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/internal/storecheck"
)

// never is an expired bound that no session of the suite is before.
var never = T0.Add(-24 * time.Hour)

func testSessions(t *testing.T, f *fixture) {
	f.withAccount("acct-1")
	s1, s2 := f.session("sess-1", "acct-1", 0), f.session("sess-2", "acct-1", 10)
	storecheck.OK(t, "CreateSession", f.s.CreateSession(f.ctx, s1, 10, never))
	storecheck.OK(t, "CreateSession", f.s.CreateSession(f.ctx, s2, 10, never))
	for _, want := range []accounts.Session{s1, s2} {
		got, err := f.s.Session(f.ctx, want.ID)
		storecheck.OK(t, "Session", err)
		storecheck.Same(t, "Session "+want.ID, got, want)
	}
	_, err := f.s.Session(f.ctx, "sess-9")
	storecheck.WantErr(t, "Session of an unknown id", err, accounts.ErrNotFound)

	storecheck.OK(t, "DeleteSession", f.s.DeleteSession(f.ctx, s1.ID))
	_, err = f.s.Session(f.ctx, s1.ID)
	storecheck.WantErr(t, "Session after DeleteSession", err, accounts.ErrNotFound)
	storecheck.WantErr(t, "DeleteSession again", f.s.DeleteSession(f.ctx, s1.ID), accounts.ErrNotFound)
	got, err := f.s.Session(f.ctx, s2.ID)
	storecheck.OK(t, "Session of the other session", err)
	storecheck.Same(t, "Session sess-2 after sess-1 was deleted", got, s2)
}

func testTouchSession(t *testing.T, f *fixture) {
	f.withAccount("acct-1")
	s := f.session("sess-1", "acct-1", 0)
	storecheck.OK(t, "CreateSession", f.s.CreateSession(f.ctx, s, 10, never))
	for _, c := range []struct {
		name     string
		at, want time.Time
	}{
		{"forward", at(3600), at(3600)},
		{"backward", at(1800), at(3600)},
		{"to the same time", at(3600), at(3600)},
		{"forward again", at(7200), at(7200)},
	} {
		storecheck.OK(t, "TouchSession "+c.name, f.s.TouchSession(f.ctx, s.ID, c.at))
		got, err := f.s.Session(f.ctx, s.ID)
		storecheck.OK(t, "Session", err)
		want := s
		want.LastSeen = c.want
		storecheck.Same(t, "Session after TouchSession "+c.name, got, want)
	}
}

func testDeleteSessions(t *testing.T, f *fixture) {
	f.withAccount("acct-1")
	f.withAccount("acct-2")
	for i := range 3 {
		storecheck.OK(t, "CreateSession", f.s.CreateSession(f.ctx, f.session(fmt.Sprintf("a-%d", i), "acct-1", i), 10, never))
	}
	other := f.session("b-0", "acct-2", 0)
	storecheck.OK(t, "CreateSession", f.s.CreateSession(f.ctx, other, 10, never))

	storecheck.OK(t, "DeleteSessions", f.s.DeleteSessions(f.ctx, "acct-1"))
	for i := range 3 {
		_, err := f.s.Session(f.ctx, fmt.Sprintf("a-%d", i))
		storecheck.WantErr(t, "Session after DeleteSessions", err, accounts.ErrNotFound)
	}
	got, err := f.s.Session(f.ctx, other.ID)
	storecheck.OK(t, "Session of another account", err)
	storecheck.Same(t, "another account's session after DeleteSessions", got, other)
	storecheck.OK(t, "DeleteSessions of an account without sessions", f.s.DeleteSessions(f.ctx, "acct-1"))

	// The account can sign in again.
	storecheck.OK(t, "CreateSession after DeleteSessions", f.s.CreateSession(f.ctx, f.session("a-9", "acct-1", 9), 10, never))
}

func testCreateSessionDropsExpired(t *testing.T, f *fixture) {
	f.withAccount("acct-1")
	f.withAccount("acct-2")
	old, boundary, recent := f.session("old", "acct-1", 0), f.session("boundary", "acct-1", 1800), f.session("recent", "acct-1", 3600)
	otherOld := f.session("other-old", "acct-2", 0)
	for _, s := range []accounts.Session{old, boundary, recent, otherOld} {
		storecheck.OK(t, "CreateSession "+s.ID, f.s.CreateSession(f.ctx, s, 10, never))
	}
	// Sessions seen before at(1800) have expired; one seen at it has not.
	storecheck.OK(t, "CreateSession", f.s.CreateSession(f.ctx, f.session("new", "acct-1", 7200), 10, at(1800)))
	for _, c := range []struct {
		id   string
		kept bool
	}{{"old", false}, {"boundary", true}, {"recent", true}, {"new", true}, {"other-old", true}} {
		_, err := f.s.Session(f.ctx, c.id)
		if c.kept {
			storecheck.OK(t, "Session "+c.id+", not expired or another account's", err)
		} else {
			storecheck.WantErr(t, "Session "+c.id+", expired", err, accounts.ErrNotFound)
		}
	}
}

func testCreateSessionDropsLeastRecentlySeen(t *testing.T, f *fixture) {
	f.withAccount("acct-1")
	f.withAccount("acct-2")
	for i := range 3 {
		storecheck.OK(t, "CreateSession", f.s.CreateSession(f.ctx, f.session(fmt.Sprintf("s%d", i), "acct-1", 60*i), 3, never))
	}
	storecheck.OK(t, "CreateSession acct-2", f.s.CreateSession(f.ctx, f.session("other", "acct-2", 0), 3, never))
	// s0 was created first but seen last: s1 is the least recently seen.
	storecheck.OK(t, "TouchSession", f.s.TouchSession(f.ctx, "s0", at(600)))
	storecheck.OK(t, "CreateSession beyond max", f.s.CreateSession(f.ctx, f.session("s3", "acct-1", 900), 3, never))
	kept := func(what string, want map[string]bool) {
		t.Helper()
		for id, want := range want {
			_, err := f.s.Session(f.ctx, id)
			if want {
				storecheck.OK(t, what+": Session "+id, err)
			} else {
				storecheck.WantErr(t, what+": Session "+id, err, accounts.ErrNotFound)
			}
		}
	}
	kept("after a 4th session with max 3", map[string]bool{"s0": true, "s1": false, "s2": true, "s3": true, "other": true})

	// A lower max drops as many as it takes.
	storecheck.OK(t, "CreateSession with max 2", f.s.CreateSession(f.ctx, f.session("s4", "acct-1", 1000), 2, never))
	kept("after a session with max 2", map[string]bool{"s0": false, "s2": false, "s3": true, "s4": true, "other": true})
	storecheck.OK(t, "CreateSession with max 1", f.s.CreateSession(f.ctx, f.session("s5", "acct-1", 1100), 1, never))
	kept("after a session with max 1", map[string]bool{"s3": false, "s4": false, "s5": true, "other": true})
}
