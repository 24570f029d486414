package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/client"
)

// sample is one title the demo makes with ffmpeg.
type sample struct {
	title   fillcast.Title
	video   string   // a lavfi video source
	seconds int      // duration
	audio   []string // language of each audio track (a sine tone each)
}

var samples = []sample{
	{fillcast.Title{ID: "big-sky", Name: "Big Sky Country", Description: "Colour bars drift across an endless test-pattern prairie.",
		Genres: []string{"documentary", "nature"}, Year: 2024, Cast: []string{"Ada Pattern", "Rex Tone"}, Maturity: fillcast.MaturityAll},
		"testsrc2=size=1280x720:rate=30", 40, []string{"eng"}},
	{fillcast.Title{ID: "night-train", Name: "Night Train to Mandelbrot", Description: "A detective rides a fractal express through the night.",
		Genres: []string{"crime", "mystery"}, Year: 2023, Cast: []string{"Ines Zoom", "Bo Iteration"}, Maturity: fillcast.Maturity16},
		"mandelbrot=size=1920x1080:rate=25", 24, []string{"eng"}},
	{fillcast.Title{ID: "two-tongues", Name: "Two Tongues", Description: "A comedy told twice, in English and in French.",
		Genres: []string{"comedy"}, Year: 2025, Cast: []string{"Claire Deux", "Sam Both"}, Maturity: fillcast.Maturity13},
		"smptehdbars=size=960x540:rate=25", 20, []string{"eng", "fra"}},
	{fillcast.Title{ID: "tiny-world", Name: "Tiny World", Description: "A short animated film about a very small planet.",
		Genres: []string{"animation", "family"}, Year: 2022, Cast: []string{"Pip Pixel"}, Maturity: fillcast.Maturity7},
		"life=size=640x360:rate=25:mold=10:ratio=0.4,format=yuv420p", 16, []string{"eng"}},
}

// setup configures the site and the plans, makes and ingests the sample
// titles that are not ready yet, signs the demo's viewers up and seeds
// their viewing events.
func (d *demo) setup(ctx context.Context) error {
	for _, s := range []fillcast.Site{
		{ID: "demo-ix", Kind: fillcast.SiteIX, Region: "local", Prefixes: []string{"198.51.100.0/24"}},
		{ID: "demo-isp", Kind: fillcast.SiteISP, Region: "local", Prefixes: []string{"127.0.0.0/8", "::1/128"}, Parent: "demo-ix", FillWindow: "00:00-23:59"},
	} {
		if err := d.sys.API.Do(ctx, http.MethodPut, "/v1/sites/"+s.ID, s, nil); err != nil {
			return fmt.Errorf("demo: site %s: %w", s.ID, err)
		}
	}
	if err := d.ensurePlans(ctx); err != nil {
		return err
	}
	for _, s := range d.samples {
		if err := d.ensureTitle(ctx, s); err != nil {
			return err
		}
	}
	if err := d.ensureViewers(ctx); err != nil {
		return err
	}
	if err := d.ensureSubscribed(ctx); err != nil {
		return err
	}
	return d.seedEvents(ctx)
}

