// Package fill is the appliance's fill executor: it fetches the
// appliance's fill manifest from the control plane (through
// controlplane/client, with its ETag, so an unchanged one costs a 304),
// pins the planned
// objects so pull-through traffic cannot evict them (objects no longer
// planned go back to ordinary eviction, where hot ones stay), and fetches
// what is missing only inside the site's fill window (local time), within
// a bandwidth cap, from a site peer before the origin. A file that fails
// the catalog's checksum is dropped and fetched again later; after a
// restart the executor diffs the manifest against the disk again and goes
// on where it stopped.
//
// The manifest names each title's files by the digest of its file list
// (package filelist), not file by file: the executor fetches each list
// once (site peers, then the origin, like any object; the control plane
// for a list not published yet), keeps it in the cache, pinned with the
// title, verified against its digest, and walks it from there whenever it
// needs the title's files. It keeps only a title's summary in memory,
// and a bounded number of decoded lists (Config.ListFiles). A changed
// digest is a changed manifest (its ETag changes): the new list is
// fetched, and once it is stored the files only the old one had are
// unpinned; until then the title's old list and files stay pinned. The
// lists are walked again only when the manifest, a list or the planned
// objects on disk changed. The manifest also lists the renditions of the
// whole catalog, which the executor hands on (Deps.OnCatalog) for the
// server to enforce playback tokens' limits with.
package fill

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/fillcast/fillcast/controlplane/client"
	"github.com/fillcast/fillcast/filelist"
	"golang.org/x/time/rate"
)

// ControlPlane is what the executor needs of the control plane.
type ControlPlane interface {
	// Manifest returns the appliance's manifest and its ETag, or nil and
	// etag while the one with that ETag is current. An error whose
	// client.StatusCode is 404 says nothing is planned yet.
	Manifest(ctx context.Context, applianceID, etag string) (*fillcast.Manifest, string, error)
}

var _ ControlPlane = (*client.Client)(nil)

// FileLists serves titles' file lists: the control plane, which has a
// list before it is published at the origin.
type FileLists interface {
	// FileList returns the encoded list of title's files whose digest
	// is digest.
	FileList(ctx context.Context, title, digest string) ([]byte, error)
}

var _ FileLists = (*client.Client)(nil)

// Cache is what the executor needs of the appliance's cache.
type Cache interface {
	Has(key string) bool
	// Generations change when objects enter or leave the cache (pinned:
	// pinned ones), so that the executor walks the lists again only then.
	Generations() (all, pinned uint64)
	// Peek returns a stored object (a file list, to walk it) without
	// counting it as traffic.
	Peek(key string) (cache.Hit, bool)
	Pin(keys map[string]bool)
	Store(ctx context.Context, key string, f *cache.Fetched, sha256hex string) (int64, error)
	// Purge removes the objects whose keys start with prefix (a list
	// that does not decode).
	Purge(prefix string) int
	// Capacity is the bytes the cache's healthy directories hold: less
	// after a disk failed.
	Capacity() int64
}

var _ Cache = (*cache.Cache)(nil)

// Source fetches an object: site peers first, then the origin.
type Source interface {
	Fetch(ctx context.Context, key string) (*cache.Fetched, error)
}

// DefaultWindow is the fill window of a site that names none: the hours
// after midnight when a residential ISP's links are quiet.
const DefaultWindow = "02:00-14:00"

