package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/poll"
)

func fetched(b []byte) *Fetched {
	return &Fetched{Meta: Meta{Size: int64(len(b))}, Body: io.NopCloser(bytes.NewReader(b))}
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func TestStoreChecksAndPinning(t *testing.T) {
	t.Parallel()
	src := newSource()
	cfg := DefaultConfig()
	cfg.Dir, cfg.DiskBytes = t.TempDir(), 1<<20
	c, err := New(cfg, src, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	good := randBytes(t, 100_000)
	if _, err := c.Store(context.Background(), "t1/a.m4s", fetched(good), sum(good)); err != nil {
		t.Fatal(err)
	}
	if !c.Has("t1/a.m4s") {
		t.Fatal("stored object missing")
	}
	bad := randBytes(t, 1000)
	if _, err := c.Store(context.Background(), "t1/b.m4s", fetched(bad), sum(good)); !errors.Is(err, ErrChecksum) || c.Has("t1/b.m4s") {
		t.Errorf("mismatching checksum: err %v, stored %v", err, c.Has("t1/b.m4s"))
	}
	short := &Fetched{Meta: Meta{Size: 2000}, Body: io.NopCloser(bytes.NewReader(bad))}
	if _, err := c.Store(context.Background(), "t1/c.m4s", short, ""); err == nil || c.Has("t1/c.m4s") {
		t.Errorf("short body: err %v, stored %v", err, c.Has("t1/c.m4s"))
	}

	// Pinned objects survive a flood of pull-through traffic that is ten
	// times the disk budget; unpinned they become evictable again.
	c.Pin(map[string]bool{"t1/a.m4s": true})
	for i := range 100 {
		k := fmt.Sprintf("t2/seg-%03d.m4s", i)
		src.put(k, randBytes(t, 100_000))
		h, err := c.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		read(t, h)
		poll.Until(t, 10*time.Second, "the fill to finish", func() bool { return c.Stats().FillsInFlight == 0 })
	}
	if !c.Has("t1/a.m4s") {
		t.Fatal("pinned object was evicted by pull-through traffic")
	}
	if s := c.Stats(); s.DiskUsed > cfg.DiskBytes {
		t.Errorf("disk used %d over budget %d", s.DiskUsed, cfg.DiskBytes)
	}
	// Unpinned, it gives way to 20 new objects each requested more often
	// than it was (the policy keeps an object against ones requested as
	// rarely).
	c.Pin(nil)
	for i := 100; i < 120; i++ {
		k := fmt.Sprintf("t3/seg-%03d.m4s", i)
		src.put(k, randBytes(t, 100_000))
		for range 3 {
			h, err := c.Get(context.Background(), k)
			if err != nil {
				t.Fatal(err)
			}
			read(t, h)
			poll.Until(t, 10*time.Second, "the fill to finish", func() bool { return c.Stats().FillsInFlight == 0 })
		}
	}
	if c.Has("t1/a.m4s") {
		t.Error("an unpinned object outlived 20 new ones requested more often in a full cache")
	}
}