// ensureTitle creates, renders and ingests a sample unless it is ready,
// and gives a title made by an earlier run the sample's maturity rating.
func (d *demo) ensureTitle(ctx context.Context, s sample) error {
	var cur fillcast.Title
	err := d.sys.API.Do(ctx, http.MethodGet, "/v1/titles/"+s.title.ID, nil, &cur)
	if err == nil && cur.Maturity != s.title.Maturity {
		cur.Maturity = s.title.Maturity
		if err := d.sys.API.Do(ctx, http.MethodPut, "/v1/titles/"+s.title.ID, cur, nil); err != nil {
			return fmt.Errorf("demo: rate %s %s: %w", s.title.ID, s.title.Maturity, err)
		}
	}
	switch {
	case err == nil && cur.Status == fillcast.StatusReady:
		fmt.Fprintf(d.out, "  %-12s ready\n", s.title.ID)
		return nil
	case client.StatusCode(err) == http.StatusNotFound:
		t := s.title
		t.Status = fillcast.StatusNew
		if err := d.sys.API.Do(ctx, http.MethodPost, "/v1/titles", t, nil); err != nil {
			return fmt.Errorf("demo: create %s: %w", t.ID, err)
		}
	case err != nil:
		return fmt.Errorf("demo: title %s: %w", s.title.ID, err)
	}
	src, err := d.render(ctx, s)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "  %-12s ingesting...", s.title.ID)
	job, err := d.upload(ctx, s.title.ID, src)
	if err != nil {
		return err
	}
	var status string
	err = d.sys.WaitFor(ctx, "job "+job, 5*time.Minute, func() bool {
		var j struct {
			Status string `json:"status"`
			Error  string `json:"error"`
		}
		d.sys.API.Do(ctx, http.MethodGet, "/v1/jobs/"+job, nil, &j) // a failed poll is polled again
		status = j.Status
		if j.Error != "" {
			status += ": " + j.Error
		}
		return j.Status == "done" || j.Status == "failed"
	})
	fmt.Fprintf(d.out, " %s\n", status)
	if err == nil && status != "done" {
		err = fmt.Errorf("demo: ingest of %s: %s", s.title.ID, status)
	}
	return err
}

// render makes a sample's source file with ffmpeg, once.
func (d *demo) render(ctx context.Context, s sample) (string, error) {
	path := filepath.Join(d.dir, "sources", s.title.ID+".mp4")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	os.MkdirAll(filepath.Dir(path), 0o755)
	dur := fmt.Sprint(s.seconds)
	args := []string{"-v", "error", "-y", "-f", "lavfi", "-i", s.video + ",trim=duration=" + dur}
	for i := range s.audio {
		args = append(args, "-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%d:duration=%s", 220*(i+1)+110, dur))
	}
	args = append(args, "-map", "0:v")
	for i, lang := range s.audio {
		args = append(args, "-map", fmt.Sprintf("%d:a", i+1), fmt.Sprintf("-metadata:s:a:%d", i), "language="+lang)
	}
	args = append(args, "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", path+".tmp.mp4")
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("demo: render %s (is ffmpeg installed? make demo installs it): %v: %s", s.title.ID, err, bytes.TrimSpace(out))
	}
	return path, os.Rename(path+".tmp.mp4", path)
}

