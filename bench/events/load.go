package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast/bench/internal/apicall"
)

// apiRound is one round of viewers posting batches over HTTP.
type apiRound struct {
	accepted int64 // events in 202 answers
	ok       int64 // 202 answers
	s503     int64
	s429     int64
	other    int64 // any other status
	failed   int64 // no answer: connection errors
	elapsed  time.Duration
}

func (r apiRound) rate() float64 { return float64(r.accepted) / r.elapsed.Seconds() }

// apiLoad is the Fillcast side: clients posting batches to the nodes
// round robin over keep-alive connections.
type apiLoad struct {
	nodes   []string // base URLs
	viewers []viewer
	clients int
	batch   int
	client  *http.Client
	// seq numbers each client's batches across rounds, so that every
	// event id is new.
	seq []int
}

// backoff is how long a client waits after an answer other than 202
// before it sends its next batch (the API's Retry-After is 1 s; waiting
// that long would hide how often it happens).
const backoff = 100 * time.Millisecond

// run posts batches for d and returns the round's counts; requests in
// flight at the end are waited for and counted.
func (l *apiLoad) run(d time.Duration) apiRound {
	var r apiRound
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for c := range l.clients {
		wg.Go(func() { l.clientLoop(c, deadline, &r) })
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	return r
}

func (l *apiLoad) clientLoop(c int, deadline time.Time, r *apiRound) {
	token := "Bearer " + l.viewers[c%len(l.viewers)].token
	for k := c; time.Now().Before(deadline); k++ {
		l.seq[c]++
		body := appendBatch(nil, c, l.seq[c], l.batch)
		req, _ := http.NewRequest("POST", l.nodes[k%len(l.nodes)]+"/v1/events", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", token)
		resp, err := l.client.Do(req)
		if err != nil {
			atomic.AddInt64(&r.failed, 1)
			time.Sleep(backoff)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusAccepted:
			var a struct {
				Accepted int64 `json:"accepted"`
			}
			json.Unmarshal(b, &a)
			atomic.AddInt64(&r.ok, 1)
			atomic.AddInt64(&r.accepted, a.Accepted)
			continue
		case http.StatusServiceUnavailable:
			atomic.AddInt64(&r.s503, 1)
		case http.StatusTooManyRequests:
			atomic.AddInt64(&r.s429, 1)
		default:
			atomic.AddInt64(&r.other, 1)
		}
		time.Sleep(backoff)
	}
}

// appendBatch appends the JSON of client c's batch seq: n progress
// events of the title with ids unique to the client and batch.
func appendBatch(b []byte, c, seq, n int) []byte {
	b = append(b, '[')
	for j := range n {
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":"c`...)
		b = strconv.AppendInt(b, int64(c), 10)
		b = append(b, '-')
		b = strconv.AppendInt(b, int64(seq), 10)
		b = append(b, '-')
		b = strconv.AppendInt(b, int64(j), 10)
		b = append(b, `","title":"`+title+`","type":"progress","position_s":`...)
		b = strconv.AppendInt(b, int64(1+(seq+j)%590), 10)
		b = append(b, `,"duration_s":600}`...)
	}
	return append(b, ']')
}

// prober measures how long a progress event takes from its POST to one
// node to the history another node answers.
type prober struct {
	post, read string // base URLs: where events go, where history is read
	viewers    []viewer
	client     *http.Client
	every      time.Duration // between one probe's events
	poll       time.Duration // between history reads
	giveUp     time.Duration // a position not seen by then is missed
	pos        []int         // each probe's last position, across rounds

	mu     sync.Mutex
	lags   []time.Duration
	missed int // posted, never seen within giveUp
	failed int // the POST was not answered 202
}

// run runs every probe until ctx ends; a position posted before the end
// is still waited for.
func (p *prober) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range p.viewers {
		wg.Go(func() { p.probe(ctx, i) })
	}
	wg.Wait()
}

func (p *prober) probe(ctx context.Context, i int) {
	for ctx.Err() == nil {
		sent := time.Now()
		switch lag, err := p.sample(i); {
		case errors.Is(err, errNotSeen):
			p.count(&p.missed)
		case err != nil:
			p.count(&p.failed)
		default:
			p.mu.Lock()
			p.lags = append(p.lags, lag)
			p.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(sent.Add(p.every))):
		}
	}
}

var errNotSeen = errors.New("position not in the history")

// sample posts probe i's next position and returns how long until the
// history shows it.
func (p *prober) sample(i int) (time.Duration, error) {
	token := p.viewers[i].token
	p.pos[i]++
	pos := p.pos[i]
	body := []byte(`[{"id":"probe` + strconv.Itoa(i) + `-` + strconv.Itoa(pos) + `","title":"` + title +
		`","type":"progress","position_s":` + strconv.Itoa(pos) + `,"duration_s":100000}]`)
	sent := time.Now()
	if _, err := apicall.Call(context.Background(), p.client, "POST", p.post+"/v1/events", body, token, http.StatusAccepted, nil); err != nil {
		return 0, err
	}
	if lag, ok := p.wait(token, pos, sent); ok {
		return lag, nil
	}
	return 0, errNotSeen
}

func (p *prober) count(n *int) {
	p.mu.Lock()
	*n++
	p.mu.Unlock()
}

// wait reads the history until it shows the title at pos, and returns
// the time since sent.
func (p *prober) wait(token string, pos int, sent time.Time) (time.Duration, bool) {
	for time.Since(sent) < p.giveUp {
		var h struct {
			ContinueWatching []struct {
				Title     string  `json:"title"`
				PositionS float64 `json:"position_s"`
			} `json:"continue_watching"`
		}
		if _, err := apicall.Call(context.Background(), p.client, "GET", p.read+"/v1/history", nil, token, http.StatusOK, &h); err == nil {
			for _, e := range h.ContinueWatching {
				if e.Title == title && e.PositionS >= float64(pos) {
					return time.Since(sent), true
				}
			}
		}
		time.Sleep(p.poll)
	}
	return 0, false
}
