// Package lifecycle runs the long-lived parts of a Fillcast process in
// one written order. A part's constructor only builds it (no I/O, no
// goroutine); Run here opens each part in the order given, starts its
// loop under one errgroup before the next part opens, and when the
// context ends or any part fails, stops the parts in reverse order: the
// last one started is cancelled, waited for and closed before the one
// before it. A process's start and stop order is thus the one list it
// hands to Run (docs/design.md §4).
package lifecycle

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"
)

// Part is one part of a process. Every field but Name may be nil.
type Part struct {
	// Name names the part in errors.
	Name string
	// Open acquires what the part needs (files, sockets, a replayed
	// log) before the parts after it open. An error stops the start:
	// the parts already open are stopped in reverse order.
	Open func(ctx context.Context) error
	// Run is the part's work; it returns when ctx is done. Returning
	// early with nil means the part has finished its work; returning
	// an error stops every part.
	Run func(ctx context.Context) error
	// Close releases what Open acquired, once Run has returned.
	Close func() error
}

// Run opens and runs parts in order and returns when all of them have
// stopped: after ctx is done, or after one of them failed. The error is
// the first failure joined with any errors of Close.
func Run(ctx context.Context, parts ...Part) error {
	g, failed := errgroup.WithContext(ctx)
	type started struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	var (
		up      []started
		openErr error
	)
	for _, p := range parts {
		if err := failed.Err(); err != nil {
			break // stopped (or a part failed) while opening
		}
		if p.Open != nil {
			if err := p.Open(failed); err != nil {
				// An Open cut short by the stop is no failure of its own.
				if failed.Err() == nil || !errors.Is(err, context.Canceled) {
					openErr = fmt.Errorf("%s: %w", p.Name, err)
				}
				break
			}
		}
		// Each part has its own context, cancelled only in the reverse
		// walk below, so that stopping follows the written order.
		pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s := started{cancel, make(chan struct{})}
		up = append(up, s)
		if p.Run == nil {
			close(s.done)
			continue
		}
		g.Go(func() error {
			defer close(s.done)
			err := p.Run(pctx)
			if err != nil && pctx.Err() != nil && errors.Is(err, context.Canceled) {
				err = nil // stopped as asked
			}
			if err != nil {
				return fmt.Errorf("%s: %w", p.Name, err)
			}
			return nil
		})
	}
	if len(up) == len(parts) {
		<-failed.Done()
	}
	var closeErr error
	for i := len(up) - 1; i >= 0; i-- {
		up[i].cancel()
		<-up[i].done
		if c := parts[i].Close; c != nil {
			if err := c(); err != nil {
				closeErr = errors.Join(closeErr, fmt.Errorf("%s: close: %w", parts[i].Name, err))
			}
		}
	}
	return errors.Join(openErr, g.Wait(), closeErr)
}
