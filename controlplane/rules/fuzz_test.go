package rules

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/fillcast/fillcast/controlplane/fsm"
)

// FuzzRule decodes arbitrary bytes as a rule, as the state and the API
// do: Validate never panics, a rule it accepts passes the fsm's check,
// survives a JSON round trip and compiles, and compiling whatever
// decoded never panics either.
func FuzzRule(f *testing.F) {
	for _, s := range []string{
		`{"kind":"drain","appliance":"a7"}`,
		`{"action":"drain","site":"s1"}`,
		`{"kind":"canary","title":"*","percent":5,"target":{"appliances":["a7"]}}`,
		`{"kind":"route","match":{"header":"X-Fillcast-Beta","value":"1"},"target":{"site":"s2"}}`,
		`{"kind":"route","match":{"prefix":"10.9.0.0/16"},"target":{"appliances":["a1","a2"]}}`,
		`{"kind":"static","route":"GET /v1/search","status":503,"body":{"error":"search is down for maintenance"},"retry_after":120}`,
		`{"kind":"limit","route":"search","class":"anonymous","per_second":5,"burst":10}`,
		`{"kind":"static","route":"GET /v1/search","status":503,"body":{"a":"<&>"}}`,
		`{"kind":"canary","title":"t1","percent":1e-300,"target":{"site":"s"}}`,
		`{"id":"x","kind":"limit","class":"viewer","updated":"2026-12-06T10:00:00Z","updated_by":"operator:k1"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r fsm.Rule
		if json.Unmarshal(b, &r) != nil {
			return
		}
		Compile(map[string]*fsm.Rule{r.ID: &r})
		if r.ID == "" {
			r.ID = "r1"
		}
		if Validate(&r, routes) != nil {
			return
		}
		if err := (fsm.Command{Op: fsm.OpPutRule, Rule: &r}).Validate(); err != nil {
			t.Fatalf("Validate accepted %s, the fsm refuses it: %v", b, err)
		}
		once, err := json.Marshal(&r)
		if err != nil {
			t.Fatalf("marshal %+v: %v", r, err)
		}
		var back fsm.Rule
		if err := json.Unmarshal(once, &back); err != nil {
			t.Fatalf("decode %s: %v", once, err)
		}
		if err := Validate(&back, routes); err != nil {
			t.Fatalf("%s valid, its round trip %s not: %v", b, once, err)
		}
		twice, _ := json.Marshal(&back)
		if !bytes.Equal(once, twice) {
			t.Fatalf("round trip changed the rule:\n%s\n%s", once, twice)
		}
		// Body bytes are compacted by the encoder; all else is equal.
		r.Body, back.Body = nil, nil
		if !reflect.DeepEqual(r, back) {
			t.Fatalf("round trip changed the rule:\n%+v\n%+v", r, back)
		}
		var strict fsm.StrictRule
		if err := json.Unmarshal(once, &strict); err != nil {
			t.Fatalf("strict decode of %s: %v", once, err)
		}
	})
}
