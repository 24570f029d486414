// Package fsm is the control plane's replicated state machine: the catalog
// (titles with their renditions and their file lists' summaries; the
// lists themselves are objects at the origin, files.go), sites, the appliance registry,
// cluster members, ingest jobs, runtime rules (drain, canary, route,
// static answers and rate limits, with an audit log of their changes) and
// squeeze tests. Every change is a Command applied in log order on every
// node by hashicorp/raft, so all nodes hold the same state; reads are
// local.
package fsm

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/accounts/embedded"
	"github.com/fillcast/fillcast/auth"
	billembedded "github.com/fillcast/fillcast/billing/embedded"
)

// Appliance is an appliance's entry in the registry: what steering needs
// to know that does not change from one heartbeat to the next.
type Appliance struct {
	ID            string `json:"id"`
	Site          string `json:"site"`
	Profile       string `json:"profile"`
	URL           string `json:"url"`
	CapacityBytes int64  `json:"capacity_bytes"`
}

// Member is a control-plane node.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPURL  string `json:"http_url"`
	// Events is the host:port of the node's event-stream route
	// listener, empty when it embeds no stream server.
	Events string `json:"events,omitempty"`
	// Started identifies the process that last announced the member.
	Started int64 `json:"started,omitempty"`
	// Incarnation identifies the node's data directory (made when its
	// raft state was created), so that a removed node cannot come back
	// with it (State.Removed).
	Incarnation string `json:"incarnation,omitempty"`
}

// Job states.
const (
	JobQueued  = "queued"
	JobRunning = "running"
	JobDone    = "done"
	JobFailed  = "failed"
)

