package fsm

import (
	"errors"
	"fmt"
	"testing"

	"github.com/fillcast/fillcast/auth"
)

func registration(id string) *Registration {
	return &Registration{ID: id, Site: "isp1", Profile: "flash", URLs: []string{"http://127.0.0.1:8080"}, CredentialHash: auth.HashSecret("cred-" + id)}
}

// TestConditionalWrites: creating a title that exists, putting the
// registry entry of an unregistered appliance and deleting what is not
// there are refused the same way on every node.
func TestConditionalWrites(t *testing.T) {
	t.Parallel()
	f := New(nil)
	steps := []struct {
		c    Command
		want error
	}{
		{Command{Op: OpCreateTitle, Title: readyTitle("t1")}, nil},
		{Command{Op: OpCreateTitle, Title: readyTitle("t1")}, ErrExists},
		{Command{Op: OpPutAppliance, Appliance: &Appliance{ID: "a1", Site: "isp1", Profile: "flash", URL: "http://127.0.0.1:8080"}}, ErrNotFound},
		{Command{Op: OpRegisterAppliance, Registration: registration("a1")}, nil},
		{Command{Op: OpPutAppliance, Appliance: &Appliance{ID: "a1", Site: "isp1", Profile: "flash", URL: "http://127.0.0.1:8080"}}, nil},
		{Command{Op: OpPutManifest, Manifest: &Manifest{Appliance: "a1", Version: 1, Titles: []string{"t1"}}}, nil},
		{Command{Op: OpRevokeAppliance, ID: "a1"}, nil},
		{Command{Op: OpRevokeAppliance, ID: "a1"}, ErrNotFound},
		{Command{Op: OpDeleteAPIKey, ID: "nope"}, ErrNotFound},
		{Command{Op: OpRegisterAppliance, Registration: &Registration{ID: "a2", Site: "isp1", Profile: "flash", URLs: []string{"ftp://x"}, CredentialHash: auth.HashSecret("c")}}, ErrInvalid},
		{Command{Op: OpPutAPIKey, APIKey: &APIKey{ID: "k", Scope: "root", Hash: auth.HashSecret("c")}}, ErrInvalid},
	}
	for i, s := range steps {
		r := f.Apply(logOf(t, uint64(i+1), s.c))
		err, _ := r.(error)
		if (s.want == nil) != (err == nil) || (s.want != nil && !errors.Is(err, s.want)) {
			t.Errorf("step %d %s: %v, want %v", i, s.c.Op, err, s.want)
		}
	}
	f.Read(func(s *State) {
		if s.Appliances["a1"] != nil || s.Manifests["a1"] != nil || s.Registrations["a1"] != nil {
			t.Error("revoking a1 left its registry entry, plan or registration")
		}
	})
}

// TestRequestIDAppliesOnce: a command proposed again with the same
// request id (a retry after a leader change) has no second effect, and the
// log forgets the oldest ids beyond its bound.
func TestRequestIDAppliesOnce(t *testing.T) {
	t.Parallel()
	f := New(nil)
	create := Command{Op: OpCreateTitle, Title: readyTitle("t1"), RequestID: "r1"}
	if r := f.Apply(logOf(t, 1, create)); r != nil {
		t.Fatal(r)
	}
	if r := f.Apply(logOf(t, 2, create)); r != nil {
		t.Fatalf("retried create: %v, want the first answer (nil)", r)
	}
	create.RequestID = "r2"
	if r, _ := f.Apply(logOf(t, 3, create)).(error); !errors.Is(r, ErrExists) {
		t.Fatalf("second create with a new id: %v, want ErrExists", r)
	}
	var l RequestLog
	for i := range keptRequests + 10 {
		l.Add(fmt.Sprint(i))
	}
	if l.Seen("0") || l.Seen("9") || !l.Seen("10") || !l.Seen(fmt.Sprint(keptRequests+9)) || len(l.set) != keptRequests {
		t.Errorf("request log keeps %d ids, first ten forgotten: %v", len(l.set), !l.Seen("9"))
	}
	if got := l.clone().ordered(); got[0] != "10" || len(got) != keptRequests {
		t.Errorf("clone starts at %s with %d ids", got[0], len(got))
	}
}
