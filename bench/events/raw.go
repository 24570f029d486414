package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fillcast/fillcast/controlplane/events"
	"github.com/fillcast/fillcast/controlplane/stream"
)

// rawRound is one round of publishing straight to JetStream.
type rawRound struct {
	events   int64 // events in acknowledged messages
	messages int64 // acknowledged messages
	errors   int64 // publishes refused or acks that were errors
	timeouts int64 // acks not come within ackTimeout
	lastErr  error
	elapsed  time.Duration
}

func (r rawRound) rate() float64 { return float64(r.events) / r.elapsed.Seconds() }

// ackTimeout bounds the wait for one acknowledgement.
const ackTimeout = 30 * time.Second

// rawPublisher publishes the API's events straight to the stream
// through a node's JetStream context, asynchronously with at most window
// acknowledgements outstanding: the rate the stream takes without the
// HTTP API in front.
type rawPublisher struct {
	js     jetstream.JetStream
	window int
	batch  int
	users  []string     // the profiles the events are spread over
	n      atomic.Int64 // messages made so far, across rounds
}

// rawUsers returns n profile ids as long as the service's (rand.Text,
// 26 characters).
func rawUsers(n int) []string {
	us := make([]string, n)
	for i := range us {
		us[i] = fmt.Sprintf("P%025d", i)
	}
	return us
}

// inflight is a published message waiting for its acknowledgement.
type inflight struct {
	f      jetstream.PubAckFuture
	events int64
}

// run publishes for d, one message per event (perEvent) or per batch,
// then waits for the acknowledgements outstanding.
func (p *rawPublisher) run(d time.Duration, perEvent bool) rawRound {
	var r rawRound
	start := time.Now()
	deadline := start.Add(d)
	// The channel holds window-1 futures and the collector one more.
	pending := make(chan inflight, p.window-1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTimer(ackTimeout)
		defer t.Stop()
		for m := range pending {
			t.Reset(ackTimeout)
			select {
			case <-m.f.Ok():
				r.messages++
				r.events += m.events
			case err := <-m.f.Err():
				r.errors++
				r.lastErr = err
			case <-t.C:
				r.timeouts++
			}
		}
	}()
	n := p.batch
	if perEvent {
		n = 1
	}
	batch := make([]events.Event, n)
	var pubErrs int64
	var pubErr error
	for time.Now().Before(deadline) {
		data, id := p.message(batch, perEvent)
		f, err := p.js.PublishAsync(subject, data, jetstream.WithMsgID(id), jetstream.WithExpectStream(stream.Name))
		if err != nil {
			pubErrs++
			pubErr = err
			time.Sleep(backoff)
			continue
		}
		pending <- inflight{f: f, events: int64(n)}
	}
	close(pending)
	<-done
	r.elapsed = time.Since(start)
	r.errors += pubErrs
	if pubErr != nil {
		r.lastErr = pubErr
	}
	return r
}

// subject is the subject of viewers' batches.
const subject = stream.SubjectPrefix + "viewer"

// message fills batch with new progress events of one profile and
// returns its encoding and message id: the API's id of a profile's batch,
// or one of its own for a message per event.
func (p *rawPublisher) message(batch []events.Event, perEvent bool) ([]byte, string) {
	k := p.n.Add(1)
	user := p.users[int(k)%len(p.users)]
	now := time.Now().UTC()
	for j := range batch {
		batch[j] = events.Event{ID: "r" + strconv.FormatInt(k, 10) + "-" + strconv.Itoa(j), User: user, Title: title,
			Type: events.TypeProgress, TS: now, PositionS: float64(1 + (int(k)+j)%590), DurationS: 600}
	}
	id := "bench-e-" + strconv.FormatInt(k, 10)
	if !perEvent {
		id = batchMsgID(user, batch)
	}
	return events.AppendRecord(nil, batch), id
}

// runSync publishes batches for d from c goroutines, each waiting for
// its acknowledgement as the API's handlers do: the API's publishing
// without HTTP, JSON and the rest of the handler.
func (p *rawPublisher) runSync(d time.Duration, c int) rawRound {
	var mu sync.Mutex
	var r rawRound
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			batch := make([]events.Event, p.batch)
			for time.Now().Before(deadline) {
				data, id := p.message(batch, false)
				_, err := p.js.Publish(context.Background(), subject, data, jetstream.WithMsgID(id), jetstream.WithExpectStream(stream.Name))
				mu.Lock()
				if err != nil {
					r.errors++
					r.lastErr = err
				} else {
					r.messages++
					r.events += int64(len(batch))
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(backoff)
				}
			}
		})
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	return r
}

// batchMsgID is the message id the API gives a profile's batch
// (controlplane/discovery.go, discovery.Publish).
func batchMsgID(profile string, batch []events.Event) string {
	h := sha256.New()
	h.Write([]byte(profile))
	for i := range batch {
		h.Write([]byte{0})
		h.Write([]byte(batch[i].ID))
	}
	return "v-" + hex.EncodeToString(h.Sum(nil)[:16])
}

func (r rawRound) String() string {
	s := fmt.Sprintf("%d events in %d messages acknowledged in %v", r.events, r.messages, r.elapsed.Round(time.Millisecond))
	if r.errors+r.timeouts > 0 {
		s += fmt.Sprintf("; %d errors, %d ack timeouts (last: %v)", r.errors, r.timeouts, r.lastErr)
	}
	return s
}
