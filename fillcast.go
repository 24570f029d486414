// Package fillcast holds the small vocabulary shared by every part of the
// CDN: title and rendition identifiers, the catalog records the transcoder
// produces and the control plane replicates, sites, and the heartbeat an
// appliance sends. Implementations live beside the role that uses them
// (appliance/, controlplane/, steering/, transcoder/); this package has no
// behaviour beyond validation.
package fillcast

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Version is the release of this build; cmd/fillcast may override it with
// -ldflags "-X github.com/fillcast/fillcast.Version=...".
var Version = "0.1.0-dev"

// MaxTitleIDLen bounds a title identifier so that it fits comfortably in a
// URL path segment, a file name and a log line.
const MaxTitleIDLen = 64

// ErrBadTitleID is returned by ValidateTitleID for an identifier that is
// empty, too long or uses characters outside [A-Za-z0-9_-].
var ErrBadTitleID = errors.New("fillcast: bad title id")

// ValidateTitleID reports whether id may name a title. Title ids appear as
// a path segment in every URL and as a directory on the origin, so they are
// restricted to letters, digits, '-' and '_' and must not start with '-'.
func ValidateTitleID(id string) error {
	if id == "" || len(id) > MaxTitleIDLen {
		return fmt.Errorf("%w %q: want 1 to %d characters", ErrBadTitleID, id, MaxTitleIDLen)
	}
	if id[0] == '-' {
		return fmt.Errorf("%w %q: must not start with '-'", ErrBadTitleID, id)
	}
	for i := 0; i < len(id); i++ {
		if !IsIDByte(id[i]) {
			return fmt.Errorf("%w %q: only letters, digits, '-' and '_' are allowed", ErrBadTitleID, id)
		}
	}
	return nil
}

// IsIDByte reports whether c may appear in a title, rendition, key or
// appliance identifier.
func IsIDByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// Title status values, in the order a title moves through them.
const (
	StatusNew       = "new"
	StatusIngesting = "ingesting"
	StatusReady     = "ready"
	StatusFailed    = "failed"
)

// Rendition is one encoded variant of a title: a rung of the video ladder,
// or an audio track.
type Rendition struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"` // "video" or "audio"
	Width     int    `json:"width,omitempty"`
	Height    int    `json:"height,omitempty"`
	Bandwidth int    `json:"bandwidth"` // peak bits per second, as in HLS BANDWIDTH
	Codecs    string `json:"codecs"`
	Language  string `json:"language,omitempty"`
}

// File is one packaged file of a title, its path relative to the title's
// directory on the origin (for example "720p/seg-00001.m4s").
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Title is a catalog entry.
type Title struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Genres      []string `json:"genres,omitempty"`
	Year        int      `json:"year,omitempty"`
	Cast        []string `json:"cast,omitempty"`
	// Release, when set, is when the title becomes playable: fills plan
	// it ahead of that, as a new release the evening it comes out.
	Release *time.Time `json:"release,omitempty"`
	Status  string     `json:"status"`
	// Maturity is the title's rating, one of the Maturity constants;
	// empty reads as MaturityAll.
	Maturity   string      `json:"maturity,omitempty"`
	Renditions []Rendition `json:"renditions,omitempty"`
	// Files is the title's file list as ingest or an operator gives it.
	// The catalog never keeps it: it is published as a content-addressed
	// list object (package filelist, at filelist.Path(ID, FilesDigest) on
	// the origin) and the title keeps the summary below.
	Files []File `json:"files,omitempty"`
	// FilesDigest names the title's list object (filelist.Digest); a
	// change of files changes it. Empty for a title without files.
	FilesDigest string `json:"files_digest,omitempty"`
	// Bytes and FileCount are the list's total size and length.
	Bytes     int64 `json:"bytes,omitempty"`
	FileCount int   `json:"file_count,omitempty"`
	// Poster is the poster's path in the title ("poster.jpg") when it has
	// one; Downloads the paths of its MP4 downloads.
	Poster    string   `json:"poster,omitempty"`
	Downloads []string `json:"downloads,omitempty"`
}

// Maturity ratings, from the mildest.
const (
	MaturityAll = "all"
	Maturity7   = "7+"
	Maturity13  = "13+"
	Maturity16  = "16+"
	Maturity18  = "18+"
)

// ValidMaturity reports whether m is a maturity rating (or empty, which
// reads as MaturityAll).
func ValidMaturity(m string) bool {
	switch m {
	case "", MaturityAll, Maturity7, Maturity13, Maturity16, Maturity18:
		return true
	}
	return false
}

// KidsMayWatch reports whether a kids profile may see a title rated m:
// only "all" and "7+" titles.
func KidsMayWatch(m string) bool {
	return m == "" || m == MaturityAll || m == Maturity7
}

// Errors of conditional writes, shared by every store (the replicated
// state, the accounts stores): the record a write needs absent is
// present (409), the one it needs present is absent (404), or a limit
// would be exceeded (409 or 429, as the caller decides), or a
// compare-and-set lost to another write (409).
var (
	ErrExists   = errors.New("already exists")
	ErrNotFound = errors.New("not found")
	ErrLimit    = errors.New("limit reached")
	ErrConflict = errors.New("changed meanwhile")
)

