package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/fillcast/fillcast/accounts"
)

// TestTableClone: a clone keeps what the table held when it was made,
// whatever is written to either afterwards, and both encode as plain
// JSON objects that decode back.
func TestTableClone(t *testing.T) {
	tb := NewTable[int]()
	for i := range 1000 {
		tb.Set(fmt.Sprint("k", i), i)
	}
	snap := tb.Clone()
	tb.Set("k1", -1)
	tb.Delete("k2")
	tb.Set("new", 7)
	tb.Delete("absent")
	if v, _ := snap.Get("k1"); v != 1 {
		t.Errorf("clone k1 = %d after a write to the table, want 1", v)
	}
	if _, ok := snap.Get("k2"); !ok || snap.Len() != 1000 {
		t.Errorf("clone lost k2 or changed length (%d)", snap.Len())
	}
	if _, ok := snap.Get("new"); ok {
		t.Error("a record set after the clone is in it")
	}
	if v, _ := tb.Get("k1"); v != -1 || tb.Len() != 1000 || tb.At("k2") != 0 {
		t.Errorf("table after writes: k1 %d, len %d", v, tb.Len())
	}
	snap.Set("k3", -3) // the clone is writable too, without touching tb
	if tb.At("k3") != 3 {
		t.Errorf("a write to the clone reached the table: k3 = %d", tb.At("k3"))
	}
	b, err := json.Marshal(tb)
	if err != nil {
		t.Fatal(err)
	}
	var plain map[string]int
	if err := json.Unmarshal(b, &plain); err != nil || len(plain) != 1000 || plain["new"] != 7 {
		t.Fatalf("encoded %d records (%v), want a plain object of 1000", len(plain), err)
	}
	back := NewTable[int]()
	if err := json.Unmarshal(b, back); err != nil || back.Len() != 1000 || back.At("k1") != -1 {
		t.Errorf("decoded back: len %d, k1 %d, %v", back.Len(), back.At("k1"), err)
	}
}

// TestStateJSON: what WriteJSON writes, ReadJSON reads back, skipping a
// field it does not know.
func TestStateJSON(t *testing.T) {
	s := NewLocal()
	ctx := context.Background()
	for _, c := range []Command{
		{Op: OpPutPlan, Plan: &accounts.Plan{ID: "basic", Name: "Basic", MaxHeight: 480, MaxStreams: 1, Price: accounts.Money{Amount: 1, Currency: "EUR"}, Period: "month"}},
		{Op: OpCreateAccount, Account: &accounts.Account{ID: "a1", Email: "ann@example.com", PasswordHash: "$argon2id$x", Plan: "basic"}, Profile: &accounts.Profile{ID: "p1", Account: "a1", Name: "Ann"}},
	} {
		if err := s.do(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	s.read(func(st *State) {
		if err := st.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
	})
	text := strings.Replace(b.String(), `{"plans":`, `{"future":[1,{"x":2}],"plans":`, 1)
	back := NewState()
	if err := back.ReadJSON(json.NewDecoder(strings.NewReader(text))); err != nil {
		t.Fatalf("ReadJSON(%s): %v", text, err)
	}
	back.Rebuild()
	if id, ok := back.EmailOwner("ann@example.com"); !ok || id != "a1" || back.Plans["basic"] == nil || len(back.Profiles.At("a1")) != 1 {
		t.Errorf("read back: owner %q %v, plans %v", id, ok, back.Plans)
	}
}
