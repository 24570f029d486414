package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/accounts/embedded"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/billing"
	billembedded "github.com/fillcast/fillcast/billing/embedded"
	"github.com/hashicorp/raft"
)

// Command operations.
const (
	OpPutTitle     = "put_title"
	OpDeleteTitle  = "delete_title"
	OpPutSite      = "put_site"
	OpDeleteSite   = "delete_site"
	OpPutAppliance = "put_appliance"
	OpPutMember    = "put_member"
	OpRemoveMember = "remove_member"
	OpPutJob       = "put_job"
	OpPutRule      = "put_rule"
	OpDeleteRule   = "delete_rule"
	OpPutManifest  = "put_manifest"
	OpPutKeys      = "put_keys"
	// OpCreateTitle adds a title that must not exist yet (ErrExists).
	OpCreateTitle       = "create_title"
	OpPutAPIKey         = "put_api_key"
	OpDeleteAPIKey      = "delete_api_key"
	OpRegisterAppliance = "register_appliance"
	// OpRevokeAppliance deletes a registration and with it the
	// appliance's registry entry and fill plan: it leaves steering.
	OpRevokeAppliance = "revoke_appliance"
	// OpAccounts changes the embedded accounts store: Accounts holds
	// the change.
	OpAccounts = "accounts"
	// OpBilling changes the embedded billing store: Billing holds the
	// change.
	OpBilling = "billing"
	// OpPutSqueeze replaces a squeeze record, compare-and-set by its
	// Version.
	OpPutSqueeze = "put_squeeze"
	// OpRestore is never logged: onChange receives it after a snapshot
	// replaced the whole state.
	OpRestore = "restore"
)

// Command is one entry of the replicated log. Op names the change; exactly
// the matching field is set (ID for deletions).
type Command struct {
	Op        string          `json:"op"`
	ID        string          `json:"id,omitempty"`
	Title     *fillcast.Title `json:"title,omitempty"`
	Site      *fillcast.Site  `json:"site,omitempty"`
	Appliance *Appliance      `json:"appliance,omitempty"`
	Member    *Member         `json:"member,omitempty"`
	Job       *Job            `json:"job,omitempty"`
	Rule      *Rule           `json:"rule,omitempty"`
	Manifest  *Manifest       `json:"manifest,omitempty"`
	Keys      []auth.Key      `json:"keys,omitempty"`
	APIKey    *APIKey         `json:"api_key,omitempty"`
	// Registration is set for OpRegisterAppliance.
	Registration *Registration `json:"registration,omitempty"`
	// Accounts is set for OpAccounts.
	Accounts *embedded.Command `json:"accounts,omitempty"`
	// Billing is set for OpBilling.
	Billing *billembedded.Command `json:"billing,omitempty"`
	// Squeeze is set for OpPutSqueeze.
	Squeeze *Squeeze `json:"squeeze,omitempty"`
	// Takedown, set with OpDeleteTitle, takes the title down
	// (takedown.go); OpOriginPurged names the one purged.
	Takedown *Takedown `json:"takedown,omitempty"`
	// Digest names the file list of title ID that OpFilesPublished
	// says the origin holds; ListIndex is the applied index the
	// publisher read the list at: only a pending list added at or before
	// it is deleted, so a stale publish cannot delete a list added again
	// since (files.go).
	Digest    string `json:"digest,omitempty"`
	ListIndex uint64 `json:"list_index,omitempty"`
	// By and At are who asked for the change and when, set by the node
	// that proposes it, for the audit log of OpDeleteRule (OpPutRule's
	// rule carries its own).
	By string    `json:"by,omitempty"`
	At time.Time `json:"at,omitzero"`
	// RequestID, when set, makes the command apply once: a command with
	// the id of a recent applied one is acknowledged without effect.
	RequestID string `json:"request_id,omitempty"`
}

// Encode returns the command's log bytes.
func (c Command) Encode() ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("fsm: encode %s: %w", c.Op, err)
	}
	return b, nil
}

// Validate checks a command before it is proposed. Apply checks again,
// since a log entry may come from an older or buggy node, but accepts
// the file lists the previous release accepted (normalizeFiles), which
// Validate refuses.
func (c Command) Validate() error {
	_, err := c.validate(false)
	return err
}

// validate is Validate, also returning the encoded file list of a title
// given with files, which Apply keeps (encoded once); legacy is Apply's
// leniency with the previous release's file lists.
func (c Command) validate(legacy bool) (*encodedList, error) {
	if len(c.RequestID) > maxRequestIDLen {
		return nil, invalid("request_id: longer than %d bytes", maxRequestIDLen)
	}
	if err := checkTakedown(c); err != nil {
		return nil, err
	}
	if c.Op == OpPutTitle || c.Op == OpCreateTitle {
		if c.Title == nil {
			return nil, invalid("%s without a title", c.Op)
		}
		return checkTitle(c.Title, legacy)
	}
	return nil, c.validateOther()
}