// upload posts src to the ingest API as a browser form would.
func (d *demo) upload(ctx context.Context, title, src string) (string, error) {
	f, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	defer f.Close()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		part, err := mw.CreateFormFile("file", filepath.Base(src))
		if err == nil {
			_, err = io.Copy(part, f)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequestWithContext(ctx, "POST", d.sys.ControlPlaneURL+"/v1/titles/"+title+"/ingest", pr)
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("demo: upload %s: %w", title, err)
	}
	defer resp.Body.Close()
	var j struct {
		ID    string `json:"id"`
		Error string `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&j)
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("demo: upload %s: %s %s", title, resp.Status, j.Error)
	}
	return j.ID, nil
}

// seedEvents records a little viewing so recommendations and "continue
// watching" have something to show: each demo viewer, signed in as the
// web pages are, finished some samples and is part-way through one more.
// Events are a viewer's own: the control plane files them under the
// session's profile.
func (d *demo) seedEvents(ctx context.Context) error {
	now := time.Now()
	for u, v := range d.viewers {
		var batch []map[string]any
		n := min(2+u%2, len(d.samples))
		for i := range n {
			s := d.samples[(u+i)%len(d.samples)]
			kind, pos := "complete", float64(s.seconds)
			if i == n-1 {
				kind, pos = "progress", float64(s.seconds)/3
			}
			batch = append(batch, map[string]any{"id": fmt.Sprintf("seed-%d-%d", u, i), "title": s.title.ID, "type": kind, "position_s": pos,
				"duration_s": float64(s.seconds), "ts": now.Add(-time.Duration(n-i) * time.Minute)})
		}
		c, done, err := d.signIn(ctx, v)
		if err != nil {
			return err
		}
		err = c.Do(ctx, http.MethodPost, "/v1/events", batch, nil)
		done()
		if err != nil {
			return fmt.Errorf("demo: seed events of %s: %w", v.Email, err)
		}
	}
	return nil
}

// banner prints where to look.
func (d *demo) banner() {
	path := d.keys.SignPath("big-sky", time.Now().Add(24*time.Hour), netip.Prefix{})
	cp := d.sys.ControlPlaneURL
	fmt.Fprintf(d.out, `
Fillcast demo is running (data in %s). Ctrl-C stops it.

  web UI          %[2]s/        (sign in, catalog, player, account; operator page at %[2]s/#/ops)
  control plane   %[2]s        (API)
  origin          %[3]s
  flash1          %[4]s
  storage1        %[5]s

Viewer accounts (sign in on the web UI; passwords kept in %[1]s/viewer-accounts):
`, d.dir, cp, d.sys.OriginURL, d.sys.Appliances["flash1"], d.sys.Appliances["storage1"])
	for _, v := range d.viewers {
		desc := v.Plan
		for _, p := range plans {
			if p.ID == v.Plan {
				desc = fmt.Sprintf("%s: up to %dp, %d %s, %s", p.Name, p.MaxHeight, p.MaxStreams, plural(p.MaxStreams, "screen", "screens"),
					map[bool]string{true: "downloads", false: "no downloads"}[p.Downloads])
			}
		}
		fmt.Fprintf(d.out, "  %-24s %-18s %s\n", v.Email, v.Password, desc)
	}
	email, password := "", ""
	if n := len(d.viewers); n > 0 {
		email, password = d.viewers[n-1].Email, d.viewers[n-1].Password
	}
	fmt.Fprintf(d.out, `
Try (a viewer's calls need a session: POST /v1/sessions answers its token):
  TOKEN=$(curl -s --json '{"email":"%[2]s","password":"%[3]s"}' %[1]s/v1/sessions | sed -E 's/.*"token":"([^"]+)".*/\1/')
  curl -s -H "Authorization: Bearer $TOKEN" '%[1]s/v1/playback/big-sky?protocol=hls'
  curl -s -H "Authorization: Bearer $TOKEN" '%[1]s/v1/search?q=nigth+trian'
  curl -s -H "Authorization: Bearer $TOKEN" '%[1]s/v1/recommendations'
  curl -s -H "Authorization: Bearer $TOKEN" '%[1]s/v1/account'
  curl -s '%[1]s/v1/plans'
  curl -s -H "Authorization: Bearer $TOKEN" '%[1]s/v1/subscriptions/current'
  curl -s -H "Authorization: Bearer $TOKEN" '%[1]s/v1/invoices'
  fillcast billing verify --controlplane %[1]s --token %[6]s

Payments go to the built-in test provider: card 4242424242424242 pays,
4000000000000002 is declined, 4000000000000341 is declined on every charge.
  curl -s -H 'Authorization: Bearer %[6]s' '%[1]s/v1/fleet'
  curl -sI '%[4]s%[5]s/master.m3u8'
  ffplay '%[4]s%[5]s/master.m3u8'

Admin token: %[6]s   (Authorization: Bearer ...; the operator page asks for it)

Every link here is plain HTTP on loopback: the demo shows the parts, not
the transport. A real deployment runs the control plane, the origin and the
appliances with --tls-cert, --tls-key and --tls-ca (fillcast certs makes a
lab CA); the tests run that path.
`, cp, email, password, d.sys.Appliances["flash1"], path, d.token)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
