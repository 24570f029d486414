// Package fill is the appliance's fill executor: it fetches the
// appliance's fill manifest from the control plane, pins the planned
// objects so pull-through traffic cannot evict them (objects no longer
// planned go back to ordinary eviction, where hot ones stay), and fetches
// what is missing only inside the site's fill window (local time), within
// a bandwidth cap, from a site peer before the origin. A file that fails
// the catalog's checksum is dropped and fetched again later; after a
// restart the executor diffs the manifest against the disk again and goes
// on where it stopped.
package fill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance/cache"
	"golang.org/x/time/rate"
)

// Cache is what the executor needs of the appliance's cache.
type Cache interface {
	Has(key string) bool
	Pin(keys map[string]bool)
	Store(ctx context.Context, key string, f *cache.Fetched, sha256hex string) (int64, error)
}

// Source fetches an object: site peers first, then the origin.
type Source interface {
	Fetch(ctx context.Context, key string) (*cache.Fetched, error)
}

// DefaultWindow is the fill window of a site that names none: the hours
// after midnight when a residential ISP's links are quiet.
const DefaultWindow = "02:00-14:00"

// Config configures an Executor.
type Config struct {
	// ID is the appliance id. Required.
	ID string
	// ControlPlanes are the control-plane URLs. Required.
	ControlPlanes []string
	// AdminToken authenticates manifest requests.
	AdminToken string
	// RateBits caps fill traffic in bits per second. Zero means 1.2e9.
	RateBits float64
	// Poll is how often the manifest is fetched. Zero means 30 s.
	Poll time.Duration
	// Parallel is how many files are fetched at once, within the one
	// rate cap: per-file latency (a peer asked first, then the origin)
	// would otherwise keep a catalog of small files far under the cap.
	// Zero means 4.
	Parallel int
	// Client fetches manifests; nil means one with a 10 s timeout.
	Client *http.Client
	// Now is the clock the window is judged by; nil means time.Now.
	Now func() time.Time
}

