package liststore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/filelist"
)

// fetch downloads key from the origin, checks it against digest and
// caches it. The check is part of the call the breaker counts: an origin
// that answers wrong lists is failing. A list the origin does not have
// is not a failure of the origin. It runs on parent's values but not
// its end (see Get), within Config.Timeout, until the Store is closed.
func (s *Store) fetch(parent context.Context, key, digest string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), s.cfg.Timeout)
	defer cancel()
	if l := s.life.Load(); l != nil {
		stop := context.AfterFunc(l.ctx, cancel)
		defer stop()
	}
	var body []byte
	var missing bool
	call := func(ctx context.Context) (err error) {
		if body, missing, err = s.download(ctx, key); err != nil || missing {
			return err
		}
		return check(body, key, digest)
	}
	var err error
	if s.d.Breaker != nil {
		err = s.d.Breaker.Do(ctx, call)
	} else {
		err = call(ctx)
	}
	switch {
	case err != nil:
		return nil, err
	case missing:
		return nil, fmt.Errorf("%w: the origin has no %s", ErrNotFound, key)
	}
	if c := s.cache.Load(); c != nil {
		c.Set(key, body, int64(len(body)))
		// The next Get finds it (sets are buffered).
		c.Wait()
	}
	return body, nil
}

// download GETs key from the origin, within MaxListBytes; missing is
// the origin's 404.
func (s *Store) download(ctx context.Context, key string) (body []byte, missing bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.Origin+"/"+key, nil)
	if err != nil {
		return nil, false, fmt.Errorf("liststore: GET %s: %w", key, err)
	}
	if s.d.AdminToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.d.AdminToken)
	}
	resp, err := s.d.Client.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrUnavailable, err) // a *url.Error names the URL
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, true, nil
	case resp.StatusCode != http.StatusOK:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, false, fmt.Errorf("%w: GET %s: the origin answered %s: %s", ErrUnavailable, key, resp.Status, strings.TrimSpace(string(msg)))
	case resp.ContentLength > s.cfg.MaxListBytes:
		return nil, false, fmt.Errorf("%w: %s is %d bytes, over the limit of %d", ErrBadList, key, resp.ContentLength, s.cfg.MaxListBytes)
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, s.cfg.MaxListBytes+1))
	switch {
	case ctx.Err() != nil:
		return nil, false, fmt.Errorf("%w: GET %s: %w", ErrUnavailable, key, ctx.Err())
	case err != nil:
		return nil, false, fmt.Errorf("%w: %s cut short after %d bytes: %w", ErrBadList, key, len(body), err)
	case int64(len(body)) > s.cfg.MaxListBytes:
		return nil, false, fmt.Errorf("%w: %s is over the limit of %d bytes", ErrBadList, key, s.cfg.MaxListBytes)
	}
	return body, false, nil
}

// check reports whether body is the list of digest: its SHA-256, and a
// list that decodes (what Decode checks: header, lines, order).
func check(body []byte, key, digest string) error {
	if got := filelist.Digest(body); got != digest {
		return fmt.Errorf("%w: %s: the origin's %d bytes have the digest %s", ErrBadList, key, len(body), got)
	}
	if _, err := filelist.Decode(bytes.NewReader(body), func(fillcast.File) error { return nil }); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrBadList, key, err)
	}
	return nil
}
