package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/accounts/embedded"
	"github.com/fillcast/fillcast/auth"
	"github.com/hashicorp/raft"
)

func logOf(t *testing.T, i uint64, c Command) *raft.Log {
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: i, Data: b}
}

func readyTitle(id string) *fillcast.Title {
	return &fillcast.Title{ID: id, Name: "Title " + id, Status: fillcast.StatusReady,
		Renditions: []fillcast.Rendition{{ID: "720p", Kind: "video", Width: 1280, Height: 720, Bandwidth: 3_000_000, Codecs: "avc1.64001f"}},
		Files:      []fillcast.File{{Path: "720p/seg-00001.m4s", Size: 10}}}
}

// accountCommands make a plan, an account and a session.
func accountCommands() []embedded.Command {
	at := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	return []embedded.Command{
		{Op: embedded.OpPutPlan, Plan: &accounts.Plan{ID: "basic", Name: "Basic", MaxHeight: 480, MaxStreams: 1, Price: accounts.Money{Amount: 799, Currency: "EUR"}, Period: "month"}},
		{Op: embedded.OpCreateAccount, Account: &accounts.Account{ID: "a1", Email: "ann@example.com", PasswordHash: "$argon2id$v=19$m=64,t=1,p=1$x$y", Plan: "basic", Created: at},
			Profile: &accounts.Profile{ID: "p1", Account: "a1", Name: "Ann", Created: at}},
		{Op: embedded.OpCreateSession, Session: &accounts.Session{ID: "s1", Account: "a1", Hash: auth.HashSecret("s"), Created: at, LastSeen: at}, Max: 5},
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cmd  Command
		ok   bool
	}{
		{"ready title", Command{Op: OpPutTitle, Title: readyTitle("t1")}, true},
		{"ready title without renditions", Command{Op: OpPutTitle, Title: &fillcast.Title{ID: "t1", Name: "x", Status: "ready"}}, false},
		{"bad title id", Command{Op: OpPutTitle, Title: &fillcast.Title{ID: "../t", Name: "x", Status: "new"}}, false},
		{"unknown status", Command{Op: OpPutTitle, Title: &fillcast.Title{ID: "t", Name: "x", Status: "done"}}, false},
		{"bad file path", Command{Op: OpPutTitle, Title: &fillcast.Title{ID: "t", Name: "x", Status: "new", Files: []fillcast.File{{Path: "../x"}}}}, false},
		{"bad files digest", Command{Op: OpPutTitle, Title: &fillcast.Title{ID: "t", Name: "x", Status: "new", FilesDigest: "abc"}}, false},
		{"files published", Command{Op: OpFilesPublished, ID: "t1", Digest: strings.Repeat("0", 64), ListIndex: 1}, true},
		{"files published without a title", Command{Op: OpFilesPublished, Digest: strings.Repeat("0", 64), ListIndex: 1}, false},
		{"files published without a list index", Command{Op: OpFilesPublished, ID: "t1", Digest: strings.Repeat("0", 64)}, false},
		{"site", Command{Op: OpPutSite, Site: &fillcast.Site{ID: "isp1", Kind: "isp", Region: "eu", Prefixes: []string{"203.0.113.0/24", "2001:db8::/32"}, FillWindow: "02:00-14:00", Timezone: "Europe/Amsterdam"}}, true},
		{"site bad cidr", Command{Op: OpPutSite, Site: &fillcast.Site{ID: "isp1", Kind: "isp", Region: "eu", Prefixes: []string{"203.0.113.0/33"}}}, false},
		{"site host bits", Command{Op: OpPutSite, Site: &fillcast.Site{ID: "isp1", Kind: "isp", Region: "eu", Prefixes: []string{"203.0.113.7/24"}}}, false},
		{"site bad kind", Command{Op: OpPutSite, Site: &fillcast.Site{ID: "isp1", Kind: "pop", Region: "eu"}}, false},
		{"site bad window", Command{Op: OpPutSite, Site: &fillcast.Site{ID: "isp1", Kind: "isp", Region: "eu", FillWindow: "2-14"}}, false},
		{"site bad zone", Command{Op: OpPutSite, Site: &fillcast.Site{ID: "isp1", Kind: "isp", Region: "eu", Timezone: "Mars/Base"}}, false},
		{"appliance", Command{Op: OpPutAppliance, Appliance: &Appliance{ID: "a1", Site: "isp1", Profile: "flash", URL: "http://127.0.0.1:8080"}}, true},
		{"appliance bad url", Command{Op: OpPutAppliance, Appliance: &Appliance{ID: "a1", Site: "isp1", Profile: "flash", URL: "ftp://x"}}, false},
		{"rule needs one target", Command{Op: OpPutRule, Rule: &Rule{ID: "r", Kind: RuleDrain, Site: "s", Appliance: "a"}}, false},
		{"unknown op", Command{Op: "explode"}, false},
		{"delete without id", Command{Op: OpDeleteTitle}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cmd.Validate()
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Errorf("Validate() = %v, want ok=%v (errors wrap ErrInvalid)", err, tt.ok)
			}
		})
	}
}

type sink struct {
	bytes.Buffer
	cancelled bool
}

func (s *sink) ID() string    { return "test" }
func (s *sink) Cancel() error { s.cancelled = true; return nil }
func (s *sink) Close() error  { return nil }

