package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/internal/storecheck"
)

// ttl is the suite's stream lease TTL.
const ttl = time.Minute

// streams checks the account's leases live at now.
func (f *fixture) streams(what, account string, now time.Time, want ...accounts.Stream) {
	f.t.Helper()
	got, err := f.s.Streams(f.ctx, account, now, ttl)
	storecheck.OK(f.t, "Streams", err)
	storecheck.Same(f.t, what, got, want)
}

func testStreamLimit(t *testing.T, f *fixture) {
	f.withAccount("acct-1")
	f.withAccount("acct-2")
	f.streams("Streams of an account without any", "acct-1", at(0))
	s1, s2, s3 := stream("s1", "acct-1", 0), stream("s2", "acct-1", 1), stream("s3", "acct-1", 2)
	storecheck.OK(t, "AcquireStream 1 of 2", f.s.AcquireStream(f.ctx, s1, 2, ttl))
	storecheck.OK(t, "AcquireStream 2 of 2", f.s.AcquireStream(f.ctx, s2, 2, ttl))
	storecheck.WantErr(t, "AcquireStream 3 of 2", f.s.AcquireStream(f.ctx, s3, 2, ttl), accounts.ErrLimit)
	f.streams("Streams after a refused acquire", "acct-1", at(2), s1, s2)
	// Another account's leases count apart, even of the same ids.
	storecheck.OK(t, "AcquireStream of another account", f.s.AcquireStream(f.ctx, stream("s3", "acct-2", 2), 2, ttl))
	storecheck.OK(t, "AcquireStream of another account, same id", f.s.AcquireStream(f.ctx, stream("s1", "acct-2", 2), 2, ttl))
	f.streams("Streams of acct-1 after acct-2's", "acct-1", at(2), s1, s2)
	storecheck.OK(t, "AcquireStream 3 of 3", f.s.AcquireStream(f.ctx, s3, 3, ttl))
	f.streams("Streams after a 3rd of 3", "acct-1", at(2), s1, s2, s3)
}

func testStreamReacquire(t *testing.T, f *fixture) {
	f.withAccount("acct-1")
	s1, s2 := stream("s1", "acct-1", 0), stream("s2", "acct-1", 10)
	storecheck.OK(t, "AcquireStream", f.s.AcquireStream(f.ctx, s1, 2, ttl))
	storecheck.OK(t, "AcquireStream", f.s.AcquireStream(f.ctx, s2, 2, ttl))

	// At the limit, acquiring a live lease's id again renews it, moves it
	// to another title and profile, keeps its start, takes no slot.
	again := accounts.Stream{ID: "s1", Account: "acct-1", Profile: "acct-1-p2", Title: "title-2", Started: at(30), Renewed: at(30)}
	storecheck.OK(t, "AcquireStream of a live lease's id at the limit", f.s.AcquireStream(f.ctx, again, 2, ttl))
	renewed := again
	renewed.Started = s1.Started
	f.streams("Streams after re-acquiring s1", "acct-1", at(30), renewed, s2)
	// Renewed at 30 s: s1 outlives s2 (renewed at 10 s).
	f.streams("Streams when only the re-acquired lease is live", "acct-1", at(80), renewed)
	storecheck.WantErr(t, "AcquireStream of a 3rd id", f.s.AcquireStream(f.ctx, stream("s3", "acct-1", 30), 2, ttl), accounts.ErrLimit)

	// The id of an expired lease takes a new lease, with a new start.
	late := stream("s2", "acct-1", 200)
	late.Title = "title-3"
	storecheck.OK(t, "AcquireStream of an expired lease's id", f.s.AcquireStream(f.ctx, late, 2, ttl))
	f.streams("Streams after re-acquiring an expired lease", "acct-1", at(200), late)
}

func testStreamExpired(t *testing.T, f *fixture) {
	f.withAccount("acct-1")
	s1, s2 := stream("s1", "acct-1", 0), stream("s2", "acct-1", 30)
	storecheck.OK(t, "AcquireStream", f.s.AcquireStream(f.ctx, s1, 2, ttl))
	storecheck.OK(t, "AcquireStream", f.s.AcquireStream(f.ctx, s2, 2, ttl))
	f.streams("Streams just before s1 expires", "acct-1", at(59), s1, s2)
	f.streams("Streams when s1 expires (Renewed+ttl = now)", "acct-1", at(60), s2)

	// At 60 s s1 no longer counts: a new lease fits, and then no other.
	s3 := stream("s3", "acct-1", 60)
	storecheck.WantErr(t, "AcquireStream at the limit before s1 expires", f.s.AcquireStream(f.ctx, stream("s4", "acct-1", 59), 2, ttl), accounts.ErrLimit)
	storecheck.OK(t, "AcquireStream when s1 has expired", f.s.AcquireStream(f.ctx, s3, 2, ttl))
	storecheck.WantErr(t, "AcquireStream beyond the limit", f.s.AcquireStream(f.ctx, stream("s4", "acct-1", 60), 2, ttl), accounts.ErrLimit)
	f.streams("Streams after replacing an expired lease", "acct-1", at(60), s2, s3)
	f.streams("Streams when all have expired", "acct-1", at(200))
}

