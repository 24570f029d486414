package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/auth"
	"github.com/hashicorp/raft"
)

// fuzzCommands build the state the fuzz targets start from: a site, a
// title, a registered appliance with its entry and plan, a key, a rule, a
// job, an account with a session, and request ids.
func fuzzCommands() []Command {
	cmds := []Command{
		{Op: OpPutSite, Site: &fillcast.Site{ID: "isp1", Kind: "isp", Region: "eu", Prefixes: []string{"10.0.0.0/8"}, FillWindow: "02:00-14:00"}},
		{Op: OpPutTitle, Title: readyTitle("t1"), RequestID: "req-1"},
		{Op: OpRegisterAppliance, Registration: registration("a1")},
		{Op: OpPutAppliance, Appliance: &Appliance{ID: "a1", Site: "isp1", Profile: "flash", URL: "http://127.0.0.1:8080"}},
		{Op: OpPutManifest, Manifest: &Manifest{Appliance: "a1", Version: 3, Titles: []string{"t1"}}},
		{Op: OpPutAPIKey, APIKey: &APIKey{ID: "k1", Scope: "read", Hash: auth.HashSecret("x")}, RequestID: "req-2"},
		{Op: OpPutRule, Rule: &Rule{ID: "r1", Kind: RuleDrain, Appliance: "a1"}},
		{Op: OpPutJob, Job: &Job{ID: "j1", Title: "t1", Status: JobRunning}},
		{Op: OpPutMember, Member: &Member{ID: "n1", RaftAddr: "127.0.0.1:7001", HTTPURL: "http://127.0.0.1:7000"}},
	}
	for _, c := range accountCommands() {
		cmds = append(cmds, Command{Op: OpAccounts, Accounts: &c})
	}
	return cmds
}

// fuzzFSM returns an FSM holding fuzzCommands' state, counting the
// changes it reports.
func fuzzFSM(tb testing.TB, changes *int) *FSM {
	m := New(func(Command) { *changes++ })
	for i, c := range fuzzCommands() {
		b, err := c.Encode()
		if err != nil {
			tb.Fatal(err)
		}
		if r := m.Apply(&raft.Log{Index: uint64(i + 1), Data: b}); r != nil {
			tb.Fatalf("apply %s: %v", c.Op, r)
		}
	}
	*changes = 0
	return m
}

