package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/fillcast/fillcast/bench/loadtest/targets"
	"github.com/fillcast/fillcast/controlplane/client"
)

func runTargets(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("targets", "--controlplane URL --session TOKEN [--titles N] [--sessions N] [--out FILE]", stderr)
	cfg := targets.DefaultConfig()
	fs.StringVar(&cfg.ControlPlane, "controlplane", "", "control-plane base `URL` to read titles and playback URLs from")
	fs.IntVar(&cfg.Titles, "titles", cfg.Titles, "most popular ready titles to cover")
	fs.IntVar(&cfg.Sessions, "sessions", cfg.Sessions, "playback sessions in the list")
	fs.IntVar(&cfg.MaxSegments, "max-segments", cfg.MaxSegments, "most segments one session fetches")
	fs.Float64Var(&cfg.DashShare, "dash-share", cfg.DashShare, "share of DASH sessions (negative: HLS only)")
	fs.Float64Var(&cfg.ZipfS, "zipf", cfg.ZipfS, "popularity skew over titles: weight 1/rank^zipf")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed (same seed, same list)")
	fs.StringVar(&cfg.Session, "session", os.Getenv("FILLCAST_SESSION"), "a viewer's session `TOKEN` (fcs.…, from POST /v1/sessions), which playback needs: sent with the playback calls made here and written into the list's (default $FILLCAST_SESSION)")
	out := fs.String("out", "", "write the targets to `FILE` instead of stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return flagError(err, targetsFlags)
	}
	// Validate checked the URL as the client does.
	cp, err := client.New(client.Config{URLs: []string{cfg.ControlPlane}}, client.Deps{Token: cfg.Session})
	if err != nil {
		return err
	}
	defer cp.Close()
	ts, sum, err := targets.Generate(ctx, cfg, targets.Deps{ControlPlane: cp})
	if st := client.StatusCode(err); cfg.Session == "" && (st == http.StatusUnauthorized || st == http.StatusForbidden) {
		return fmt.Errorf("%w (playback needs a viewer's session: sign in with POST /v1/sessions and give the token with --session)", err)
	}
	if err != nil {
		return err
	}
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("targets: %w", err)
		}
		defer f.Close()
		w = f
	}
	if err := targets.Write(w, ts); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "targets: %d requests: %d sessions over %d titles (%v); tokens valid until %s (%s from now)\n",
		len(ts), sum.Sessions, sum.Titles, sum.Kinds, sum.ExpiresAt.Format(time.RFC3339), time.Until(sum.ExpiresAt).Round(time.Second))
	return nil
}

// targetsFlags names the flag that sets each targets.Config field, for
// errors.
var targetsFlags = map[string]string{
	"ControlPlane": "controlplane", "Titles": "titles", "Sessions": "sessions", "MaxSegments": "max-segments",
	"DashShare": "dash-share", "ZipfS": "zipf", "Seed": "seed", "Session": "session",
}