// Config configures an Executor. Zero values mean the defaults named.
type Config struct {
	// ID is the appliance id. Required.
	ID string
	// RateBits caps fill traffic in bits per second. Zero means 1.2e9.
	RateBits float64
	// Poll is how often the manifest is fetched. Zero means 30 s.
	Poll time.Duration
	// Parallel is how many files are fetched at once, within the one
	// rate cap: per-file latency (a peer asked first, then the origin)
	// would otherwise keep a catalog of small files far under the cap.
	// Zero means 4.
	Parallel int
	// ListFiles bounds the files of the decoded file lists kept in
	// memory between walks (about 150 bytes a file); a list not kept is
	// read from the cache again at each walk, and one longer than this
	// is streamed. Zero means 250,000.
	ListFiles int
	// Now is the clock the window is judged by (a simulation compresses
	// it); nil means time.Now.
	Now func() time.Time
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	switch {
	case c.ID == "":
		return fillcast.ConfigErrorf("fill", "ID", "required: the appliance's id")
	case c.RateBits < 0:
		return fillcast.ConfigErrorf("fill", "RateBits", "%v is negative", c.RateBits)
	case c.Poll < 0:
		return fillcast.ConfigErrorf("fill", "Poll", "%v is negative", c.Poll)
	case c.Parallel < 0:
		return fillcast.ConfigErrorf("fill", "Parallel", "%d is negative", c.Parallel)
	case c.ListFiles < 0:
		return fillcast.ConfigErrorf("fill", "ListFiles", "%d is negative", c.ListFiles)
	}
	return nil
}

// DefaultConfig returns a Config with every default filled in but the
// appliance's ID and the clock.
func DefaultConfig() Config {
	return Config{RateBits: 1.2e9, Poll: 30 * time.Second, Parallel: 4, ListFiles: 250_000}
}

// withDefaults fills the zero fields; c has passed Validate.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.RateBits = cmp.Or(c.RateBits, d.RateBits)
	c.Poll = cmp.Or(c.Poll, d.Poll)
	c.Parallel = cmp.Or(c.Parallel, d.Parallel)
	c.ListFiles = cmp.Or(c.ListFiles, d.ListFiles)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Deps are what an Executor works with besides its Config.
type Deps struct {
	// ControlPlane serves the manifests. Required.
	ControlPlane ControlPlane
	// Cache is what the fills go into. Required.
	Cache Cache
	// Source fetches the files and their lists. Required.
	Source Source
	// FileLists serves a file list that Source has not (yet), or not
	// intact; nil: none but Source's.
	FileLists FileLists
	// Log receives the executor's progress; nil discards it.
	Log *slog.Logger
	// OnCatalog, when set, receives the catalog's renditions of each
	// manifest adopted whose catalog differs from the last one handed on
	// (fillcast.Manifest.Catalog); it must not keep the executor waiting.
	OnCatalog func([]fillcast.TitleRenditions)
}

// manifest is the control plane's manifest with its ETag, sent as
// If-None-Match at the next poll.
type manifest struct {
	*fillcast.Manifest
	etag string
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
	OutsideWindowBytes int64 `json:"filled_outside_window_bytes"`
	// OverCapacityBytes are the planned bytes (files and their lists)
	// past what the cache holds (a disk failed since the plan was made):
	// the files that take them, last in the manifest's order, are neither
	// pinned nor filled until a plan fits.
	OverCapacityBytes int64 `json:"over_capacity_bytes"`
	// MissingLists are the planned titles whose file list is not on
	// disk: fetched again at each pass; until then their files are
	// neither counted nor filled (planned counts take the manifest's),
	// and only those of the title's previous list, if that is on disk,
	// stay pinned.
	MissingLists int    `json:"missing_lists"`
	Failures     int64  `json:"failures"`
	LastError    string `json:"last_error,omitempty"`
}

// Executor runs fills until its context ends.
type Executor struct {
	cfg       Config
	cp        ControlPlane
	cache     Cache
	src       Source
	fileLists FileLists
	decoded   *listLRU
	log       *slog.Logger
	onCatalog func([]fillcast.TitleRenditions)
	limiter   *rate.Limiter

	mu       sync.Mutex
	manifest *manifest
	// lists counts the file lists stored and dropped: the pins change
	// with them.
	lists uint64
	// surveyed is what the last survey saw (see survey).
	surveyed struct {
		stamp   stamp
		over    int64 // planned bytes past the capacity
		missing int   // planned files that fit and were not on disk
		// past are the titles wholly past the capacity (none of their
		// bytes fit): fetchLists leaves their missing lists alone, since
		// nothing of them would be pinned, and a list stored and evicted
		// at once would be fetched again every pass.
		past map[string]bool
	}
	// walked holds, for each title of the last survey with a list on
	// disk, the version of it whose list was walked: the manifest's, or
	// the one before while the manifest's is not on disk.
	walked map[string]*fillcast.ManifestTitle
	// surveyMu serializes surveys, and guards pinnedKeys: the keys
	// pinned last (the cache's own set).
	surveyMu   sync.Mutex
	pinnedKeys map[string]bool
	status     Status
	complete   []string // titles of the manifest present in full, sorted
	kick       chan struct{}
}

