// Command million measures the embedded accounts store (accounts/embedded
// inside the control plane's state machine, controlplane/fsm) at a
// million accounts: the heap they take, the time and size of a raft
// snapshot of the whole state, the time and heap of restoring it into a
// fresh state machine, and the latency of a sign-in's lookup by email.
//
// The accounts go in as the control plane puts them there: each
// create_account and create_session command is encoded as a raft log
// entry and applied by a real fsm.FSM, one after the other as raft applies
// a committed log. Every account has its first profile and one session.
// One argon2id hash (the default cost) is computed once and stored in
// every account: hashing a million passwords would take hours and changes
// nothing measured here, since each account still holds its own decoded
// copy of the string, as it would of its own hash.
//
//	go run ./bench/accounts/million               # 1,000,000 accounts
//	go run ./bench/accounts/million -n 100000     # quick
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/fsm"
)

func main() {
	n := flag.Int("n", 1_000_000, "accounts to create")
	lookups := flag.Int("lookups", 200_000, "AccountByEmail lookups to time")
	dir := flag.String("dir", "", "directory of the snapshot file (default: a temporary one, removed)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the lookups to this `FILE`")
	flag.Parse()
	if err := run(*n, *lookups, *dir, *cpuProfile); err != nil {
		fmt.Fprintln(os.Stderr, "million:", err)
		os.Exit(1)
	}
}

// Record ids have the length of the service's (rand.Text, 26
// characters) but are derived from the account's number, so that the
// program need not keep a million of them to look them up.
func accountID(i int) string { return fmt.Sprintf("A%025d", i) }
func profileID(i int) string { return fmt.Sprintf("P%025d", i) }
func sessionID(i int) string { return fmt.Sprintf("S%025d", i) }
func email(i int) string     { return fmt.Sprintf("viewer%07d@bench.fillcast.example", i) }

// node applies commands to a real FSM in log order, as raft does with a
// committed log on a cluster of one.
type node struct {
	f     *fsm.FSM
	index uint64
}

func (nd *node) apply(_ context.Context, c fsm.Command) error {
	b, err := c.Encode()
	if err != nil {
		return err
	}
	nd.index++
	if r := nd.f.Apply(&raft.Log{Index: nd.index, Data: b}); r != nil {
		return r.(error)
	}
	return nil
}

