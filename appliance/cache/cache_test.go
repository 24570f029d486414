package cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/poll"
)

// source is an in-memory upstream. gate, when set, holds every body after
// its first half until closed; failMid cuts bodies at half with an error.
type source struct {
	mu      sync.Mutex
	objects map[string][]byte
	fetches atomic.Int64
	gate    chan struct{}
	failMid bool
	noLen   bool
}

func newSource() *source { return &source{objects: map[string][]byte{}} }

func (s *source) put(key string, b []byte) {
	s.mu.Lock()
	s.objects[key] = b
	s.mu.Unlock()
}

func (s *source) Fetch(ctx context.Context, key string) (*Fetched, error) {
	s.fetches.Add(1)
	s.mu.Lock()
	b, ok := s.objects[key]
	gate, failMid, noLen := s.gate, s.failMid, s.noLen
	s.mu.Unlock()
	if !ok {
		return nil, ErrNotFound
	}
	size := int64(len(b))
	if noLen {
		size = -1
	}
	return &Fetched{
		Meta: Meta{Size: size, ContentType: "video/iso.segment", ETag: `"v1"`},
		Body: io.NopCloser(&halfReader{ctx: ctx, b: b, gate: gate, failMid: failMid}),
	}, nil
}

type halfReader struct {
	ctx     context.Context
	b       []byte
	off     int
	gate    chan struct{}
	failMid bool
}

func (r *halfReader) Read(p []byte) (int, error) {
	half := len(r.b) / 2
	if r.off == half && r.off > 0 {
		if r.failMid {
			return 0, errors.New("connection reset by upstream")
		}
		if r.gate != nil {
			select {
			case <-r.gate:
				r.gate = nil
			case <-r.ctx.Done():
				return 0, r.ctx.Err()
			}
		}
	}
	if r.off == len(r.b) {
		return 0, io.EOF
	}
	end := len(r.b)
	if r.off < half {
		end = half
	}
	n := copy(p, r.b[r.off:end])
	r.off += n
	return n, nil
}

func randBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newCache(t *testing.T, dir string, src Source, mem int64) *Cache {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Dir, cfg.DiskBytes, cfg.MemBytes = dir, 64<<20, mem
	c, err := New(cfg, src, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// read returns the whole body behind a hit.
func read(t *testing.T, h Hit) []byte {
	t.Helper()
	if h.Body != nil {
		return h.Body
	}
	r, err := h.Stream(context.Background(), 0, h.Meta.Size)
	if err != nil {
		t.Fatal(err)
	}
	defer r.(io.Closer).Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return b
}

func TestTiers(t *testing.T) {
	t.Parallel()
	for _, mem := range []int64{0, 32 << 20} {
		t.Run(fmt.Sprintf("mem=%d", mem), func(t *testing.T) {
			t.Parallel()
			src := newSource()
			want := randBytes(t, 300_000)
			src.put("t1/720p/seg-00001.m4s", want)
			c := newCache(t, t.TempDir(), src, mem)

			h, err := c.Get(context.Background(), "t1/720p/seg-00001.m4s")
			if err != nil {
				t.Fatal(err)
			}
			if h.Tier != TierFill || !bytes.Equal(read(t, h), want) {
				t.Fatalf("first Get: tier %v, bytes differ=%v", h.Tier, !bytes.Equal(read(t, h), want))
			}
			poll.Until(t, 10*time.Second, "the fill to finish", func() bool { return c.Stats().FillsInFlight == 0 })
			if c.mem != nil {
				c.mem.c.Wait()
			}
			h, err = c.Get(context.Background(), "t1/720p/seg-00001.m4s")
			if err != nil {
				t.Fatal(err)
			}
			wantTier := TierDisk
			if mem > 0 {
				wantTier = TierMemory
			}
			if got := read(t, h); h.Tier != wantTier || !bytes.Equal(got, want) {
				t.Errorf("second Get: tier %v, want %v; bytes equal %v", h.Tier, wantTier, bytes.Equal(got, want))
			}
			if n := src.fetches.Load(); n != 1 {
				t.Errorf("upstream fetches = %d, want 1", n)
			}
			if _, err := c.Get(context.Background(), "t1/missing"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get(missing) error = %v, want ErrNotFound", err)
			}
		})
	}
}

// deadSource fails every fetch, like an origin that is down.
type deadSource struct{}

func (deadSource) Fetch(context.Context, string) (*Fetched, error) {
	return nil, errors.New("origin down")
}

func TestRestartKeepsObjectsAndDropsCorrupt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := newSource()
	objs := map[string][]byte{
		"t1/a.m4s": randBytes(t, 100_000),
		"t1/b.m4s": randBytes(t, 100_000),
		"t1/c.m4s": randBytes(t, 100_000),
	}
	c := newCache(t, dir, src, 0)
	for k, b := range objs {
		src.put(k, b)
		h, err := c.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		read(t, h)
	}
	poll.Until(t, 10*time.Second, "3 objects on disk", func() bool { return c.Stats().DiskObjects == 3 })
	c.Close()

	// Damage two files: flip a body byte of b (caught by the CRC on first
	// read) and truncate c (caught by the footer at start-up).
	flip := filepath.Join(dir, "objects", objectName("t1/b.m4s"))
	f, err := os.OpenFile(flip, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{objs["t1/b.m4s"][10] ^ 0xff}, 10)
	f.Close()
	if err := os.Truncate(filepath.Join(dir, "objects", objectName("t1/c.m4s")), 5000); err != nil {
		t.Fatal(err)
	}

	c2 := newCache(t, dir, deadSource{}, 0)
	if got := c2.Stats().DiskObjects; got != 2 {
		t.Errorf("objects after restart = %d, want 2 (torn file dropped)", got)
	}
	h, err := c2.Get(context.Background(), "t1/a.m4s")
	if err != nil {
		t.Fatalf("intact object with origin down: %v", err)
	}
	if !bytes.Equal(read(t, h), objs["t1/a.m4s"]) {
		t.Error("intact object: bytes differ")
	}
	if _, err := c2.Get(context.Background(), "t1/b.m4s"); err == nil {
		t.Error("corrupt object served; want it dropped and refetched (origin down: error)")
	}
	if _, ok := c2.Lookup("t1/b.m4s"); ok {
		t.Error("corrupt object still indexed")
	}

	// With the origin back, the dropped object is refetched whole.
	c2.Close()
	c3 := newCache(t, dir, src, 0)
	h, err = c3.Get(context.Background(), "t1/b.m4s")
	if err != nil || !bytes.Equal(read(t, h), objs["t1/b.m4s"]) {
		t.Errorf("refetch after corruption: err %v", err)
	}
}

func TestUpstreamDiesMidBodyCachesNothing(t *testing.T) {
	t.Parallel()
	for _, spoolInMemory := range []bool{true, false} {
		t.Run(fmt.Sprintf("memspool=%v", spoolInMemory), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := newSource()
			src.failMid = true
			src.put("t1/a.m4s", randBytes(t, 200_000))
			cfg := DefaultConfig()
			cfg.Dir, cfg.DiskBytes, cfg.MemBytes = dir, 64<<20, 16<<20
			if !spoolInMemory {
				cfg.MaxSpoolBytes = 1000
			}
			c, err := New(cfg, src, quietLog())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			h, err := c.Get(context.Background(), "t1/a.m4s")
			if err != nil {
				t.Fatal(err)
			}
			r, _ := h.Stream(context.Background(), 0, h.Meta.Size)
			got, err := io.ReadAll(r)
			r.(io.Closer).Close()
			if !errors.Is(err, errFillFailed) || len(got) != 100_000 {
				t.Errorf("client read %d bytes, err %v; want the first half then errFillFailed", len(got), err)
			}
			poll.Until(t, 10*time.Second, "the fill to finish", func() bool { return c.Stats().FillsInFlight == 0 })
			c.mem.c.Wait()
			if _, ok := c.Lookup("t1/a.m4s"); ok {
				t.Error("truncated object was cached")
			}
			if tmp, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(tmp) != 0 {
				t.Errorf("temporary files left: %d", len(tmp))
			}
			if s := c.Stats(); s.DiskObjects != 0 || s.FillErrors != 1 || s.StreamsCut != 1 {
				t.Errorf("stats = %+v, want 0 objects, 1 fill error and 1 stream cut", s)
			}
		})
	}
}