// stateOf returns m's state as decoded JSON, comparable with
// reflect.DeepEqual (the accounts' tables encode in no order).
func stateOf(t *testing.T, m *FSM) any {
	var b []byte
	var err error
	m.Read(func(s *State) { b, err = json.Marshal(s) })
	if err != nil {
		t.Fatalf("encode state: %v", err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode state: %v", err)
	}
	return v
}

// persisted returns m's snapshot as Persist writes it.
func persisted(tb testing.TB, m *FSM) []byte {
	snap, err := m.Snapshot()
	if err != nil {
		tb.Fatal(err)
	}
	var s sink
	if err := snap.Persist(&s); err != nil {
		tb.Fatalf("persist: %v", err)
	}
	return s.Bytes()
}

// clientError reports whether err is one the API answers with a 4xx.
func clientError(err error) bool {
	for _, e := range []error{ErrInvalid, accounts.ErrInvalid, ErrExists, ErrLimit, ErrNotFound, fillcast.ErrConflict} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// FuzzCommand: a log entry that decodes and validates applies, or is
// refused with an error the API answers as the client's (4xx), leaving
// the state as it was; one that does not validate is refused by Apply
// too (ErrInvalid), without effect, but for the previous release's file
// lists, which Apply normalizes. An applied command's encoding
// validates again and encodes the same, and the state it leaves
// survives a snapshot and restore.
func FuzzCommand(f *testing.F) {
	at := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	for _, c := range append(fuzzCommands(),
		Command{Op: OpCreateTitle, Title: readyTitle("t1")},
		Command{Op: OpCreateTitle, Title: readyTitle("t2"), RequestID: "req-1"},
		Command{Op: OpDeleteTitle, ID: "t1", By: "ops", At: at},
		Command{Op: OpDeleteRule, ID: "r1", By: "ops", At: at},
		Command{Op: OpDeleteRule, ID: "nope"},
		Command{Op: OpRevokeAppliance, ID: "a1"},
		Command{Op: OpRevokeAppliance, ID: "a9"},
		Command{Op: OpDeleteAPIKey, ID: "k9"},
		Command{Op: OpPutAppliance, Appliance: &Appliance{ID: "a2", Site: "isp1", Profile: "flash", URL: "http://x:1"}},
		Command{Op: OpPutManifest, Manifest: &Manifest{Appliance: "a1", Version: 2, Titles: []string{"t1"}}},
		Command{Op: OpPutManifest, Manifest: &Manifest{Appliance: "a1", Version: 4, Titles: []string{"t9"}}},
		Command{Op: OpPutKeys, Keys: []auth.Key{{ID: "k1", Secret: "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"}}},
		Command{Op: OpPutSqueeze, Squeeze: &Squeeze{ID: "q1", Appliance: "a1", Status: SqueezeRunning, StepPercent: 10, Step: 10 * time.Second, MaxP99Millis: 50, MaxErrorRatio: 0.01, Started: at, Updated: at}},
		Command{Op: OpRemoveMember, ID: "n1"},
		Command{Op: OpPutSite, Site: &fillcast.Site{ID: "isp1", Kind: "isp", Region: "eu", FillWindow: "02:00-02:00"}},
		Command{Op: OpPutTitle, Title: withFiles("t2", filesOf(4, 0))},
		Command{Op: OpPutTitle, Title: &fillcast.Title{ID: "t1", Name: "Edited", Status: fillcast.StatusNew}},
		Command{Op: OpFilesPublished, ID: "t1", Digest: strings.Repeat("0", 64), ListIndex: 1},
		Command{Op: OpPutTitle, Title: withFiles("t3", []fillcast.File{{Path: "a", SHA256: strings.Repeat("A", 64)}, {Path: "a", Size: 1}})},
	) {
		b, err := c.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{`{"op":"put_api_key"}`, `{"op":"accounts","accounts":{}}`, `{"op":"billing","billing":{"op":"x"}}`,
		`{"op":"put_rule","rule":null}`, `{"op":"put_squeeze"}`, `{"op":"put_manifest","manifest":{"appliance":"a1","version":9,"titles":null}}`,
		`{"op":"put_title","title":{"id":"t1","name":" ","status":"new"}}`, `{"op":"register_appliance","registration":{}}`,
		`{"op":"put_keys","keys":[]}`, `{"op":"delete_title","id":"t1","request_id":"req-1"}`, `{"op":"put_job","job":{"id":"j","title":"t"}}`, `[]`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var changes int
		m := fuzzFSM(t, &changes)
		before := stateOf(t, m)
		var c Command
		decodeErr := json.Unmarshal(data, &c)
		verr := c.Validate()
		// Apply takes the file lists of the previous release, which
		// Validate refuses (legacy.go), and nothing else.
		_, lerr := c.validate(true)
		if verr == nil && lerr != nil {
			t.Fatalf("%s validates but not as a log entry: %v", data, lerr)
		}
		verr = lerr
		r := m.Apply(&raft.Log{Index: 100, Data: data})
		if decodeErr != nil || verr != nil {
			if verr != nil && decodeErr == nil && !errors.Is(verr, ErrInvalid) {
				t.Fatalf("Validate(%s) = %v, which does not wrap ErrInvalid", data, verr)
			}
			if r == nil || changes != 0 || !reflect.DeepEqual(stateOf(t, m), before) {
				t.Fatalf("Apply(%s) = %v with %d changes; want it refused without effect", data, r, changes)
			}
			return
		}
		if r != nil {
			if err, _ := r.(error); err == nil || !clientError(err) {
				t.Fatalf("Apply(%s) = %v, not a client error", data, r)
			}
			if changes != 0 || !reflect.DeepEqual(stateOf(t, m), before) {
				t.Fatalf("Apply(%s) refused (%v) but changed the state", data, r)
			}
			return
		}
		enc, err := c.Encode()
		if err != nil {
			t.Fatalf("applied %s; Encode: %v", data, err)
		}
		var again Command
		if err := json.Unmarshal(enc, &again); err != nil {
			t.Fatalf("applied %s; its encoding %s does not decode: %v", data, enc, err)
		}
		if _, err := again.validate(true); err != nil {
			t.Fatalf("applied %s; its encoding %s does not validate: %v", data, enc, err)
		}
		if enc2, err := again.Encode(); err != nil || !bytes.Equal(enc2, enc) {
			t.Fatalf("applied %s; encodes as %s, then as %s", data, enc, enc2)
		}
		g := New(nil)
		if err := g.Restore(io.NopCloser(bytes.NewReader(persisted(t, m)))); err != nil {
			t.Fatalf("applied %s; the snapshot does not restore: %v", data, err)
		}
		if !reflect.DeepEqual(stateOf(t, g), stateOf(t, m)) {
			t.Fatalf("applied %s; the restored state differs", data)
		}
	})
}

// FuzzRestore: whatever bytes a snapshot holds, Restore returns an error
// and leaves the state as it was, or replaces it with a complete state:
// every map present and no null record in any (readers take records
// as given), one that persists and restores to itself and takes writes.
func FuzzRestore(f *testing.F) {
	var changes int
	snap := persisted(f, fuzzFSM(f, &changes))
	f.Add(snap)
	f.Add(snap[:len(snap)/2])
	legacy, err := os.ReadFile("testdata/legacy-snapshot.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(legacy)
	for _, s := range []string{`{}`, `{}{}`, `{"titles":null}`, `{"requests":null}`, `{"billing":null}`, `{"accounts":null}`,
		`{"titles":{"t1":null}}`, `{"rules":{"r1":null}}`, `{"squeezes":{"q":null}}`, `{"requests":["a","a",""]}`,
		`{"titles":{}} null`, `{"titles":{}} {"plans":null}`, `{"rule_log":[null]}`, `[]`, `null`, ``, `{"titles":{"t1":{"id":"t2"}}}`,
		`{"titles":{"":{"id":"t2","files":[{"path":"a"}]}}}`, `{"titles":{"t1":{"id":"t1","files":[{"path":"a"},{"path":"a"}]}}}`,
		`{"file_lists":{"t1/_files/x":{"title":"t1","digest":"x","body":""}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var changes int
		m := fuzzFSM(t, &changes)
		before := stateOf(t, m)
		if err := m.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
			if changes != 0 || !reflect.DeepEqual(stateOf(t, m), before) {
				t.Fatalf("Restore(%q) failed (%v) but changed the state", data, err)
			}
			return
		}
		if changes != 1 {
			t.Fatalf("Restore(%q): %d changes reported, want 1", data, changes)
		}
		m.Read(func(s *State) {
			v := reflect.ValueOf(s).Elem()
			for i := range v.NumField() {
				fv, name := v.Field(i), v.Type().Field(i).Name
				switch {
				case fv.Kind() == reflect.Map && fv.IsNil():
					t.Fatalf("Restore(%q): State.%s is nil", data, name)
				case fv.Kind() == reflect.Map:
					for it := fv.MapRange(); it.Next(); {
						if it.Value().Kind() == reflect.Pointer && it.Value().IsNil() {
							t.Fatalf("Restore(%q): State.%s[%v] is null", data, name, it.Key())
						}
					}
				case fv.Kind() == reflect.Slice:
					for j := range fv.Len() {
						if e := fv.Index(j); e.Kind() == reflect.Pointer && e.IsNil() {
							t.Fatalf("Restore(%q): State.%s[%d] is null", data, name, j)
						}
					}
				case fv.Kind() == reflect.Pointer && fv.IsNil():
					t.Fatalf("Restore(%q): State.%s is nil", data, name)
				}
			}
		})
		g := New(nil)
		if err := g.Restore(io.NopCloser(bytes.NewReader(persisted(t, m)))); err != nil {
			t.Fatalf("Restore(%q): its snapshot does not restore: %v", data, err)
		}
		if !reflect.DeepEqual(stateOf(t, g), stateOf(t, m)) {
			t.Fatalf("Restore(%q): persisted and restored, the state differs", data)
		}
		for i, c := range fuzzCommands() {
			m.Apply(logOf(t, uint64(200+i), c))
		}
		m.Apply(logOf(t, 300, Command{Op: OpDeleteRule, ID: "r1", By: "ops"}))
		m.Apply(logOf(t, 301, Command{Op: OpRevokeAppliance, ID: "a1"}))
		persisted(t, m)
	})
}