// validateOther is validate of the commands other than titles'.
func (c Command) validateOther() error {
	switch c.Op {
	case OpFilesPublished:
		return checkFilesPublished(c)
	case OpPutSite:
		if c.Site == nil {
			return invalid("put_site without a site")
		}
		return ValidateSite(c.Site)
	case OpPutAppliance:
		if c.Appliance == nil {
			return invalid("put_appliance without an appliance")
		}
		return ValidateAppliance(c.Appliance)
	case OpPutMember:
		if c.Member == nil || c.Member.ID == "" || c.Member.RaftAddr == "" || c.Member.HTTPURL == "" {
			return invalid("put_member needs id, raft_addr and http_url")
		}
	case OpPutJob:
		if c.Job == nil || c.Job.ID == "" || c.Job.Title == "" {
			return invalid("put_job needs id and title")
		}
	case OpPutRule:
		return checkRule(c.Rule)
	case OpPutSqueeze:
		return checkSqueezeRecord(c.Squeeze)
	case OpOriginPurged:
		if c.Takedown == nil {
			return invalid("origin_purged without a takedown")
		}
	case OpPutManifest:
		m := c.Manifest
		if m == nil || m.Appliance == "" || m.Version == 0 {
			return invalid("put_manifest needs appliance and a version > 0")
		}
		for i, t := range m.Titles {
			if err := fillcast.ValidateTitleID(t); err != nil {
				return invalid("titles[%d]: %v", i, err)
			}
		}
	case OpPutKeys:
		if _, err := auth.NewKeys(c.Keys); err != nil {
			return invalid("keys: %v", err)
		}
	case OpPutAPIKey:
		if c.APIKey == nil {
			return invalid("put_api_key without a key")
		}
		return ValidateAPIKey(c.APIKey)
	case OpRegisterAppliance:
		if c.Registration == nil {
			return invalid("register_appliance without a registration")
		}
		return ValidateRegistration(c.Registration)
	case OpAccounts:
		if c.Accounts == nil {
			return invalid("accounts without a change")
		}
		if err := c.Accounts.Validate(); err != nil {
			return fmt.Errorf("fsm: %w: %w", ErrInvalid, err)
		}
	case OpBilling:
		if c.Billing == nil {
			return invalid("billing without a change")
		}
		if err := c.Billing.Validate(); err != nil {
			return fmt.Errorf("fsm: %w: %w", ErrInvalid, err)
		}
	case OpDeleteTitle, OpDeleteSite, OpRemoveMember, OpDeleteRule, OpDeleteAPIKey, OpRevokeAppliance:
		if c.ID == "" {
			return invalid("%s needs an id", c.Op)
		}
	default:
		return invalid("unknown op %q", c.Op)
	}
	return nil
}

// FSM implements raft.FSM over State.
type FSM struct {
	mu    sync.RWMutex
	state *State
	index uint64 // last applied log index
	// onChange, if set, is called after every applied command (outside
	// the lock), so derived views such as the search index keep up.
	onChange func(Command)
	// moved counts the titles whose files Apply and Restore moved out
	// (ListsMoved); dropped the lists Restore could not keep
	// (ListsDropped).
	moved, dropped atomic.Uint64
	// gen counts the changes of the state (Generation).
	gen atomic.Uint64
}

var _ raft.FSM = (*FSM)(nil)

// New returns an empty FSM. onChange may be nil.
func New(onChange func(Command)) *FSM {
	return &FSM{state: newState(), onChange: onChange}
}

// Apply implements raft.FSM. It returns nil or the validation error.
func (f *FSM) Apply(l *raft.Log) any {
	var c Command
	var list *encodedList
	err := json.Unmarshal(l.Data, &c)
	if err == nil {
		list, err = c.validate(true)
	} else {
		err = fmt.Errorf("fsm: decode log %d: %w", l.Index, err)
	}
	f.mu.Lock()
	f.index = l.Index // applied, refused or not: reads wait for it
	if err != nil {
		f.mu.Unlock()
		return err
	}
	if f.state.Requests.Seen(c.RequestID) {
		f.mu.Unlock()
		return nil // applied already: a retry after a leader change
	}
	err = check(f.state, c)
	if err == nil {
		apply(f.state, c, list, l.Index)
		f.state.Requests.Add(c.RequestID)
		// After the change, under the lock: a reader that read the
		// generation before the state never caches older state under
		// a newer generation.
		f.gen.Add(1)
		switch c.Op {
		case OpPutKeys:
			f.state.KeysIndex = l.Index
		case OpPutTitle, OpCreateTitle:
			// onChange sees the title as stored, without its files.
			c.Title = f.state.Titles[c.Title.ID]
			if list != nil {
				f.moved.Add(1)
			}
		}
	}
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if f.onChange != nil {
		f.onChange(c)
	}
	return nil
}

