// Package accesslog writes the appliance's access log: one JSON line per
// content request (players' /c/ and peers' /f/ paths), with the W3C trace
// id the control plane put in the playback URL, so that a playback traced
// from the control plane can be followed to the appliance that served it.
// It is off unless the appliance is given a file (appliance.Config's
// AccessLog, the --access-log flag).
//
// The server hands every answer to Add on its hit path, so Add does no
// I/O and allocates nothing: it formats the line into a buffer in memory,
// under a mutex held for the formatting alone. Run writes the buffer out
// every FlushInterval, or as soon as it holds FlushBytes, from its own
// goroutine, so a slow disk never holds a response up; when the writes
// fall so far behind that MaxBytes are waiting, further lines are dropped
// and counted rather than held.
//
// A line, its fields in this order, those in brackets only when known:
//
//	{"ts":"2026-01-05T20:15:04.123456Z",["client":"203.0.113.9",]"method":"GET",
//	 "path":"/c/-/t1/720p/seg-00001.m4s","status":200,"bytes":1500000,"dur_us":87
//	 [,"cache":"HIT-memory"][,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"]}
//
// The player's token, a credential, is never written: a path's token
// segment reads "-". The query string is left out too.
package accesslog

import (
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/internal/jsonappend"
)

// Config configures a Log. Zero values mean the defaults named.
type Config struct {
	// FlushInterval is the longest a line waits in memory before it is
	// written. Zero means 1 s.
	FlushInterval time.Duration
	// FlushBytes is how much waiting makes Run write at once, without
	// waiting for the interval. Zero means 64 KiB.
	FlushBytes int
	// MaxBytes bounds what waits while the writer is slow: a line that
	// finds this much waiting is dropped. Zero means 4 MiB; at least
	// FlushBytes.
	MaxBytes int
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{FlushInterval: time.Second, FlushBytes: 64 << 10, MaxBytes: 4 << 20}
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	switch {
	case c.FlushInterval < 0:
		return fillcast.ConfigErrorf("accesslog", "FlushInterval", "%v is negative", c.FlushInterval)
	case c.FlushBytes < 0:
		return fillcast.ConfigErrorf("accesslog", "FlushBytes", "%d is negative", c.FlushBytes)
	case c.MaxBytes < 0:
		return fillcast.ConfigErrorf("accesslog", "MaxBytes", "%d is negative", c.MaxBytes)
	}
	if d := c.withDefaults(); d.MaxBytes < d.FlushBytes {
		return fillcast.ConfigErrorf("accesslog", "MaxBytes", "%d is below FlushBytes (%d)", d.MaxBytes, d.FlushBytes)
	}
	return nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.FlushInterval = cmp.Or(c.FlushInterval, d.FlushInterval)
	c.FlushBytes = cmp.Or(c.FlushBytes, d.FlushBytes)
	c.MaxBytes = cmp.Or(c.MaxBytes, d.MaxBytes)
	return c
}

// Deps are what a Log works with besides its Config.
type Deps struct {
	// W receives the lines, whole lines at a time, from one goroutine at
	// a time. Required. A file opened with O_APPEND may be shared with
	// another process (the old one during an upgrade): each write is a
	// run of whole lines.
	W io.Writer
	// Log receives a warning when writing starts to fail; nil discards
	// it.
	Log *slog.Logger
}

// Entry is one answer, as the server hands it to Add. Its strings may
// view the request's buffers: Add copies what it keeps before it returns.
type Entry struct {
	// Time is when the request reached the handler; Duration how long
	// the handler took to answer it.
	Time     time.Time
	Duration time.Duration
	// Client is the client's address; the zero Addr when unknown.
	Client netip.Addr
	Method string
	// Path is the path as requested, without the query.
	Path   string
	Status int
	// Bytes is the body bytes sent.
	Bytes int64
	// Cache is the X-Cache value (HIT-memory, HIT-disk, MISS), "" when
	// the cache was not reached.
	Cache string
	// TraceID is the request's W3C trace id, 32 hex digits, or "".
	TraceID string
}

// Stats are a Log's counters since New.
type Stats struct {
	// Lines were handed to the writer (or are waiting to be); Dropped
	// found MaxBytes waiting.
	Lines, Dropped uint64
	// WriteErrors counts the writes that failed; their lines are lost.
	WriteErrors uint64
}

