package tlsconf

import (
	"context"
	"errors"
	"time"

	"github.com/fillcast/fillcast/appliance/tlsconf/ocspstaple"
	"golang.org/x/crypto/ocsp"
)

// staple keeps an OCSP response stapled while the certificate has a
// responder: fetched at start, again half-way through each response's
// validity, after failures with a doubling back-off. The last good
// response is served until its NextUpdate and then no longer; a Revoked
// or Unknown answer unstaples at once.
func (s *Server) staple(ctx context.Context) {
	var next time.Time // of the next fetch; zero: now
	failures := 0
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		cur := s.cur.Load()
		now := s.d.Now()
		if cur.staple != nil && !now.Before(cur.staple.NextUpdate) {
			s.log.Warn("tlsconf: the OCSP staple reached its NextUpdate without a fresh one: no longer stapling",
				"responder", cur.responder, "next_update", cur.staple.NextUpdate, "last_error", s.lastOCSPError())
			s.setStaple(cur, nil)
			continue
		}
		wait := time.Duration(-1) // until the certificate changes
		if cur.responder != "" && cur.issuer != nil {
			if !now.Before(next) {
				next = s.fetch(ctx, cur, &failures)
				continue
			}
			wait = next.Sub(now)
			if cur.staple != nil {
				wait = min(wait, cur.staple.NextUpdate.Sub(now))
			}
		}
		var tick <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-s.certChanged:
			next, failures = time.Time{}, 0
		case <-tick:
		}
		timer.Stop()
	}
}

// fetch asks the responder once, staples a good answer and returns when
// to fetch next.
func (s *Server) fetch(ctx context.Context, cur *served, failures *int) time.Time {
	fctx, cancel := context.WithTimeout(ctx, s.cfg.OCSPTimeout)
	r, err := ocspstaple.Fetch(fctx, s.d.HTTP, cur.responder, cur.leaf, cur.issuer, s.d.Now())
	cancel()
	now := s.d.Now()
	if err != nil {
		if ctx.Err() != nil {
			return now
		}
		*failures++
		msg := err.Error()
		s.ocspErr.Store(&msg)
		wait := ocspstaple.Backoff(*failures, s.cfg.OCSPRetry, s.cfg.OCSPRetryMax)
		if errors.Is(err, ocspstaple.ErrNotGood) {
			s.log.Error("tlsconf: the OCSP responder says the certificate is not good: not stapling", "responder", cur.responder, "err", err)
			s.setStaple(cur, nil)
		} else {
			s.log.Warn("tlsconf: OCSP fetch failed", "responder", cur.responder, "err", err,
				"stapled", cur.staple != nil, "retry_in", wait)
		}
		return now.Add(wait)
	}
	*failures = 0
	empty := ""
	s.ocspErr.Store(&empty)
	if s.setStaple(cur, r) {
		s.log.Info("tlsconf: OCSP response stapled", "responder", cur.responder, "this_update", r.ThisUpdate, "next_update", r.NextUpdate)
	}
	return ocspstaple.Refresh(r, now, s.cfg.OCSPMinRefresh)
}

// setStaple serves cur's certificate with r stapled (nil: none), unless
// the certificate changed meanwhile. It reports whether it did.
func (s *Server) setStaple(cur *served, r *ocsp.Response) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur.Load() != cur {
		return false
	}
	next := *cur
	cert := *cur.cert
	cert.OCSPStaple = nil
	if r != nil {
		cert.OCSPStaple = r.Raw
	}
	next.cert, next.staple = &cert, r
	s.cur.Store(&next)
	return true
}

func (s *Server) lastOCSPError() string {
	if p := s.ocspErr.Load(); p != nil {
		return *p
	}
	return ""
}