// check refuses commands that contradict the state they would apply to:
// every node decides the same, since they apply the same log in order.
func check(s *State, c Command) error {
	if err := checkTakedownState(s, c); err != nil {
		return err
	}
	switch c.Op {
	case OpCreateTitle:
		if s.Titles[c.Title.ID] != nil {
			return fmt.Errorf("fsm: %w: title %s", ErrExists, c.Title.ID)
		}
		return nil
	case OpPutAppliance:
		// Heartbeats keep the registry current; only for registered ids,
		// so a late heartbeat cannot bring a revoked appliance back.
		if s.Registrations[c.Appliance.ID] == nil {
			return fmt.Errorf("fsm: %w: appliance %s is not registered", ErrNotFound, c.Appliance.ID)
		}
		return nil
	case OpDeleteAPIKey:
		if s.APIKeys[c.ID] == nil {
			return fmt.Errorf("fsm: %w: api key %s", ErrNotFound, c.ID)
		}
		return nil
	case OpRevokeAppliance:
		if s.Registrations[c.ID] == nil {
			return fmt.Errorf("fsm: %w: appliance %s is not registered", ErrNotFound, c.ID)
		}
		return nil
	case OpAccounts:
		return s.Accounts.Check(*c.Accounts)
	case OpBilling:
		if err := s.Billing.Check(*c.Billing); errors.Is(err, billing.ErrInvalid) {
			return fmt.Errorf("fsm: %w: %w", ErrInvalid, err)
		} else {
			return err
		}
	case OpPutSqueeze:
		return checkSqueeze(s, c.Squeeze)
	case OpPutMember:
		return s.CheckRemoved(c.Member.ID, c.Member.Incarnation)
	case OpPutManifest:
	default:
		return nil
	}
	m := c.Manifest
	if cur := s.Manifests[m.Appliance]; cur != nil && m.Version <= cur.Version {
		return invalid("manifest version %d for %s is not newer than %d", m.Version, m.Appliance, cur.Version)
	}
	for i, t := range m.Titles {
		if s.Titles[t] == nil {
			return invalid("manifest titles[%d]: unknown title %q", i, t)
		}
	}
	return nil
}

// apply changes s by c, the entry at index of the log; list is c's
// title's encoded files, if it has any.
func apply(s *State, c Command, list *encodedList, index uint64) {
	switch c.Op {
	case OpPutTitle, OpCreateTitle:
		putTitle(s, c.Title, list, index)
	case OpDeleteTitle:
		deleteTitle(s, c.ID)
		applyTakedown(s, c)
	case OpFilesPublished:
		filesPublished(s, c)
	case OpOriginPurged:
		applyTakedown(s, c)
	case OpPutSite:
		s.Sites[c.Site.ID] = c.Site
	case OpDeleteSite:
		delete(s.Sites, c.ID)
	case OpPutAppliance:
		s.Appliances[c.Appliance.ID] = c.Appliance
	case OpPutMember:
		s.Members[c.Member.ID] = c.Member
	case OpRemoveMember:
		removeMember(s, c)
	case OpPutJob:
		s.Jobs[c.Job.ID] = c.Job
	case OpPutRule, OpDeleteRule:
		applyRule(s, c)
	case OpPutSqueeze:
		applySqueeze(s, c.Squeeze)
	case OpPutManifest:
		s.Manifests[c.Manifest.Appliance] = c.Manifest
	case OpPutKeys:
		s.SigningKeys = c.Keys
	case OpPutAPIKey:
		s.APIKeys[c.APIKey.ID] = c.APIKey
	case OpDeleteAPIKey:
		delete(s.APIKeys, c.ID)
	case OpRegisterAppliance:
		s.Registrations[c.Registration.ID] = c.Registration
	case OpRevokeAppliance:
		delete(s.Registrations, c.ID)
		delete(s.Appliances, c.ID)
		delete(s.Manifests, c.ID)
	case OpAccounts:
		s.Accounts.Apply(*c.Accounts)
	case OpBilling:
		s.Billing.Apply(*c.Billing)
	}
}

// Read calls fn with the state under a read lock. fn must not keep or
// modify anything it is given: records are shared and immutable (every
// change replaces a record whole).
func (f *FSM) Read(fn func(s *State)) {
	f.mu.RLock()
	fn(f.state)
	f.mu.RUnlock()
}

// AppliedIndex returns the index of the last applied log entry.
func (f *FSM) AppliedIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.index
}