// Validate fills defaults.
func (c *Config) Validate() error {
	if c.ID == "" || len(c.ControlPlanes) == 0 {
		return errors.New("fill: appliance id and control-plane URLs are required")
	}
	if c.RateBits <= 0 {
		c.RateBits = 1.2e9
	}
	if c.Poll <= 0 {
		c.Poll = 30 * time.Second
	}
	if c.Parallel <= 0 {
		c.Parallel = 4
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Manifest is the control plane's answer (GET /v1/appliances/{id}/manifest).
type Manifest struct {
	Appliance  string          `json:"appliance"`
	Version    uint64          `json:"version"`
	FillWindow string          `json:"fill_window"`
	Timezone   string          `json:"timezone"`
	Titles     []ManifestTitle `json:"titles"`

	etag string // the control plane's ETag of it, for If-None-Match
}

// ManifestTitle is a planned title with its files.
type ManifestTitle struct {
	ID    string          `json:"id"`
	Files []fillcast.File `json:"files"`
}

// Status is the executor's progress, shown in the appliance's /v1/status.
type Status struct {
	ManifestVersion uint64 `json:"manifest_version"`
	WindowOpen      bool   `json:"window_open"`
	Window          string `json:"window"`
	PlannedFiles    int    `json:"planned_files"`
	PlannedBytes    int64  `json:"planned_bytes"`
	PresentFiles    int    `json:"present_files"`
	PresentBytes    int64  `json:"present_bytes"`
	FilledBytes     int64  `json:"filled_bytes"`
	// OutsideWindowBytes are fill bytes read while the window was
	// closed: a read that was under way when the window closed. A fill
	// stops at the first read after the close, so this stays near zero;
	// benchmarks check that it does.
	OutsideWindowBytes int64  `json:"filled_outside_window_bytes"`
	Failures           int64  `json:"failures"`
	LastError          string `json:"last_error,omitempty"`
}

// Executor runs fills until its context ends.
type Executor struct {
	cfg     Config
	cache   Cache
	src     Source
	log     *slog.Logger
	limiter *rate.Limiter

	mu       sync.Mutex
	manifest *Manifest
	status   Status
	complete []string // titles of the manifest present in full, sorted
	kick     chan struct{}
}

// New returns an Executor.
func New(cfg Config, c Cache, src Source, log *slog.Logger) (*Executor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	bytesPerSec := cfg.RateBits / 8
	return &Executor{
		cfg: cfg, cache: c, src: src, log: log,
		limiter: rate.NewLimiter(rate.Limit(bytesPerSec), int(min(bytesPerSec, 4<<20))),
		kick:    make(chan struct{}, 1),
	}, nil
}

// Complete returns the version of the manifest in force (0: none) and
// its titles whose every file is on disk, as of the last pass, sorted.
func (e *Executor) Complete() (version uint64, titles []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.manifest == nil {
		return 0, nil
	}
	return e.manifest.Version, e.complete
}

// Status returns the progress so far.
func (e *Executor) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.status
}

// Run polls the manifest and fills until ctx is done.
func (e *Executor) Run(ctx context.Context) {
	for {
		if m, err := e.fetchManifest(ctx); err != nil {
			e.setError(err)
		} else if m != nil {
			e.adopt(m)
		}
		e.fillWhileOpen(ctx)
		e.recount()
		select {
		case <-ctx.Done():
			return
		case <-time.After(e.cfg.Poll):
		case <-e.kick:
		}
	}
}

// Poke makes the executor fetch the manifest now.
func (e *Executor) Poke() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

func (e *Executor) setError(err error) {
	e.mu.Lock()
	e.status.LastError = err.Error()
	e.mu.Unlock()
}

// errNoManifest is the control plane's 404: nothing is planned yet.
var errNoManifest = errors.New("fill: no manifest")

// errNotModified is the control plane's 304: the manifest in force is
// the current one.
var errNotModified = errors.New("fill: manifest not modified")

// fetchManifest asks each control plane in turn. It returns nil, nil when
// none is planned or the one in force is unchanged.
func (e *Executor) fetchManifest(ctx context.Context) (*Manifest, error) {
	var errs []error
	for _, base := range e.cfg.ControlPlanes {
		m, err := e.getManifest(ctx, strings.TrimSuffix(base, "/"))
		if err == nil {
			return m, nil
		}
		if errors.Is(err, errNoManifest) || errors.Is(err, errNotModified) {
			return nil, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("fill: no control plane answered: %w", errors.Join(errs...))
}

func (e *Executor) getManifest(ctx context.Context, base string) (*Manifest, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/appliances/"+url.PathEscape(e.cfg.ID)+"/manifest", nil)
	if err != nil {
		return nil, fmt.Errorf("fill: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+e.cfg.AdminToken)
	e.mu.Lock()
	if e.manifest != nil && e.manifest.etag != "" {
		req.Header.Set("If-None-Match", e.manifest.etag)
	}
	e.mu.Unlock()
	resp, err := e.cfg.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fill: %s: %w", base, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotFound:
		return nil, errNoManifest
	case http.StatusNotModified:
		return nil, errNotModified
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("fill: %s answered %s: %s", base, resp.Status, strings.TrimSpace(string(msg)))
	}
	var m Manifest
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&m); err != nil {
		return nil, fmt.Errorf("fill: decode manifest: %w", err)
	}
	if err := m.validate(e.cfg.ID); err != nil {
		return nil, err
	}
	m.etag = resp.Header.Get("ETag")
	return &m, nil
}

// validate refuses a manifest the executor cannot act on safely.
func (m *Manifest) validate(id string) error {
	if m.Appliance != id {
		return fmt.Errorf("fill: manifest is for %q, not %q", m.Appliance, id)
	}
	for _, t := range m.Titles {
		if err := fillcast.ValidateTitleID(t.ID); err != nil {
			return fmt.Errorf("fill: manifest: %w", err)
		}
		for _, f := range t.Files {
			if err := fillcast.ValidateObjectPath(f.Path); err != nil {
				return fmt.Errorf("fill: manifest: title %s: %w", t.ID, err)
			}
		}
	}
	_, _, err := window(m.FillWindow, m.Timezone)
	return err
}