func TestCoalescingStreamsBeforeBodyCompletes(t *testing.T) {
	t.Parallel()
	for _, spoolInMemory := range []bool{true, false} {
		t.Run(fmt.Sprintf("memspool=%v", spoolInMemory), func(t *testing.T) {
			t.Parallel()
			src := newSource()
			want := randBytes(t, 1_500_000)
			src.put("t1/seg.m4s", want)
			src.gate = make(chan struct{})
			cfg := DefaultConfig()
			cfg.Dir, cfg.DiskBytes = t.TempDir(), 64<<20
			if !spoolInMemory {
				cfg.MaxSpoolBytes = 1000
			}
			c, err := New(cfg, src, quietLog())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()

			const clients = 64
			var wg sync.WaitGroup
			var firstHalf atomic.Int64
			errs := make(chan error, clients)
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					h, err := c.Get(context.Background(), "t1/seg.m4s")
					if err != nil {
						errs <- err
						return
					}
					r, _ := h.Stream(context.Background(), 0, h.Meta.Size)
					defer r.(io.Closer).Close()
					got := make([]byte, len(want))
					if _, err := io.ReadFull(r, got[:len(want)/2]); err != nil {
						errs <- err
						return
					}
					firstHalf.Add(1)
					if _, err := io.ReadFull(r, got[len(want)/2:]); err != nil {
						errs <- err
						return
					}
					if !bytes.Equal(got, want) {
						errs <- errors.New("bytes differ")
					}
				}()
			}
			// Every client gets the first half while the upstream still
			// holds the second: streaming, not store-and-forward.
			poll.Until(t, 10*time.Second, "every client to read the first half", func() bool { return firstHalf.Load() == clients })
			close(src.gate)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if n := src.fetches.Load(); n != 1 {
				t.Errorf("upstream fetches = %d, want 1", n)
			}
			if s := c.Stats(); s.Coalesced != clients-1 {
				t.Errorf("coalesced = %d, want %d", s.Coalesced, clients-1)
			}
		})
	}
}

func TestUnknownLengthAndRanges(t *testing.T) {
	t.Parallel()
	src := newSource()
	src.noLen = true
	want := randBytes(t, 200_001)
	src.put("t1/a.mp4", want)
	c := newCache(t, t.TempDir(), src, 0)
	h, err := c.Get(context.Background(), "t1/a.mp4")
	if err != nil {
		t.Fatal(err)
	}
	if h.Meta.Size != -1 {
		t.Fatalf("size = %d, want -1 while unknown", h.Meta.Size)
	}
	if got := read(t, h); !bytes.Equal(got, want) {
		t.Fatal("bytes differ")
	}
	poll.Until(t, 10*time.Second, "the fill to finish", func() bool { return c.Stats().FillsInFlight == 0 })
	h, _ = c.Get(context.Background(), "t1/a.mp4")
	r, _ := h.Stream(context.Background(), 1000, 500)
	defer r.(io.Closer).Close()
	got := make([]byte, 500)
	if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, want[1000:1500]) {
		t.Errorf("range from disk: err %v, equal %v", err, bytes.Equal(got, want[1000:1500]))
	}
	if h.Meta.Size != int64(len(want)) || h.Meta.ETag == "" {
		t.Errorf("stored meta = %+v, want size %d and an ETag", h.Meta, len(want))
	}
}

func TestEvictionKeepsBudgetAndPurge(t *testing.T) {
	t.Parallel()
	src := newSource()
	cfg := DefaultConfig()
	cfg.Dir, cfg.DiskBytes, cfg.MemBytes = t.TempDir(), 1<<20, 1<<20
	c, err := New(cfg, src, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 40 {
		k := fmt.Sprintf("t%d/seg.m4s", i%4)
		k = fmt.Sprintf("%s-%d", k, i)
		src.put(k, randBytes(t, 100_000))
		h, err := c.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		read(t, h)
		poll.Until(t, 10*time.Second, "the fill to finish", func() bool { return c.Stats().FillsInFlight == 0 })
	}
	s := c.Stats()
	if s.DiskUsed > cfg.DiskBytes || s.DiskEvictions == 0 {
		t.Errorf("disk used %d of %d with %d evictions", s.DiskUsed, cfg.DiskBytes, s.DiskEvictions)
	}
	before := s.DiskObjects
	n := c.Purge("t1/")
	if n == 0 || c.Stats().DiskObjects != before-int64(n) {
		t.Errorf("Purge removed %d, objects %d -> %d", n, before, c.Stats().DiskObjects)
	}
	c.disks[0].mu.Lock()
	for k := range c.disks[0].index {
		if k[:3] == "t1/" {
			t.Errorf("purged key %s still indexed", k)
		}
	}
	c.disks[0].mu.Unlock()
}