func run(n, lookups int, dir, cpuProfile string) error {
	if n < 1 {
		return errors.New("-n: want at least 1 account")
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "fillcast-million-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	ctx := context.Background()
	params := accounts.Argon2{}
	t := time.Now()
	hash := params.HashPassword("correct horse battery staple")
	fmt.Printf("%s, GOMAXPROCS %d; %d accounts, each with 1 profile and 1 session\n", runtime.Version(), runtime.GOMAXPROCS(0), n)
	fmt.Printf("one argon2id hash at the default cost, computed once in %v and stored in every account (%d bytes): %s\n",
		time.Since(t).Round(time.Millisecond), len(hash), hash[:strings.LastIndexByte(hash, '$')]+"$…")

	base := heap()
	nd := &node{f: fsm.New(nil)}
	store := fsm.AccountsStore(nd.f, func(ctx context.Context, c fsm.Command) error { return nd.apply(ctx, c) }, nil)
	plan := accounts.Plan{ID: "standard", Name: "Standard", MaxHeight: 1080, MaxStreams: 2, Downloads: true,
		Price: accounts.Money{Amount: 1399, Currency: "EUR"}, Period: accounts.PeriodMonth}
	if err := store.PutPlan(ctx, plan); err != nil {
		return err
	}
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t = time.Now()
	for i := range n {
		at := created.Add(time.Duration(i) * time.Millisecond)
		a := accounts.Account{ID: accountID(i), Email: email(i), PasswordHash: hash, Plan: plan.ID, Created: at}
		p := accounts.Profile{ID: profileID(i), Account: a.ID, Name: fmt.Sprintf("viewer%07d", i), Created: at}
		if err := store.CreateAccount(ctx, a, p); err != nil {
			return fmt.Errorf("account %d: %w", i, err)
		}
		_, tokenHash, err := auth.NewSession(sessionID(i))
		if err != nil {
			return err
		}
		s := accounts.Session{ID: sessionID(i), Account: a.ID, Hash: tokenHash, Created: at, LastSeen: at}
		if err := store.CreateSession(ctx, s, 50, at.Add(-30*24*time.Hour)); err != nil {
			return fmt.Errorf("session %d: %w", i, err)
		}
		if (i+1)%(max(n/10, 1)) == 0 {
			fmt.Fprintf(os.Stderr, "  %d accounts (%v)\n", i+1, time.Since(t).Round(time.Second))
		}
	}
	took := time.Since(t)
	fmt.Printf("applied %d commands through FSM.Apply (JSON log entries) in %v: %.0f commands/s\n",
		2*n+1, took.Round(time.Millisecond), float64(2*n)/took.Seconds())
	full := heap()
	fmt.Printf("heap in use after GC: %s (%s before the accounts): %.0f bytes per account\n",
		mib(full.HeapInuse), mib(base.HeapInuse), float64(full.HeapInuse-base.HeapInuse)/float64(n))

	// Snapshot: FSM.Snapshot copies the maps under the read lock (what
	// blocks writes); Persist encodes JSON into the sink (concurrent with
	// writes).
	path := filepath.Join(dir, "state.snap")
	t = time.Now()
	snap, err := nd.f.Snapshot()
	if err != nil {
		return err
	}
	copied := time.Since(t)
	sink, err := newFileSink(path)
	if err != nil {
		return err
	}
	if err := snap.Persist(sink); err != nil {
		return err
	}
	snap.Release()
	persisted := time.Since(t)
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	fmt.Printf("snapshot: %v (FSM.Snapshot under the lock %v, JSON to the file %v), %s on disk: %.0f bytes per account\n",
		persisted.Round(time.Millisecond), copied.Round(time.Millisecond), (persisted - copied).Round(time.Millisecond),
		mib(uint64(fi.Size())), float64(fi.Size())/float64(n))

	// Restore into a fresh FSM, the first one dropped, as a node that
	// starts from the snapshot.
	nd, store = nil, nil
	before := heap()
	resetPeakRSS()
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	fresh := fsm.New(nil)
	t = time.Now()
	if err := fresh.Restore(f); err != nil {
		return err
	}
	restored := time.Since(t)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	allocated := ms.TotalAlloc - before.TotalAlloc
	after := heap()
	count := 0
	fresh.Read(func(s *fsm.State) { count = s.Accounts.Accounts.Len() })
	if count != n {
		return fmt.Errorf("restored %d accounts, want %d", count, n)
	}
	fmt.Printf("restore into a fresh FSM: %v, %s allocated while decoding, peak RSS during it %s; heap in use after GC %s (%.0f bytes per account)\n",
		restored.Round(time.Millisecond), mib(allocated), peakRSS(), mib(after.HeapInuse), float64(after.HeapInuse-base.HeapInuse)/float64(n))

	// Lookups: what a sign-in reads before it hashes, on the restored
	// state, through the store the control plane uses.
	rs := fsm.AccountsStore(fresh, func(context.Context, fsm.Command) error { return errors.New("read only") }, nil)
	r := rand.New(rand.NewPCG(1, 2))
	emails := make([]string, 4096)
	for i := range emails {
		emails[i] = email(r.IntN(n))
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	lat := make([]time.Duration, lookups)
	for i := range lat {
		e := emails[i%len(emails)]
		t := time.Now()
		a, err := rs.AccountByEmail(ctx, e)
		lat[i] = time.Since(t)
		if err != nil || a.Email != e {
			return fmt.Errorf("lookup %s: %v", e, err)
		}
	}
	slices.Sort(lat)
	t = time.Now()
	for i := range lookups {
		rs.AccountByEmail(ctx, emails[i%len(emails)])
	}
	batch := time.Since(t) / time.Duration(lookups)
	var clock time.Duration
	{
		t := time.Now()
		for range lookups {
			time.Now()
		}
		clock = time.Since(t) / time.Duration(lookups)
	}
	fmt.Printf("AccountByEmail over %d random accounts: median %v, p99 %v timed one by one (each includes a clock read of ~%v); %v/op over %d in a row\n",
		len(emails), lat[len(lat)/2], lat[len(lat)*99/100], clock, batch, lookups)
	return nil
}

// heap returns the memory statistics after two collections.
func heap() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// resetPeakRSS resets the kernel's high-water mark of this process's
// resident memory (Linux: clear_refs 5), if it can.
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS is VmHWM of /proc/self/status (the peak since resetPeakRSS),
// or "n/a".
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "n/a"
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			var kb uint64
			fmt.Sscan(string(v), &kb)
			return mib(kb << 10)
		}
	}
	return "n/a"
}

// fileSink is a raft.SnapshotSink writing to one file.
type fileSink struct {
	f *os.File
	w *bufio.Writer
}

var _ raft.SnapshotSink = (*fileSink)(nil)

func newFileSink(path string) (*fileSink, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &fileSink{f: f, w: bufio.NewWriterSize(f, 1<<20)}, nil
}

func (s *fileSink) Write(p []byte) (int, error) { return s.w.Write(p) }
func (s *fileSink) ID() string                  { return "bench" }
func (s *fileSink) Cancel() error               { return s.f.Close() }

// Close flushes and syncs the file, as raft's file snapshot store does.
func (s *fileSink) Close() error {
	if err := s.w.Flush(); err != nil {
		s.f.Close()
		return err
	}
	if err := s.f.Sync(); err != nil {
		s.f.Close()
		return err
	}
	return s.f.Close()
}
