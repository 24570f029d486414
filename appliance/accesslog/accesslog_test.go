package accesslog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fillcast/fillcast/internal/poll"
)

// buffer is an io.Writer safe to read while Run writes to it.
type buffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
	fail   error
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return 0, b.fail
	}
	b.writes++
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

var at = time.Date(2026, 1, 5, 20, 15, 4, 123456000, time.UTC)

func TestAppendLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		e    Entry
		want string
	}{
		{"player hit with a trace", Entry{Time: at, Duration: 87 * time.Microsecond, Client: netip.MustParseAddr("203.0.113.9"),
			Method: "GET", Path: "/c/k1.1767650000.AAAA.sig/t1/720p/seg-00001.m4s", Status: 200, Bytes: 1500000, Cache: "HIT-memory",
			TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"},
			`{"ts":"2026-01-05T20:15:04.123456Z","client":"203.0.113.9","method":"GET","path":"/c/-/t1/720p/seg-00001.m4s",` +
				`"status":200,"bytes":1500000,"dur_us":87,"cache":"HIT-memory","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}` + "\n"},
		{"peer, no cache, no client", Entry{Time: at.In(time.FixedZone("CET", 3600)), Duration: 3 * time.Millisecond, Method: "HEAD",
			Path: "/f/t1/master.m3u8", Status: 403},
			`{"ts":"2026-01-05T20:15:04.123456Z","method":"HEAD","path":"/f/t1/master.m3u8","status":403,"bytes":0,"dur_us":3000}` + "\n"},
		{"IPv4 in IPv6", Entry{Time: at, Client: netip.MustParseAddr("::ffff:192.0.2.1"), Method: "GET", Path: "/f/t1/a", Status: 200},
			`{"ts":"2026-01-05T20:15:04.123456Z","client":"192.0.2.1","method":"GET","path":"/f/t1/a","status":200,"bytes":0,"dur_us":0}` + "\n"},
		{"token alone", Entry{Time: at, Method: "GET", Path: "/c/secret", Status: 400},
			`{"ts":"2026-01-05T20:15:04.123456Z","method":"GET","path":"/c/-","status":400,"bytes":0,"dur_us":0}` + "\n"},
		{"quotes and control characters escaped", Entry{Time: at, Method: "GET", Path: "/c/tok/t1/a\"b\\c\x01", Status: 400},
			`{"ts":"2026-01-05T20:15:04.123456Z","method":"GET","path":"/c/-/t1/a\"b\\c\u0001","status":400,"bytes":0,"dur_us":0}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendLine(nil, &tt.e))
			if got != tt.want {
				t.Errorf("line\n%s\nwant\n%s", got, tt.want)
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(got), &m); err != nil {
				t.Errorf("not JSON: %v", err)
			}
		})
	}
}

func FuzzAppendLine(f *testing.F) {
	for _, p := range []string{"/c/tok/t1/a.m4s", "/f/t1/a", "/c/", "/c/x\"/\\", "\xff\xfe"} {
		f.Add(p, "GET", "4bf92f3577b34da6a3ce929d0e0e4736")
	}
	f.Fuzz(func(t *testing.T, path, method, trace string) {
		line := AppendLine(nil, &Entry{Time: at, Method: method, Path: path, Status: 200, TraceID: trace})
		if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
			t.Fatalf("not one line: %q", line)
		}
		var e struct {
			Path    string `json:"path"`
			Method  string `json:"method"`
			TraceID string `json:"trace_id"`
		}
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("%q is not JSON: %v", line, err)
		}
		want := path
		if strings.HasPrefix(path, "/c/") {
			want = "/c/-"
			if _, rest, ok := strings.Cut(path[3:], "/"); ok {
				want += "/" + rest
			}
		}
		if utf8.ValidString(path) && e.Path != want {
			t.Fatalf("path %q logged as %q, want %q", path, e.Path, want)
		}
	})
}

// TestRunWrites: lines reach the writer on the interval, at once when
// FlushBytes wait, and all of them when Run stops.
func TestRunWrites(t *testing.T) {
	t.Parallel()
	var w buffer
	l, err := New(Config{FlushInterval: time.Hour, FlushBytes: 1 << 10}, Deps{W: &w})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	e := Entry{Time: at, Method: "GET", Path: "/f/t1/720p/seg-00001.m4s", Status: 200, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"}
	l.Add(e)
	if w.String() != "" {
		t.Fatal("a line under FlushBytes was written before the interval")
	}
	for range 20 { // over 1 KiB
		l.Add(e)
	}
	poll.Until(t, 10*time.Second, "FlushBytes to be written without waiting for the interval", func() bool { return w.String() != "" })
	l.Add(e)
	cancel()
	<-done
	lines := strings.Split(strings.TrimSuffix(w.String(), "\n"), "\n")
	if len(lines) != 22 {
		t.Errorf("%d lines written, want 22", len(lines))
	}
	for _, line := range lines {
		if line+"\n" != string(AppendLine(nil, &e)) {
			t.Fatalf("line %q", line)
		}
	}
	if s := l.Stats(); s.Lines != 22 || s.Dropped != 0 || s.WriteErrors != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestDropsWhenBehind: lines that find MaxBytes waiting are dropped and
// counted; a failed write loses its lines, is counted, and writing
// resumes when the writer recovers.
func TestDropsWhenBehind(t *testing.T) {
	t.Parallel()
	var w buffer
	l, err := New(Config{FlushBytes: 100, MaxBytes: 300}, Deps{W: &w})
	if err != nil {
		t.Fatal(err)
	}
	e := Entry{Time: at, Method: "GET", Path: "/f/t1/a", Status: 200} // about 100 bytes
	for range 10 {
		l.Add(e)
	}
	if s := l.Stats(); s.Lines != 3 || s.Dropped != 7 {
		t.Errorf("stats %+v, want 3 lines and 7 dropped", s)
	}
	w.fail = errors.New("disk full")
	if err := l.Flush(); err == nil {
		t.Error("Flush hid the write error")
	}
	w.fail = nil
	l.Add(e)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(w.String(), "\n"); got != 1 {
		t.Errorf("%d lines written after the failure, want 1", got)
	}
	if s := l.Stats(); s.WriteErrors != 1 {
		t.Errorf("stats %+v, want 1 write error", s)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"default", DefaultConfig(), true},
		{"negative interval", Config{FlushInterval: -1}, false},
		{"negative flush bytes", Config{FlushBytes: -1}, false},
		{"max below flush", Config{FlushBytes: 1 << 20, MaxBytes: 1 << 10}, false},
		{"flush above the default max", Config{FlushBytes: 8 << 20}, false},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
	if _, err := New(Config{}, Deps{}); err == nil {
		t.Error("New without a writer succeeded")
	}
}

// BenchmarkAdd is the cost of the access log on the hit path: a line
// formatted and queued, and its share of a flush to a discarding writer
// (in line, so that no line is dropped and the figure is the whole cost).
func BenchmarkAdd(b *testing.B) {
	l, err := New(Config{}, Deps{W: discard{}})
	if err != nil {
		b.Fatal(err)
	}
	e := Entry{Time: at, Duration: 87 * time.Microsecond, Client: netip.MustParseAddr("203.0.113.9"), Method: "GET",
		Path: "/c/k1.1767650000.AAAA.sig/t1/720p/seg-00001.m4s", Status: 200, Bytes: 1500000, Cache: "HIT-memory",
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.Add(e)
		if i%256 == 255 {
			l.Flush()
		}
	}
	if s := l.Stats(); s.Dropped != 0 {
		b.Errorf("%d lines dropped", s.Dropped)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
