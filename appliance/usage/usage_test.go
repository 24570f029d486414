package usage

import (
	"fmt"
	"math"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance/cmcd"
)

// clock is a fake clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newRecorder(t testing.TB, maxRows int) (*Recorder, *clock) {
	t.Helper()
	c := &clock{t: t0}
	r, err := New(Config{Appliance: "a1", Site: "s1", MaxRows: maxRows}, Deps{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return r, c
}

// player is the CMCD of a video segment request.
func player(t testing.TB, payload string) cmcd.Data {
	var d cmcd.Data
	if err := cmcd.Parse(&d, []byte(payload)); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRecordAndCut(t *testing.T) {
	t.Parallel()
	r, c := newRecorder(t, 0)
	seg := func(sid string, br, bl int, starved bool) cmcd.Data {
		p := fmt.Sprintf(`br=%d,bl=%d,ot=v,sid="%s",mtp=20000`, br, bl, sid)
		if starved {
			p += ",bs"
		}
		return player(t, p)
	}
	for _, resp := range []Response{
		{Title: "t1", Rendition: "720p", Status: 200, Bytes: 1000, CMCD: seg("s1", 3000, 20000, false)},
		{Title: "t1", Rendition: "720p", Status: 206, Bytes: 500, CMCD: seg("s2", 3000, 1000, true)},
		{Title: "t1", Rendition: "720p", Status: 304},
		{Title: "t1", Rendition: "720p", Status: 404},
		{Title: "t1", Rendition: "", Status: 200, Bytes: 300, CMCD: player(t, `ot=m,sid="s1"`)},
		{Title: "t1", Rendition: ".hidden", Status: 403},
		{Title: "t2", Rendition: "1080p", Status: 502},
		{Title: "t2", Rendition: "1080p", Status: 101}, // no class
		{Title: "../x", Rendition: "720p", Status: 400},
		{Title: "", Status: 400},
	} {
		r.Record(resp)
	}
	c.set(t0.Add(10 * time.Second))
	u := r.Cut()
	want := &fillcast.Usage{Appliance: "a1", Site: "s1", ID: fmt.Sprintf("a1-%d", t0.UnixNano()), Start: t0, End: t0.Add(10 * time.Second),
		Titles: []fillcast.UsageRow{
			{Title: "t1", Requests: 2, Bytes: 300, Status2xx: 1, Status4xx: 1, CMCD: fillcast.UsageCMCD{Requests: 1, Sessions: 1}},
			{Title: "t1", Rendition: "720p", Requests: 4, Bytes: 1500, Status2xx: 2, Status3xx: 1, Status4xx: 1,
				CMCD: fillcast.UsageCMCD{Requests: 2, BitrateRequests: 2, BitrateKbpsSum: 6000, BufferRequests: 2, BufferMsSum: 21000,
					ThroughputRequests: 2, ThroughputKbpsSum: 40000, Starved: 1, Sessions: 2}},
			{Title: "t2", Rendition: "1080p", Requests: 2, Status5xx: 1},
		},
		Unattributed: 2}
	// Two session ids share a bit 1 time in 1024: they then count as one.
	if u != nil && len(u.Titles) == 3 && u.Titles[1].CMCD.Sessions == 1 {
		u.Titles[1].CMCD.Sessions = 2
	}
	if !reflect.DeepEqual(u, want) {
		t.Errorf("Cut() =\n%+v\nwant\n%+v", u, want)
	}
	if err := u.Validate(); err != nil {
		t.Errorf("the summary is invalid: %v", err)
	}

	// The next interval starts where this one ended, has its own ID, and
	// an empty one is no summary.
	c.set(t0.Add(20 * time.Second))
	if u := r.Cut(); u != nil {
		t.Errorf("an empty interval: %+v, want nil", u)
	}
	r.Record(Response{Title: "t1", Rendition: "720p", Status: 200, Bytes: 7})
	c.set(t0.Add(25 * time.Second))
	u2 := r.Cut()
	if u2 == nil || !u2.Start.Equal(t0.Add(20*time.Second)) || u2.ID == u.ID || len(u2.Titles) != 1 || u2.Titles[0].Bytes != 7 {
		t.Errorf("third interval: %+v", u2)
	}
}

// TestRowsBounded: pairs beyond MaxRows are unattributed; rows idle for a
// whole interval are forgotten, which makes room again.
func TestRowsBounded(t *testing.T) {
	t.Parallel()
	r, _ := newRecorder(t, 3)
	for i := range 5 {
		r.Record(Response{Title: fmt.Sprintf("t%d", i), Status: 200})
	}
	r.Record(Response{Title: "t0", Status: 200})
	u := r.Cut()
	if len(u.Titles) != 3 || u.Unattributed != 2 || u.Titles[0].Requests != 2 {
		t.Fatalf("first interval: %+v", u)
	}
	r.Record(Response{Title: "t0", Status: 200})
	r.Cut() // t1 and t2 were idle: forgotten
	r.Record(Response{Title: "t3", Status: 200})
	r.Record(Response{Title: "t4", Status: 200})
	u = r.Cut()
	if len(u.Titles) != 2 || u.Unattributed != 0 || u.Titles[0].Title != "t3" {
		t.Errorf("after the idle rows went: %+v", u)
	}
	if n := r.rows.Load(); n != 2 {
		t.Errorf("%d rows kept, want 2", n)
	}
}

// TestHostileCMCD: values a player makes up cannot overflow the sums, and
// the summary stays valid.
func TestHostileCMCD(t *testing.T) {
	t.Parallel()
	r, _ := newRecorder(t, 0)
	d := player(t, "br=999999999999999999,bl=999999999999999999,mtp=999999999999999999")
	for range 1000 {
		r.Record(Response{Title: "t1", Rendition: "v", Status: 200, Bytes: math.MaxInt32, CMCD: d})
	}
	u := r.Cut()
	if err := u.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := u.Titles[0].CMCD.BitrateKbpsSum; got != 1000*math.MaxUint32 {
		t.Errorf("bitrate sum %d, want each value capped at %d", got, uint32(math.MaxUint32))
	}
}

func TestSessionsEstimate(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 10, 100, 500, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			r, _ := newRecorder(t, 0)
			for i := range 3 * n {
				r.Record(Response{Title: "t1", Status: 200, CMCD: player(t, fmt.Sprintf(`sid="session-%d"`, i%n))})
			}
			got := r.Cut().Titles[0].CMCD.Sessions
			// Linear counting's standard error at 1000 in 1024 bits is
			// under 3%: 15% is more than 5 of them.
			if math.Abs(float64(got-int64(n))) > 0.15*float64(n)+2 {
				t.Errorf("%d distinct sessions estimated as %d", n, got)
			}
		})
	}
}