// New returns an Executor that fetches manifests through d.ControlPlane,
// checks what d.Cache holds and fills it from d.Source.
func New(cfg Config, d Deps) (*Executor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.ControlPlane == nil || d.Cache == nil || d.Source == nil {
		return nil, errors.New("fill: Deps.ControlPlane, Deps.Cache and Deps.Source are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	bytesPerSec := cfg.RateBits / 8
	return &Executor{
		cfg: cfg, cp: d.ControlPlane, cache: d.Cache, src: d.Source, fileLists: d.FileLists, log: d.Log, onCatalog: d.OnCatalog,
		decoded: newListLRU(cfg.ListFiles),
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
		e.pass(ctx)
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

// failed books a file or list that was not filled.
func (e *Executor) failed(err error) {
	e.mu.Lock()
	e.status.Failures++
	e.status.LastError = err.Error()
	e.mu.Unlock()
}

// fetchManifest asks the control plane for the manifest, with the ETag of
// the one in force. It returns nil, nil when none is planned or the one
// in force is unchanged.
func (e *Executor) fetchManifest(ctx context.Context) (*manifest, error) {
	var etag string
	e.mu.Lock()
	if e.manifest != nil {
		etag = e.manifest.etag
	}
	e.mu.Unlock()
	m, etag, err := e.cp.Manifest(ctx, e.cfg.ID, etag)
	switch {
	case client.StatusCode(err) == http.StatusNotFound:
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("fill: fetch manifest: %w", err)
	case m == nil:
		return nil, nil
	}
	if err := validate(m, e.cfg.ID); err != nil {
		return nil, err
	}
	return &manifest{Manifest: m, etag: etag}, nil
}

// validate refuses a manifest the executor cannot act on safely, and
// drops the Files of a title its list's digest names.
func validate(m *fillcast.Manifest, id string) error {
	if m.Appliance != id {
		return fmt.Errorf("fill: manifest is for %q, not %q", m.Appliance, id)
	}
	for i, t := range m.Titles {
		if err := fillcast.ValidateTitleID(t.ID); err != nil {
			return fmt.Errorf("fill: manifest: %w", err)
		}
		if t.Bytes < 0 || t.FileCount < 0 {
			return fmt.Errorf("fill: manifest: title %s: %d bytes in %d files: want no negative count", t.ID, t.Bytes, t.FileCount)
		}
		if t.FilesDigest != "" {
			if !filelist.ValidDigest(t.FilesDigest) {
				return fmt.Errorf("fill: manifest: title %s: files digest %q: want 64 lower-case hex characters", t.ID, t.FilesDigest)
			}
			m.Titles[i].Files = nil // the list is the digest's; files beside it are a previous release's
			continue
		}
		for _, f := range t.Files {
			if err := fillcast.ValidateObjectPath(f.Path); err != nil {
				return fmt.Errorf("fill: manifest: title %s: %w", t.ID, err)
			}
		}
	}
	for _, t := range m.Catalog {
		if err := fillcast.ValidateTitleID(t.ID); err != nil {
			return fmt.Errorf("fill: manifest: catalog: %w", err)
		}
		for _, r := range t.Renditions {
			if fillcast.ValidateObjectPath(r.ID) != nil || strings.Contains(r.ID, "/") || r.Height < 0 {
				return fmt.Errorf("fill: manifest: catalog: title %s: rendition %q of height %d: want a directory name and a height of 0 or more", t.ID, r.ID, r.Height)
			}
		}
	}
	_, _, err := window(m.FillWindow, m.Timezone)
	return err
}