func TestSnapshotRestore(t *testing.T) {
	t.Parallel()
	var changes []string
	f := New(func(c Command) { changes = append(changes, c.Op) })
	cmds := []Command{
		{Op: OpPutTitle, Title: readyTitle("t1")},
		{Op: OpPutTitle, Title: readyTitle("t2")},
		{Op: OpDeleteTitle, ID: "t2"},
		{Op: OpPutSite, Site: &fillcast.Site{ID: "isp1", Kind: "isp", Region: "eu", Prefixes: []string{"10.0.0.0/8"}}},
		{Op: OpRegisterAppliance, Registration: registration("a1")},
		{Op: OpPutAPIKey, APIKey: &APIKey{ID: "k1", Scope: "read", Hash: auth.HashSecret("x")}, RequestID: "req-1"},
		{Op: OpPutAppliance, Appliance: &Appliance{ID: "a1", Site: "isp1", Profile: "flash", URL: "http://127.0.0.1:8080"}},
		{Op: OpPutJob, Job: &Job{ID: "j1", Title: "t1", Status: JobRunning}},
		{Op: OpPutRule, Rule: &Rule{ID: "r1", Kind: RuleDrain, Appliance: "a1"}},
	}
	for _, c := range accountCommands() {
		cmds = append(cmds, Command{Op: OpAccounts, Accounts: &c})
	}
	for i, c := range cmds {
		if r := f.Apply(logOf(t, uint64(i+1), c)); r != nil {
			t.Fatalf("apply %s: %v", c.Op, r)
		}
	}
	if r := f.Apply(&raft.Log{Index: 99, Data: []byte("{")}); r == nil {
		t.Error("garbage log entry applied without error")
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var s sink
	if err := snap.Persist(&s); err != nil {
		t.Fatal(err)
	}
	g := New(nil)
	if err := g.Restore(io.NopCloser(bytes.NewReader(s.Bytes()))); err != nil {
		t.Fatal(err)
	}
	// Compared as decoded JSON: the accounts' tables encode in no order.
	var want, got any
	f.Read(func(st *State) { b, _ := json.Marshal(st); json.Unmarshal(b, &want) })
	g.Read(func(st *State) { b, _ := json.Marshal(st); json.Unmarshal(b, &got) })
	if !reflect.DeepEqual(got, want) {
		t.Errorf("restored state differs:\n got %v\nwant %v", got, want)
	}
	g.Read(func(st *State) {
		if _, ok := st.Titles["t2"]; ok || len(st.Titles) != 1 || st.Rules["r1"] == nil {
			t.Errorf("restored titles %v rules %v", st.Titles, st.Rules)
		}
		if id, ok := st.Accounts.EmailOwner("ann@example.com"); !ok || st.Accounts.Sessions.Len() != 1 || len(st.Accounts.Profiles.At(id)) != 1 {
			t.Errorf("restored accounts: email index %v, %d sessions", ok, st.Accounts.Sessions.Len())
		}
		if st.APIKeys["k1"] == nil || st.Registrations["a1"] == nil || !st.Requests.Seen("req-1") {
			t.Errorf("restored api keys %v, registrations %v, request log %v", st.APIKeys, st.Registrations, st.Requests.ordered())
		}
	})
	if !reflect.DeepEqual(changes, []string{OpPutTitle, OpPutTitle, OpDeleteTitle, OpPutSite, OpRegisterAppliance, OpPutAPIKey, OpPutAppliance, OpPutJob, OpPutRule, OpAccounts, OpAccounts, OpAccounts}) {
		t.Errorf("onChange saw %v", changes)
	}
	if err := g.Restore(io.NopCloser(bytes.NewReader([]byte("not json")))); err == nil {
		t.Error("restore of garbage succeeded")
	}
}

func TestManifestChecks(t *testing.T) {
	t.Parallel()
	f := New(nil)
	f.Apply(logOf(t, 1, Command{Op: OpPutTitle, Title: readyTitle("t1")}))
	tests := []struct {
		name string
		m    Manifest
		ok   bool
	}{
		{"first", Manifest{Appliance: "a1", Version: 1, Titles: []string{"t1"}}, true},
		{"same version", Manifest{Appliance: "a1", Version: 1, Titles: []string{"t1"}}, false},
		{"older version", Manifest{Appliance: "a1", Version: 0, Titles: nil}, false},
		{"unknown title", Manifest{Appliance: "a1", Version: 2, Titles: []string{"t1", "nope"}}, false},
		{"newer", Manifest{Appliance: "a1", Version: 5, Titles: nil}, true},
		{"other appliance", Manifest{Appliance: "a2", Version: 1, Titles: []string{"t1"}}, true},
	}
	for i, tt := range tests {
		m := tt.m
		r := f.Apply(logOf(t, uint64(i+2), Command{Op: OpPutManifest, Manifest: &m}))
		if (r == nil) != tt.ok {
			t.Errorf("%s: Apply = %v, want ok=%v", tt.name, r, tt.ok)
		}
	}
	f.Read(func(s *State) {
		if m := s.Manifests["a1"]; m == nil || m.Version != 5 || len(m.Titles) != 0 {
			t.Errorf("a1 manifest = %+v, want version 5 with no titles", m)
		}
	})
}
