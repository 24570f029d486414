// Package httpserve runs a net/http server for as long as a context
// lives: the one way Fillcast's HTTP parts (a control-plane node's API,
// the origin) serve and stop. On the stop it lets requests in flight
// finish for a grace period, then cuts off whatever still runs, so the
// server never outlives its caller by more than that. LimitPerClient
// caps the connections one client address may hold open on a listener.
package httpserve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Serve serves hs on ln until ctx is done or serving fails, then shuts
// hs down: requests in flight get grace to finish, and connections still
// open after it are closed. It returns the error that stopped serving,
// or the shutdown's; nil after a clean stop.
func Serve(ctx context.Context, hs *http.Server, ln net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := hs.Shutdown(sctx)
	if err != nil {
		hs.Close() // grace is over: cut the requests still running off
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
