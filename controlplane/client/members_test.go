package client

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/fillcast/fillcast/controlplane/client/clienttest"
)

// TestLearnsMembersFromOneSeed: the first call teaches the client every
// member, and a refresh every RefreshEvery follows the cluster as members
// join and leave; the seeds are always kept.
func TestLearnsMembersFromOneSeed(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 3)
	n := cl.Nodes()
	clk := &clock{t: time.Unix(1000, 0)}
	seed := n[0].URL
	c := newClient(t, Config{URLs: []string{seed}, RefreshEvery: time.Minute}, Deps{Now: clk.now})
	ctx := context.Background()
	if got := c.Members(); !slices.Equal(got, []string{seed}) {
		t.Fatalf("before any call: Members() = %v, want the seed alone", got)
	}
	if err := c.Heartbeat(ctx, "a1", beat); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Members(), cl.URLs(); !slices.Equal(got, want) {
		t.Fatalf("after one call: Members() = %v, want %v", got, want)
	}

	n4 := cl.Add(t)
	cl.Remove(n[0]) // the seed leaves the member list
	cl.Remove(n[1]) // and so does n2
	if err := c.Heartbeat(ctx, "a1", beat); err != nil {
		t.Fatal(err)
	}
	if got := c.Members(); slices.Contains(got, n4.URL) {
		t.Errorf("Members() = %v: refreshed before RefreshEvery passed", got)
	}
	clk.add(time.Minute)
	if err := c.Heartbeat(ctx, "a1", beat); err != nil {
		t.Fatal(err)
	}
	want := append([]string{seed}, cl.URLs()...) // n1 (a seed), n3, n4
	if got := c.Members(); !slices.Equal(got, want) {
		t.Errorf("after RefreshEvery: Members() = %v, want %v", got, want)
	}
}

// TestPartialMemberListKeepsNodes: a status that lists a member without
// its URL (not registered yet) drops no node the client knows; a
// complete one that no longer lists a node drops it.
func TestPartialMemberListKeepsNodes(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 3)
	n := cl.Nodes()
	clk := &clock{t: time.Unix(1000, 0)}
	c := newClient(t, Config{URLs: []string{n[0].URL}, RefreshEvery: time.Minute}, Deps{Now: clk.now})
	ctx := context.Background()
	tests := []struct {
		name string
		step func()
		want []string
	}{
		{"complete", func() {}, []string{n[0].URL, n[1].URL, n[2].URL}},
		{"n3 listed without its URL", func() { n[2].ListWithoutURL(true) }, []string{n[0].URL, n[1].URL, n[2].URL}},
		{"n2 gone, n3 still without", func() { cl.Remove(n[1]) }, []string{n[0].URL, n[1].URL, n[2].URL}},
		{"complete again, without n2", func() { n[2].ListWithoutURL(false) }, []string{n[0].URL, n[2].URL}},
	}
	for _, tt := range tests {
		tt.step()
		clk.add(time.Minute)
		if err := c.Heartbeat(ctx, "a1", beat); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := c.Members(); !slices.Equal(got, tt.want) {
			t.Errorf("%s: Members() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestFailedRefreshIsTriedAgain: a refresh that fails leaves it due, both
// the first one and one that a node's failure made due, so the next
// answer reads the members.
func TestFailedRefreshIsTriedAgain(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 3)
	n := cl.Nodes()
	clk := &clock{t: time.Unix(1000, 0)} // stands still: only a failure makes a refresh due
	c := newClient(t, Config{URLs: []string{n[0].URL}, RefreshEvery: time.Hour}, Deps{Now: clk.now})
	ctx := context.Background()
	refuseMembers := clienttest.Fault{Path: clienttest.ClusterPath, Status: http.StatusInternalServerError}

	// The first refresh fails.
	n[0].SetFault(refuseMembers)
	if err := c.Heartbeat(ctx, "a1", beat); err != nil {
		t.Fatal(err)
	}
	n[0].SetFault(clienttest.Fault{})
	if err := c.Heartbeat(ctx, "a1", beat); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Members(), cl.URLs(); !slices.Equal(got, want) {
		t.Fatalf("after a failed first refresh and an answer: Members() = %v, want %v", got, want)
	}

	// n1 fails, which makes a refresh due; n2 answers but cannot list
	// the members; the next answer reads them and finds n4.
	n4 := cl.Add(t)
	n[0].Fail(http.StatusServiceUnavailable)
	n[1].SetFault(refuseMembers)
	if err := c.Heartbeat(ctx, "a1", beat); err != nil {
		t.Fatal(err)
	}
	n[1].SetFault(clienttest.Fault{})
	if err := c.Heartbeat(ctx, "a1", beat); err != nil {
		t.Fatal(err)
	}
	if got := c.Members(); !slices.Contains(got, n4.URL) {
		t.Errorf("Members() = %v: the refresh a failure made due was lost when it failed", got)
	}
}