// Site kinds.
const (
	SiteISP = "isp"
	SiteIX  = "ix"
)

// Site is a place appliances are installed: an ISP's network or an
// internet exchange.
type Site struct {
	ID         string   `json:"id"`
	Kind       string   `json:"kind"`
	Region     string   `json:"region"`
	Prefixes   []string `json:"prefixes"`
	Parent     string   `json:"parent,omitempty"`
	FillWindow string   `json:"fill_window,omitempty"` // "HH:MM-HH:MM" local time
	Timezone   string   `json:"timezone,omitempty"`    // IANA name
}

// Appliance profiles.
const (
	ProfileFlash   = "flash"
	ProfileStorage = "storage"
)

// Appliance health values reported in heartbeats.
const (
	HealthOK       = "ok"
	HealthDraining = "draining"
)

// Heartbeat is what an appliance reports to the control plane every few
// seconds.
type Heartbeat struct {
	Site          string           `json:"site"`
	Profile       string           `json:"profile"`
	URL           string           `json:"url"`
	CapacityBytes int64            `json:"capacity_bytes"`
	UsedBytes     int64            `json:"used_bytes"`
	Health        string           `json:"health"`
	RPS           float64          `json:"rps"`
	BPS           float64          `json:"bps"`
	TitleBytes    map[string]int64 `json:"title_bytes,omitempty"`
	// HitRatio is the share of lookups since the previous heartbeat that
	// the memory or disk tier answered.
	HitRatio float64 `json:"hit_ratio"`
	// Requests, P99Millis and ErrorRatio judge how well the appliance
	// answers under its load (the control plane's squeeze tests raise an
	// appliance's share of new playbacks until one crosses a bound). All
	// three are taken over the same requests: the content requests
	// (players' /c/ and peers' /f/ paths), whatever their status, answered
	// since the previous heartbeat the control plane accepted, over HTTP/1.1
	// and HTTP/3 alike.
	//
	// Requests counts them, so that a p99 of a handful of requests can be
	// told from one of thousands. (RPS counts only those the cache
	// answered, over the seconds since the previous heartbeat.)
	Requests uint64 `json:"requests"`
	// P99Millis is their 99th percentile response time in milliseconds,
	// 0 without requests: the time from the request handler's start to
	// its return, when the status, headers and body source (a memory
	// object, an open file, a fill under way) are decided but the body is
	// not yet written to the client. So it holds the token check, the
	// cache lookup, a disk read of an object the memory tier takes, and a
	// miss's wait for the upstream's headers; not the client's download.
	// It is read from a histogram of log-spaced buckets 22% wide
	// (appliance/latency), interpolated within the bucket: within that
	// of the exact value, and 10000 (10 s) for anything slower.
	P99Millis float64 `json:"p99_ms"`
	// ErrorRatio is the share of them that failed, from 0 to 1: answered
	// 5xx (except the 504 that tells a peer's only-if-cached probe the
	// object is not here), or cut off mid-body because the upstream fill
	// they were streamed from broke off. Bodies cut because the client
	// went away or read too slowly do not count.
	ErrorRatio float64 `json:"error_ratio"`
	// FillPlannedBytes and FillPresentBytes are the fill manifest's size
	// and how much of it is on disk (fill progress).
	FillPlannedBytes int64 `json:"fill_planned_bytes,omitempty"`
	FillPresentBytes int64 `json:"fill_present_bytes,omitempty"`
	// PlanVersion is the fill manifest the appliance works from (0: none
	// yet), and CompleteTitles the titles of it that the appliance holds
	// every file of. Flash appliances report them so that steering sends
	// players to a flash appliance only for titles it holds complete. The
	// list can be long, so it is left out while it is the same as in the
	// previous accepted heartbeat (CompleteSame), and sent again now and
	// then for control-plane nodes that missed it.
	PlanVersion    uint64   `json:"plan_version,omitempty"`
	CompleteTitles []string `json:"complete_titles,omitempty"`
	CompleteSame   bool     `json:"complete_same,omitempty"`
	// FailedDisks are the cache directories the appliance took out of
	// service after I/O errors: its capacity no longer counts them.
	FailedDisks []string `json:"failed_disks,omitempty"`
	// TakedownSeq is the last takedown the appliance applied
	// (HeartbeatReply), 0 when it knows none.
	TakedownSeq uint64 `json:"takedown_seq,omitempty"`
}

// ParseWindow parses "HH:MM-HH:MM" into minutes after midnight. The end
// may be before the start: the window then spans midnight. It may not be
// the start: such a window would never open (appliances refuse it).
func ParseWindow(w string) (start, end int, err error) {
	a, b, ok := strings.Cut(w, "-")
	if !ok {
		return 0, 0, fmt.Errorf("fillcast: fill window %q: want HH:MM-HH:MM", w)
	}
	if start, err = parseClock(a); err == nil {
		end, err = parseClock(b)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("fillcast: fill window %q: %w", w, err)
	}
	if start == end {
		return 0, 0, fmt.Errorf("fillcast: fill window %q is empty: want an end other than the start", w)
	}
	return start, end, nil
}

func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}
