package appliance

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"
)

// handle notes new playback sessions (for Drain) and serves the request.
func (a *Appliance) handle(ctx *fasthttp.RequestCtx) {
	if p := ctx.URI().PathOriginal(); bytes.HasSuffix(p, masterPlaylist) || bytes.HasSuffix(p, dashManifest) {
		a.lastSession.Store(time.Now().UnixNano())
	}
	a.srv.Handle(ctx)
}

var (
	masterPlaylist = []byte("/master.m3u8")
	dashManifest   = []byte(".mpd")
)

// Drain prepares a planned stop: the next heartbeat reports "draining",
// so steering stops sending new players here, and Drain returns once the
// control plane has accepted it and no new playback session has started
// for DrainQuiet (players already watching keep fetching segments
// meanwhile), or after DrainTimeout, or when ctx is done. Without a
// control plane there is nobody to tell, and it returns at once. The
// caller then cancels Serve, which finishes the in-flight responses.
func (a *Appliance) Drain(ctx context.Context) error {
	if a.agent == nil {
		a.log.Info("appliance: draining: no control plane to tell; stopping")
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.DrainTimeout)
	defer cancel()
	acked := a.agent.Acked()
	a.agent.SetDraining()
	a.log.Info("appliance: draining: reporting draining and waiting for steering to move new players away",
		"quiet", a.cfg.DrainQuiet, "timeout", a.cfg.DrainTimeout)
	var since time.Time // when the control plane accepted a draining heartbeat
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		now := time.Now()
		if since.IsZero() && a.agent.Acked() > acked {
			since = now
		}
		if !since.IsZero() {
			last := time.Unix(0, a.lastSession.Load())
			if last.Before(since) {
				last = since
			}
			if now.Sub(last) >= a.cfg.DrainQuiet {
				a.log.Info("appliance: drained: no new player for the quiet period", "quiet", a.cfg.DrainQuiet)
				return nil
			}
		}
		select {
		case <-ctx.Done():
			err := fmt.Errorf("appliance: drain: %w", ctx.Err())
			if since.IsZero() {
				err = fmt.Errorf("appliance: drain: no control plane accepted the draining heartbeat: %w", ctx.Err())
			}
			a.log.Warn("appliance: drain cut short; stopping anyway", "err", err)
			return err
		case <-t.C:
		}
	}
}
