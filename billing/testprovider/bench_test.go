package testprovider_test

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/fillcast/fillcast/billing"
	"github.com/fillcast/fillcast/billing/testprovider"
)

// BenchmarkCharge measures a new charge (lock, catch up, append, fsync,
// unlock) and a lookup. The log is in b.TempDir(), so TMPDIR chooses the
// file system:
//
//	go test -run X -bench Charge ./billing/testprovider/
//	TMPDIR=/dev/shm go test -run X -bench Charge ./billing/testprovider/
func BenchmarkCharge(b *testing.B) {
	ctx := context.Background()
	setup := func(b *testing.B, providers int) ([]*testprovider.Provider, string) {
		dir := b.TempDir()
		ps := make([]*testprovider.Provider, providers)
		for i := range ps {
			ps[i] = openB(b, dir)
		}
		pm, err := ps[0].AttachCard(ctx, "acct_1", billing.Card{Number: "4242424242424242"})
		if err != nil {
			b.Fatal(err)
		}
		return ps, pm.ID
	}
	b.Run("new key", func(b *testing.B) {
		ps, pm := setup(b, 1)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := ps[0].Charge(ctx, request("k"+strconv.Itoa(i), "acct_1", pm)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("retry", func(b *testing.B) {
		ps, pm := setup(b, 1)
		r := request("k", "acct_1", pm)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ps[0].Charge(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("lookup", func(b *testing.B) {
		ps, pm := setup(b, 1)
		if _, err := ps[0].Charge(ctx, request("k", "acct_1", pm)); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, ok, err := ps[0].LookupCharge(ctx, "k"); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	// Three providers, as the three nodes of the control plane, and 16
	// goroutines charging new keys.
	b.Run("new key 3 providers 16 goroutines", func(b *testing.B) {
		ps, pm := setup(b, 3)
		var next atomic.Int64
		b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			g := next.Add(1)
			p := ps[g%3]
			for pb.Next() {
				key := "k" + strconv.FormatInt(next.Add(1), 10)
				if _, err := p.Charge(ctx, request(key, "acct_1", pm)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func openB(b *testing.B, dir string) *testprovider.Provider {
	b.Helper()
	p, err := testprovider.New(testprovider.Config{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	return p
}