// Log is an access log. Add is safe for concurrent use.
type Log struct {
	cfg  Config
	w    io.Writer
	log  *slog.Logger
	kick chan struct{}

	mu  sync.Mutex
	buf []byte // lines waiting

	wmu     sync.Mutex // held by the one writing
	spare   []byte     // the buffer last written, empty, for the next swap
	failing bool       // the last write failed

	lines, dropped, writeErrors atomic.Uint64
}

// New returns a Log writing to d.W once Run runs; it writes nothing
// before.
func New(cfg Config, d Deps) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.W == nil {
		return nil, errors.New("accesslog: Deps.W is required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	// Room for a flush's worth and a line over it, so that a log
	// written on time never grows its buffers.
	size := cfg.FlushBytes + 4<<10
	return &Log{cfg: cfg, w: d.W, log: d.Log, kick: make(chan struct{}, 1),
		buf: make([]byte, 0, size), spare: make([]byte, 0, size)}, nil
}

// Add formats e as a line and queues it for the writer. It does no I/O
// and, once the buffers have grown to their working size, allocates
// nothing.
func (l *Log) Add(e Entry) {
	l.mu.Lock()
	if len(l.buf) >= l.cfg.MaxBytes {
		l.mu.Unlock()
		l.dropped.Add(1)
		return
	}
	l.buf = AppendLine(l.buf, &e)
	full := len(l.buf) >= l.cfg.FlushBytes
	l.mu.Unlock()
	l.lines.Add(1)
	if full {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

// Run writes the waiting lines every FlushInterval, or once FlushBytes
// wait, until ctx is done; then it writes what is left and returns.
// Lines added after it returned wait for a Flush.
func (l *Log) Run(ctx context.Context) {
	t := time.NewTicker(l.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.Flush()
			return
		case <-t.C:
		case <-l.kick:
		}
		l.Flush()
	}
}

// Flush writes the lines waiting now and returns the writer's error.
func (l *Log) Flush() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	b := l.buf
	l.buf = l.spare
	l.mu.Unlock()
	l.spare = b[:0]
	if len(b) == 0 {
		return nil
	}
	_, err := l.w.Write(b)
	if err != nil {
		l.writeErrors.Add(1)
		if !l.failing {
			l.log.Warn("accesslog: cannot write; lines are lost until it can", "err", err)
		}
	} else if l.failing {
		l.log.Info("accesslog: writing again")
	}
	l.failing = err != nil
	return err
}

// Stats returns the counters.
func (l *Log) Stats() Stats {
	return Stats{Lines: l.lines.Load(), Dropped: l.dropped.Load(), WriteErrors: l.writeErrors.Load()}
}

// AppendLine appends e's line, newline included, to dst.
func AppendLine(dst []byte, e *Entry) []byte {
	dst = append(dst, `{"ts":"`...)
	dst = e.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	if e.Client.IsValid() {
		dst = append(dst, `,"client":"`...)
		dst = e.Client.Unmap().AppendTo(dst)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"method":`...)
	dst = jsonappend.String(dst, e.Method)
	dst = append(dst, `,"path":`...)
	dst = appendPath(dst, e.Path)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(e.Status), 10)
	dst = append(dst, `,"bytes":`...)
	dst = strconv.AppendInt(dst, e.Bytes, 10)
	dst = append(dst, `,"dur_us":`...)
	dst = strconv.AppendInt(dst, e.Duration.Microseconds(), 10)
	if e.Cache != "" {
		dst = append(dst, `,"cache":`...)
		dst = jsonappend.String(dst, e.Cache)
	}
	if e.TraceID != "" {
		dst = append(dst, `,"trace_id":`...)
		dst = jsonappend.String(dst, e.TraceID)
	}
	return append(dst, "}\n"...)
}

// appendPath appends p as a JSON string, its token segment, if it is a
// player's path (/c/{token}/...), replaced by "-".
func appendPath(dst []byte, p string) []byte {
	if len(p) < 3 || p[:3] != "/c/" {
		return jsonappend.String(dst, p)
	}
	dst = append(dst, `"/c/-`...)
	rest := p[3:]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '/' {
			rest = rest[i:]
			// jsonappend quotes what it appends: drop its opening quote,
			// the string is already open.
			at := len(dst)
			dst = jsonappend.String(dst, rest)
			return append(dst[:at], dst[at+1:]...)
		}
	}
	return append(dst, '"')
}