// Job is an ingest job: one upload turned into a packaged title.
type Job struct {
	ID       string    `json:"id"`
	Title    string    `json:"title"`
	Node     string    `json:"node"`   // the node that holds the upload and runs the job
	Source   string    `json:"source"` // path of the upload on that node
	Ladder   string    `json:"ladder,omitempty"`
	Status   string    `json:"status"`
	Stage    string    `json:"stage,omitempty"`
	Percent  float64   `json:"percent"`
	Error    string    `json:"error,omitempty"`
	Attempts int       `json:"attempts"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
}

// Manifest is an appliance's fill plan: the titles it should hold,
// versioned so an appliance never goes back to an older plan.
type Manifest struct {
	Appliance string    `json:"appliance"`
	Version   uint64    `json:"version"`
	Titles    []string  `json:"titles"`
	Updated   time.Time `json:"updated"`
}

// State is the whole replicated state. It is only mutated by Apply.
type State struct {
	Titles     map[string]*fillcast.Title `json:"titles"`
	Sites      map[string]*fillcast.Site  `json:"sites"`
	Appliances map[string]*Appliance      `json:"appliances"`
	Members    map[string]*Member         `json:"members"`
	// Removed are the members operators removed, by id (RemovedLen).
	Removed map[string]*Removal `json:"removed,omitempty"`
	Jobs    map[string]*Job     `json:"jobs"`
	Rules   map[string]*Rule    `json:"rules"`
	// RuleLog is the audit log of rule changes, oldest first, the last
	// RuleLogLen of them.
	RuleLog []*RuleChange `json:"rule_log,omitempty"`
	// Squeezes are the squeeze tests, running and the latest finished.
	Squeezes  map[string]*Squeeze  `json:"squeezes"`
	Manifests map[string]*Manifest `json:"manifests"`
	// SigningKeys sign playback URLs, the first one signing, all
	// verifying; empty means each node's key file. KeysIndex is the log
	// index that last set them, so nodes can cache the parsed set.
	SigningKeys []auth.Key `json:"signing_keys,omitempty"`
	KeysIndex   uint64     `json:"keys_index,omitempty"`
	// APIKeys are the operators' keys, by id; Registrations the
	// appliances operators registered, by id.
	APIKeys       map[string]*APIKey       `json:"api_keys"`
	Registrations map[string]*Registration `json:"registrations"`
	// Requests are the ids of the latest writes, so that a write retried
	// after a leader change is applied once.
	Requests *RequestLog `json:"requests,omitempty"`
	// Accounts are the viewers of the embedded accounts store (unused
	// with PostgreSQL).
	Accounts *embedded.State `json:"accounts,omitempty"`
	// Billing is the embedded billing store's subscriptions, invoices,
	// ledger and idempotent requests (unused with PostgreSQL).
	Billing *billembedded.State `json:"billing,omitempty"`
	// Takedowns are the deleted titles' record (takedown.go).
	Takedowns *TakedownRecord `json:"takedowns,omitempty"`
	// FileLists are the file lists given with titles that the origin
	// does not hold yet, by filelist.Path (files.go).
	FileLists map[string]*PendingList `json:"file_lists,omitempty"`
	// order indexes Titles by id (TitlesAfter).
	order titleOrder
}

func newState() *State {
	return &State{
		Titles:        map[string]*fillcast.Title{},
		Sites:         map[string]*fillcast.Site{},
		Appliances:    map[string]*Appliance{},
		Members:       map[string]*Member{},
		Removed:       map[string]*Removal{},
		Jobs:          map[string]*Job{},
		Rules:         map[string]*Rule{},
		Squeezes:      map[string]*Squeeze{},
		Manifests:     map[string]*Manifest{},
		APIKeys:       map[string]*APIKey{},
		Registrations: map[string]*Registration{},
		Requests:      &RequestLog{},
		Accounts:      embedded.NewState(),
		Billing:       billembedded.NewState(),
		Takedowns:     &TakedownRecord{},
		FileLists:     map[string]*PendingList{},
	}
}

// ErrInvalid wraps every validation error, so the API can answer 400.
var ErrInvalid = errors.New("invalid")

// ErrExists, ErrNotFound and ErrLimit are what conditional writes return
// when the record they need absent is present, the other way round, or a
// limit would be exceeded: fillcast's errors of every store.
var (
	ErrExists   = fillcast.ErrExists
	ErrNotFound = fillcast.ErrNotFound
	ErrLimit    = fillcast.ErrLimit
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("fsm: %w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// ValidateTitle checks a title record as given by an operator or ingest:
// its files, when given, must make a valid list (filelist.Encode) whose
// digest is FilesDigest, when that is given too.
func ValidateTitle(t *fillcast.Title) error {
	_, err := checkTitle(t, false)
	return err
}

// checkTitle is ValidateTitle, also returning the encoded file list of
// a title given with files; with legacy, a list the previous release
// accepted is normalized first (normalizeFiles).
func checkTitle(t *fillcast.Title, legacy bool) (*encodedList, error) {
	if err := checkTitleFields(t); err != nil {
		return nil, err
	}
	return checkFiles(t, legacy)
}

func checkTitleFields(t *fillcast.Title) error {
	if err := fillcast.ValidateTitleID(t.ID); err != nil {
		return invalid("id: %v", err)
	}
	if strings.TrimSpace(t.Name) == "" {
		return invalid("name: required")
	}
	switch t.Status {
	case fillcast.StatusNew, fillcast.StatusIngesting, fillcast.StatusReady, fillcast.StatusFailed:
	default:
		return invalid("status %q: want new, ingesting, ready or failed", t.Status)
	}
	if !fillcast.ValidMaturity(t.Maturity) {
		return invalid("maturity %q: want all, 7+, 13+, 16+ or 18+", t.Maturity)
	}
	if t.Year < 0 || t.Year > 3000 {
		return invalid("year %d: out of range", t.Year)
	}
	if t.Status == fillcast.StatusReady && len(t.Renditions) == 0 {
		return invalid("renditions: a ready title needs at least one")
	}
	for i, r := range t.Renditions {
		if r.ID == "" || fillcast.ValidateObjectPath(r.ID) != nil || strings.Contains(r.ID, "/") {
			return invalid("renditions[%d].id %q: want a simple name such as 720p", i, r.ID)
		}
		if r.Kind != "video" && r.Kind != "audio" {
			return invalid("renditions[%d].kind %q: want video or audio", i, r.Kind)
		}
		if r.Bandwidth <= 0 {
			return invalid("renditions[%d].bandwidth: must be positive", i)
		}
	}
	return nil
}

// ValidateSite checks a site record.
func ValidateSite(s *fillcast.Site) error {
	if err := fillcast.ValidateTitleID(s.ID); err != nil {
		return invalid("id: %v", err)
	}
	if s.Kind != fillcast.SiteISP && s.Kind != fillcast.SiteIX {
		return invalid("kind %q: want isp or ix", s.Kind)
	}
	if s.Region == "" {
		return invalid("region: required")
	}
	for i, p := range s.Prefixes {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			return invalid("prefixes[%d] %q: not a CIDR prefix", i, p)
		}
		if pfx != pfx.Masked() {
			return invalid("prefixes[%d] %q: host bits set (did you mean %s?)", i, p, pfx.Masked())
		}
	}
	if s.Parent == s.ID && s.ID != "" {
		return invalid("parent: a site cannot be its own parent")
	}
	if s.FillWindow != "" {
		if _, _, err := fillcast.ParseWindow(s.FillWindow); err != nil {
			return invalid("fill_window: %v", err)
		}
	}
	if s.Timezone != "" {
		if _, err := time.LoadLocation(s.Timezone); err != nil {
			return invalid("timezone %q: unknown", s.Timezone)
		}
	}
	return nil
}

// ValidateAppliance checks a registry entry.
func ValidateAppliance(a *Appliance) error {
	if err := fillcast.ValidateTitleID(a.ID); err != nil {
		return invalid("id: %v", err)
	}
	if a.Site == "" {
		return invalid("site: required")
	}
	if a.Profile != fillcast.ProfileFlash && a.Profile != fillcast.ProfileStorage {
		return invalid("profile %q: want flash or storage", a.Profile)
	}
	u, err := url.Parse(a.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid("url %q: want http(s)://host:port", a.URL)
	}
	if a.CapacityBytes < 0 {
		return invalid("capacity_bytes: negative")
	}
	return nil
}
