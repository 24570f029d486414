package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRuleKinds(t *testing.T) {
	t.Parallel()
	site := &RuleTarget{Site: "s2"}
	tests := []struct {
		name string
		rule Rule
		ok   bool
	}{
		{"drain appliance", Rule{ID: "r", Kind: RuleDrain, Appliance: "a7"}, true},
		{"drain site", Rule{ID: "r", Kind: RuleDrain, Site: "s1"}, true},
		{"drain neither", Rule{ID: "r", Kind: RuleDrain}, false},
		{"no kind", Rule{ID: "r", Appliance: "a7"}, false},
		{"unknown kind", Rule{ID: "r", Kind: "explode"}, false},
		{"no id", Rule{Kind: RuleDrain, Site: "s1"}, false},
		{"canary", Rule{ID: "r", Kind: RuleCanary, Title: "*", Percent: 5, Target: &RuleTarget{Appliances: []string{"a7"}}}, true},
		{"canary over 100", Rule{ID: "r", Kind: RuleCanary, Title: "*", Percent: 120, Target: site}, false},
		{"canary no target", Rule{ID: "r", Kind: RuleCanary, Title: "*", Percent: 5}, false},
		{"canary both targets", Rule{ID: "r", Kind: RuleCanary, Title: "*", Percent: 5, Target: &RuleTarget{Site: "s", Appliances: []string{"a"}}}, false},
		{"route header", Rule{ID: "r", Kind: RuleRoute, Match: &RuleMatch{Header: "X-Fillcast-Beta", Value: "1"}, Target: site}, true},
		{"route no match", Rule{ID: "r", Kind: RuleRoute, Match: &RuleMatch{}, Target: site}, false},
		{"static", Rule{ID: "r", Kind: RuleStatic, Route: "GET /v1/search", Status: 503, Body: json.RawMessage(`{}`)}, true},
		{"static status 600", Rule{ID: "r", Kind: RuleStatic, Route: "GET /v1/search", Status: 600}, false},
		{"limit class", Rule{ID: "r", Kind: RuleLimit, Class: "anonymous", PerSecond: 5, Burst: 10}, true},
		{"limit neither", Rule{ID: "r", Kind: RuleLimit, PerSecond: 5}, false},
		{"limit negative", Rule{ID: "r", Kind: RuleLimit, Route: "search", PerSecond: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.rule
			err := Command{Op: OpPutRule, Rule: &r}.Validate()
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestRuleOldAction(t *testing.T) {
	t.Parallel()
	var r Rule
	if err := json.Unmarshal([]byte(`{"id":"r1","action":"drain","appliance":"a7","future":1}`), &r); err != nil {
		t.Fatal(err)
	}
	if want := (Rule{ID: "r1", Kind: RuleDrain, Appliance: "a7"}); !reflect.DeepEqual(r, want) {
		t.Errorf("decoded %+v, want %+v", r, want)
	}
	b, _ := json.Marshal(r)
	if got, want := string(b), `{"id":"r1","kind":"drain","appliance":"a7"}`; got != want {
		t.Errorf("encoded %s, want %s", got, want)
	}
	var s StrictRule
	if err := json.Unmarshal([]byte(`{"action":"drain","site":"s1"}`), &s); err != nil || s.Kind != RuleDrain || s.Site != "s1" {
		t.Errorf("strict decode of an old rule: %+v, %v", s.Rule, err)
	}
	if err := json.Unmarshal([]byte(`{"kind":"drain","site":"s1","sitee":"x"}`), &s); err == nil || !strings.Contains(err.Error(), "sitee") {
		t.Errorf("strict decode of an unknown key: %v, want an error naming it", err)
	}
	if err := json.Unmarshal([]byte(`{"kind":"canary","action":"drain"}`), &r); err != nil || r.Kind != RuleCanary {
		t.Errorf("kind and action: got kind %q (%v), want the kind", r.Kind, err)
	}
}

func TestRuleAuditLog(t *testing.T) {
	t.Parallel()
	f := New(nil)
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	i := uint64(0)
	apply := func(c Command) {
		t.Helper()
		i++
		if r := f.Apply(logOf(t, i, c)); r != nil {
			t.Fatalf("apply %s: %v", c.Op, r)
		}
	}
	for n := range RuleLogLen + 5 {
		apply(Command{Op: OpPutRule, Rule: &Rule{ID: fmt.Sprintf("r%d", n%3), Kind: RuleDrain, Site: "s1", UpdatedBy: "operator:k1", Updated: at.Add(time.Duration(n) * time.Second)}})
	}
	apply(Command{Op: OpDeleteRule, ID: "r1", By: "operator:k2", At: at.Add(time.Hour)})
	apply(Command{Op: OpDeleteRule, ID: "nope", By: "operator:k2", At: at.Add(time.Hour)})
	check := func(name string, s *State) {
		if len(s.RuleLog) != RuleLogLen {
			t.Fatalf("%s: log has %d entries, want %d", name, len(s.RuleLog), RuleLogLen)
		}
		last, first := s.RuleLog[len(s.RuleLog)-1], s.RuleLog[0]
		if last.Op != "delete" || last.ID != "r1" || last.By != "operator:k2" || !last.At.Equal(at.Add(time.Hour)) || last.Rule != nil {
			t.Errorf("%s: last entry %+v, want the deletion of r1 by operator:k2", name, last)
		}
		// 1005 puts and a deletion: the first 6 puts are forgotten.
		if first.Op != "put" || first.Rule == nil || !first.At.Equal(at.Add(6*time.Second)) || first.By != "operator:k1" {
			t.Errorf("%s: first entry %+v, want the put at +6s", name, first)
		}
		if s.Rules["r1"] != nil || s.Rules["r0"] == nil {
			t.Errorf("%s: rules %v", name, s.Rules)
		}
	}
	f.Read(func(s *State) { check("live", s) })
	g := snapshotCopy(t, f)
	g.Read(func(s *State) { check("restored", s) })
}

// snapshotCopy persists f's snapshot and restores it into a new FSM.
func snapshotCopy(t *testing.T, f *FSM) *FSM {
	t.Helper()
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
	return g
}

func TestStampIgnoresAudit(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	a := Command{Op: OpPutRule, Rule: &Rule{ID: "r", Kind: RuleDrain, Site: "s1", UpdatedBy: "x", Updated: at}}
	b := Command{Op: OpPutRule, Rule: &Rule{ID: "r", Kind: RuleDrain, Site: "s1", UpdatedBy: "x", Updated: at.Add(time.Second)}}
	c := Command{Op: OpPutRule, Rule: &Rule{ID: "r", Kind: RuleDrain, Site: "s2", UpdatedBy: "x", Updated: at}}
	a.Stamp("req")
	b.Stamp("req")
	c.Stamp("req")
	if a.RequestID != b.RequestID || a.RequestID == c.RequestID {
		t.Errorf("request ids %q %q %q: want the retry (other time) equal and the other rule different", a.RequestID, b.RequestID, c.RequestID)
	}
	if !b.Rule.Updated.Equal(at.Add(time.Second)) {
		t.Error("Stamp changed the command's rule")
	}
}

// TestRestoreOldRules: a snapshot written before rule kinds existed
// restores with its drain rules as kind drain, and without a rule log or
// squeezes.
func TestRestoreOldRules(t *testing.T) {
	t.Parallel()
	old := `{"titles":{},"rules":{"r1":{"id":"r1","action":"drain","site":"s1"}}}`
	f := New(nil)
	if err := f.Restore(io.NopCloser(strings.NewReader(old))); err != nil {
		t.Fatal(err)
	}
	f.Read(func(s *State) {
		if r := s.Rules["r1"]; r == nil || r.Kind != RuleDrain || r.Site != "s1" {
			t.Errorf("restored rule %+v, want a drain of s1", r)
		}
		if s.Squeezes == nil || len(s.RuleLog) != 0 {
			t.Errorf("restored squeezes %v, rule log %v", s.Squeezes, s.RuleLog)
		}
	})
}
