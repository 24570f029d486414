package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast"
)

// WorkloadConfig shapes the clients. The zero value of each field means
// its default.
type WorkloadConfig struct {
	// Clients is how many clients run at once. Zero means 5.
	Clients int
	// Titles is how many titles they share. Zero means 6.
	Titles int
	// ReadShare and CreateShare are the shares of reads and creates;
	// the rest are updates. Zero means 0.5 and 0.15.
	ReadShare, CreateShare float64
	// Timeout bounds one operation; a write still unanswered then is
	// unknown. Zero means 4 s: shorter than a node takes to give up on a
	// write (10 s), so that clients of a partitioned node move on to
	// others (and to reads of it, the stale-read case) while the
	// partition lasts, rather than all waiting on it.
	Timeout time.Duration
	// Think is the most a client pauses between operations (0 to it, at
	// random), to leave the machine to the nodes. Zero means 20 ms.
	Think time.Duration
	// Token is the bearer token the clients send. Required.
	Token string
}

// Validate reports what is wrong with c, after defaults.
func (c WorkloadConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Token == "":
		return errors.New("chaos: workload: a token is required")
	case c.Clients < 1 || c.Titles < 1:
		return fmt.Errorf("chaos: workload: %d clients, %d titles: want at least one of each", c.Clients, c.Titles)
	case c.ReadShare < 0 || c.CreateShare < 0 || c.ReadShare+c.CreateShare > 1:
		return fmt.Errorf("chaos: workload: shares %v read, %v create: want non-negative, summing to at most 1", c.ReadShare, c.CreateShare)
	}
	return nil
}

func (c WorkloadConfig) withDefaults() WorkloadConfig {
	if c.Clients == 0 {
		c.Clients = 5
	}
	if c.Titles == 0 {
		c.Titles = 6
	}
	if c.ReadShare == 0 {
		c.ReadShare = 0.5
	}
	if c.CreateShare == 0 {
		c.CreateShare = 0.15
	}
	if c.Timeout == 0 {
		c.Timeout = 4 * time.Second
	}
	if c.Think == 0 {
		c.Think = 20 * time.Millisecond
	}
	return c
}

// Workload is the clients: each picks a title, a node and an operation
// at random, calls it over HTTP and records it in the history.
type Workload struct {
	cfg     WorkloadConfig
	urls    []string
	hist    *History
	clients atomic.Int64 // client numbers handed out

	mu       sync.Mutex
	problems []string // answers that mean the harness is wrong
}

// NewWorkload describes clients of the nodes at urls; it starts nothing.
func NewWorkload(cfg WorkloadConfig, urls []string, hist *History) (*Workload, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(urls) == 0 {
		return nil, errors.New("chaos: workload: no node URLs")
	}
	cfg = cfg.withDefaults()
	w := &Workload{cfg: cfg, urls: urls, hist: hist}
	w.clients.Store(int64(cfg.Clients))
	return w, nil
}

// Run runs the clients until ctx is done, and returns once all have
// stopped; an operation in flight then is left unrecorded if it is a
// read, or recorded as unknown if it is a write.
func (w *Workload) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for c := range w.cfg.Clients {
		wg.Go(func() { w.client(ctx, c) })
	}
	wg.Wait()
}

// Problems lists the answers no correct harness gets (400, 401, 403):
// the test fails on them rather than checking a history they spoiled.
func (w *Workload) Problems() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.problems...)
}

func (w *Workload) problem(format string, args ...any) {
	w.mu.Lock()
	if len(w.problems) < 20 {
		w.problems = append(w.problems, fmt.Sprintf(format, args...))
	}
	w.mu.Unlock()
}

// client is one client's loop. Its own transport keeps its connections
// apart from the other clients'.
func (w *Workload) client(ctx context.Context, c int) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer hc.CloseIdleConnections()
	id := c
	rng := rand.New(rand.NewPCG(uint64(c), uint64(time.Now().UnixNano())))
	known := map[string]bool{} // titles this client has seen exist
	for seq := 1; ctx.Err() == nil; seq++ {
		in := Input{Title: fmt.Sprintf("chaos-t%d", 1+rng.IntN(w.cfg.Titles))}
		switch p := rng.Float64(); {
		case p < w.cfg.ReadShare:
			in.Kind = Read
		case p < w.cfg.ReadShare+w.cfg.CreateShare:
			in.Kind = Create
		default:
			in.Kind = Update
		}
		// Until this client has seen a title exist it creates it rather
		// than update it: at the start, clients race to create each
		// title, and exactly one of each race may win.
		if in.Kind == Update && !known[in.Title] {
			in.Kind = Create
		}
		if in.Kind != Read {
			in.Value = fmt.Sprintf("c%d-%d", c, seq)
		}
		node := rng.IntN(len(w.urls))
		op, ok := w.call(ctx, hc, node, in, fmt.Sprintf("chaos-c%d-%d", c, seq))
		if ok {
			known[in.Title] = known[in.Title] || op.Return != Never && (in.Kind != Read || op.Output.Value != "")
			op.Client = id
			w.hist.Add(op)
			if op.Return == Never {
				// This client's write is still open: go on as another.
				id = int(w.clients.Add(1)) - 1
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(rng.Int64N(int64(w.cfg.Think) + 1))):
		}
	}
}