// TestConcurrent: responses recorded by many goroutines while intervals
// are cut are each counted once.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	r, c := newRecorder(t, 0)
	const workers, each = 8, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r.Record(Response{Title: fmt.Sprintf("t%d", i%7), Rendition: fmt.Sprintf("r%d", w%3), Status: 200, Bytes: 1})
			}
		}()
	}
	var total int64
	var cuts []*fillcast.Usage
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for stop := false; !stop; {
		select {
		case <-done:
			stop = true
		default:
		}
		c.set(c.now().Add(time.Second))
		if u := r.Cut(); u != nil {
			cuts = append(cuts, u)
		}
	}
	for _, u := range cuts {
		if err := u.Validate(); err != nil {
			t.Fatal(err)
		}
		for _, row := range u.Titles {
			total += row.Bytes
		}
	}
	if total != workers*each {
		t.Errorf("%d responses counted, %d recorded", total, workers*each)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{Appliance: "a1", Site: "s1"}, true},
		{"most rows", Config{Appliance: "a1", Site: "s1", MaxRows: fillcast.MaxUsageRows}, true},
		{"no appliance", Config{Site: "s1"}, false},
		{"no site", Config{Appliance: "a1"}, false},
		{"too many rows", Config{Appliance: "a1", Site: "s1", MaxRows: fillcast.MaxUsageRows + 1}, false},
		{"negative rows", Config{Appliance: "a1", Site: "s1", MaxRows: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// BenchmarkRecord records a video segment response with CMCD for a pair
// already seen, as the server does on every hit.
func BenchmarkRecord(b *testing.B) {
	r, _ := newRecorder(b, 0)
	resp := Response{Title: "t1", Rendition: "720p", Status: 200, Bytes: 1500000,
		CMCD: player(b, `br=3200,bl=21300,d=4004,mtp=25400,ot=v,sid="6e2fb550-c457-11e9-bb97-0800200c9a66"`)}
	b.ReportAllocs()
	for b.Loop() {
		r.Record(resp)
	}
}

// BenchmarkRecordParallel records from every core, over a few titles.
func BenchmarkRecordParallel(b *testing.B) {
	r, _ := newRecorder(b, 0)
	d := player(b, `br=3200,bl=21300,d=4004,mtp=25400,ot=v,sid="6e2fb550-c457-11e9-bb97-0800200c9a66"`)
	titles := []string{"t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			r.Record(Response{Title: titles[i%len(titles)], Rendition: "720p", Status: 200, Bytes: 1500000, CMCD: d})
		}
	})
}
