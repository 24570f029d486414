package apicall

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Retry calls f until it succeeds, answers a status other than 503 or
// 429, or within has passed; connection errors (status 0) are retried.
func Retry(ctx context.Context, within time.Duration, f func() (int, error)) error {
	deadline := time.Now().Add(within)
	for {
		code, err := f()
		if err == nil || (code != 0 && code != http.StatusServiceUnavailable && code != http.StatusTooManyRequests) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Beat is one appliance's heartbeat: where it goes, the appliance's
// credential and the body.
type Beat struct {
	URL, Credential string
	Body            []byte
}

// Heartbeater posts every appliance's heartbeat every gap, as the
// appliances' agents do, until Close; it counts the ones not answered
// 204 (under overload, how an unprotected node loses its fleet).
type Heartbeater struct {
	client       *http.Client
	gap          time.Duration
	sent, failed atomic.Int64
	lastErr      atomic.Pointer[string]
	cancel       context.CancelFunc
	wg           sync.WaitGroup
	once         sync.Once
}

// StartHeartbeats starts a goroutine a beat, each posting its first
// heartbeat at once and then every gap.
func StartHeartbeats(beats []Beat, gap time.Duration) *Heartbeater {
	ctx, cancel := context.WithCancel(context.Background())
	h := &Heartbeater{client: &http.Client{Timeout: 2 * time.Second}, gap: gap, cancel: cancel}
	for _, b := range beats {
		h.wg.Go(func() { h.loop(ctx, b) })
	}
	return h
}

func (h *Heartbeater) loop(ctx context.Context, b Beat) {
	t := time.NewTicker(h.gap)
	defer t.Stop()
	for {
		h.sent.Add(1)
		if _, err := Call(ctx, h.client, "POST", b.URL, b.Body, b.Credential, http.StatusNoContent, nil); err != nil && ctx.Err() == nil {
			h.failed.Add(1)
			e := err.Error()
			h.lastErr.Store(&e)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// LastError is why the latest failed heartbeat failed, or "".
func (h *Heartbeater) LastError() string {
	if e := h.lastErr.Load(); e != nil {
		return *e
	}
	return ""
}

// Counts returns the heartbeats sent and failed so far.
func (h *Heartbeater) Counts() (sent, failed int64) { return h.sent.Load(), h.failed.Load() }

// Close stops the heartbeats and waits for them; safe to call twice.
func (h *Heartbeater) Close() {
	h.once.Do(func() {
		h.cancel()
		h.wg.Wait()
	})
}