// call runs one operation and says how it ended; ok is false for one
// left out of the history (and counted in History.Drop). The cases:
//
//   - A read's answer (200 with the title, 404) is recorded; a read
//     without one (error, timeout, 5xx) is left out: it changed nothing
//     and saw nothing.
//   - A write answered 201/200 is OK, a create answered 409 is Exists:
//     both are the outcome of its one application in the log (a
//     request retried inside the cluster keeps its X-Request-Id and is
//     applied once).
//   - A write whose request was never fully sent (the connection was
//     refused, as by a killed node, or broke while sending) cannot have
//     been applied: it is left out.
//   - Every other write is Unknown and never returns: a timeout, a
//     connection lost after sending, any 5xx — 503 included, since a
//     node answers it after its retries ran out, by which time an
//     earlier attempt may have been proposed and committed later — and
//     other unexpected statuses.
//   - 400, 401 and 403 mean the harness sent something wrong: a
//     problem that fails the test; the write is still Unknown.
func (w *Workload) call(ctx context.Context, hc *http.Client, node int, in Input, requestID string) (Op, bool) {
	method, path := http.MethodGet, "/v1/titles/"+in.Title
	var body []byte
	switch in.Kind {
	case Create:
		method, path = http.MethodPost, "/v1/titles"
		body, _ = json.Marshal(fillcast.Title{ID: in.Title, Name: in.Value})
	case Update:
		method = http.MethodPut
		body, _ = json.Marshal(fillcast.Title{ID: in.Title, Name: in.Value})
	}
	// Not the run's context: an operation already called finishes (or
	// times out) on its own, so a write is never cut off half-sent.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.Timeout)
	defer cancel()
	var sent atomic.Bool
	rctx = httptrace.WithClientTrace(rctx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) { sent.Store(i.Err == nil) },
	})
	req, err := http.NewRequestWithContext(rctx, method, w.urls[node]+path, bytes.NewReader(body))
	if err != nil {
		panic(err) // a URL of ours
	}
	req.Header.Set("Authorization", "Bearer "+w.cfg.Token)
	req.Header.Set("X-Request-Id", requestID)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	op := Op{Node: node, Input: in, Call: w.hist.Now()}
	resp, err := hc.Do(req)
	var status int
	var msg []byte
	if err == nil {
		status = resp.StatusCode
		msg, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
	}
	op.Return = w.hist.Now()
	if in.Kind == Read {
		switch {
		case err == nil && status == http.StatusOK:
			var t fillcast.Title
			if err := json.Unmarshal(msg, &t); err != nil || t.Name == "" {
				w.problem("read %s via n%d: 200 with %q", in.Title, node+1, msg)
				w.hist.Drop("read: unreadable answer")
				return op, false
			}
			op.Output.Value = t.Name
			return op, true
		case err == nil && status == http.StatusNotFound:
			return op, true
		case err == nil:
			w.badStatus(status, in, node, msg)
			w.hist.Drop(fmt.Sprintf("read: %d", status))
		default:
			w.hist.Drop("read: no answer")
		}
		return op, false
	}
	switch {
	case err != nil && !sent.Load():
		w.hist.Drop(in.Kind.String() + ": not sent")
		return op, false
	case err == nil && status == http.StatusCreated && in.Kind == Create,
		err == nil && status == http.StatusOK && in.Kind == Update:
		op.Output.Result = OK
		return op, true
	case err == nil && status == http.StatusConflict && in.Kind == Create:
		op.Output.Result = Exists
		return op, true
	}
	op.Output.Result, op.Return = Unknown, Never
	op.Why = requestID
	if err != nil {
		op.Why += ": " + err.Error()
	} else {
		op.Why += fmt.Sprintf(": %d", status)
		w.badStatus(status, in, node, msg)
	}
	return op, true
}

// badStatus notes the statuses that mean the harness is wrong.
func (w *Workload) badStatus(status int, in Input, node int, msg []byte) {
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		w.problem("%s %s via n%d: %d %s", in.Kind, in.Title, node+1, status, bytes.TrimSpace(msg))
	}
}