func testRenewStream(t *testing.T, f *fixture) {
	f.withAccount("acct-1")
	f.withAccount("acct-2")
	s1, s2 := stream("s1", "acct-1", 0), stream("s2", "acct-1", 0)
	storecheck.OK(t, "AcquireStream", f.s.AcquireStream(f.ctx, s1, 2, ttl))
	storecheck.OK(t, "AcquireStream", f.s.AcquireStream(f.ctx, s2, 2, ttl))
	storecheck.OK(t, "AcquireStream acct-2", f.s.AcquireStream(f.ctx, stream("s9", "acct-2", 0), 2, ttl))

	storecheck.OK(t, "RenewStream of a live lease", f.s.RenewStream(f.ctx, "acct-1", "s1", at(50), ttl))
	renewed := s1
	renewed.Renewed = at(50)
	f.streams("Streams after RenewStream", "acct-1", at(50), renewed, s2)
	f.streams("Streams when only the renewed lease is live", "acct-1", at(100), renewed)

	for _, c := range []struct {
		name, account, id string
		at                time.Time
	}{
		{"expired (Renewed+ttl = at)", "acct-1", "s2", at(60)},
		{"long expired", "acct-1", "s2", at(500)},
		{"of another account", "acct-1", "s9", at(10)},
		{"of another account, named as its own", "acct-2", "s1", at(60)},
		{"unknown", "acct-1", "s7", at(60)},
		{"of an unknown account", "acct-9", "s1", at(60)},
	} {
		storecheck.WantErr(t, "RenewStream "+c.name, f.s.RenewStream(f.ctx, c.account, c.id, c.at, ttl), accounts.ErrNotFound)
	}
	storecheck.OK(t, "EndStream", f.s.EndStream(f.ctx, "acct-1", "s1"))
	storecheck.WantErr(t, "RenewStream of an ended lease", f.s.RenewStream(f.ctx, "acct-1", "s1", at(70), ttl), accounts.ErrNotFound)
	f.streams("Streams of acct-2, untouched", "acct-2", at(10), stream("s9", "acct-2", 0))
}

func testEndStream(t *testing.T, f *fixture) {
	f.withAccount("acct-1")
	f.withAccount("acct-2")
	s1, s2 := stream("s1", "acct-1", 0), stream("s2", "acct-1", 1)
	storecheck.OK(t, "AcquireStream", f.s.AcquireStream(f.ctx, s1, 2, ttl))
	storecheck.OK(t, "AcquireStream", f.s.AcquireStream(f.ctx, s2, 2, ttl))
	storecheck.WantErr(t, "EndStream of another account", f.s.EndStream(f.ctx, "acct-2", "s1"), accounts.ErrNotFound)
	storecheck.WantErr(t, "EndStream of an unknown lease", f.s.EndStream(f.ctx, "acct-1", "s7"), accounts.ErrNotFound)

	storecheck.OK(t, "EndStream", f.s.EndStream(f.ctx, "acct-1", "s1"))
	f.streams("Streams after EndStream", "acct-1", at(2), s2)
	storecheck.WantErr(t, "EndStream again", f.s.EndStream(f.ctx, "acct-1", "s1"), accounts.ErrNotFound)
	s3 := stream("s3", "acct-1", 2)
	storecheck.OK(t, "AcquireStream into the freed slot", f.s.AcquireStream(f.ctx, s3, 2, ttl))
	storecheck.WantErr(t, "AcquireStream beyond the limit", f.s.AcquireStream(f.ctx, stream("s4", "acct-1", 2), 2, ttl), accounts.ErrLimit)
	f.streams("Streams after ending and acquiring", "acct-1", at(2), s2, s3)
}

func testStreamsOrder(t *testing.T, f *fixture) {
	f.withAccount("acct-1")
	// Acquired out of order; b and a start together; z has expired.
	z := stream("z", "acct-1", 0)
	later, b, a := stream("later", "acct-1", 50), stream("b", "acct-1", 40), stream("a", "acct-1", 40)
	for _, s := range []accounts.Stream{z, later, b, a} {
		storecheck.OK(t, "AcquireStream "+s.ID, f.s.AcquireStream(f.ctx, s, 5, ttl))
	}
	f.streams("Streams, by Started then id, live only", "acct-1", at(60), a, b, later)
	got, err := f.s.Streams(f.ctx, "acct-1", at(60), 2*ttl)
	storecheck.OK(t, "Streams", err)
	storecheck.Same(t, "Streams with twice the ttl", got, []accounts.Stream{z, a, b, later})
}

func testStreamsConcurrent(t *testing.T, f *fixture) {
	f.withAccount("acct-1")
	const n, max = 20, 2
	won := storecheck.Race(t, "AcquireStream racing", n, accounts.ErrLimit, func(i int) error {
		return f.s.AcquireStream(f.ctx, stream(fmt.Sprintf("s%02d", i), "acct-1", 0), max, ttl)
	})
	if won != max {
		t.Errorf("AcquireStream from %d goroutines with max %d: %d succeeded, want %d", n, max, won, max)
	}
	got, err := f.s.Streams(f.ctx, "acct-1", at(0), ttl)
	storecheck.OK(t, "Streams", err)
	if len(got) != max {
		t.Errorf("Streams after the race: got %d leases, want %d", len(got), max)
	}
}
