package client

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/client/clienttest"
)

func testUsage(appliance string) *fillcast.Usage {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return &fillcast.Usage{Appliance: appliance, Site: "s1", ID: appliance + "-1", Start: start, End: start.Add(10 * time.Second),
		Titles: []fillcast.UsageRow{{Title: "t1", Rendition: "720p", Requests: 3, Bytes: 4500, Status2xx: 3,
			CMCD: fillcast.UsageCMCD{Requests: 3, BitrateRequests: 3, BitrateKbpsSum: 9600}}}}
}

// credential signs appliance's credential with the cluster's keys.
func credential(t *testing.T, cl *clienttest.Cluster, appliance string) string {
	t.Helper()
	ks, err := auth.NewKeys(cl.Keys())
	if err != nil {
		t.Fatal(err)
	}
	cred, err := ks.SignCredential(appliance)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// TestReportUsage: a summary goes to the control plane with the
// appliance's own credential and no other's; the cluster counts it once
// however often it is sent, through whichever node.
func TestReportUsage(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 2)
	ctx := context.Background()
	tests := []struct {
		name   string
		token  string
		u      *fillcast.Usage
		status int // of the answer; 0 for none (not sent)
	}{
		{"own credential", credential(t, cl, "a1"), testUsage("a1"), http.StatusAccepted},
		{"admin token", clienttest.Token, testUsage("a1"), http.StatusAccepted},
		{"another appliance's credential", credential(t, cl, "a2"), testUsage("a1"), http.StatusForbidden},
		{"a token of no one", "x", testUsage("a1"), http.StatusUnauthorized},
		{"invalid summary", clienttest.Token, &fillcast.Usage{Appliance: "a1"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, Config{URLs: cl.URLs()}, Deps{Token: tt.token})
			calls := cl.Nodes()[0].Calls() + cl.Nodes()[1].Calls()
			err := c.ReportUsage(ctx, tt.u)
			switch {
			case tt.status == http.StatusAccepted && err != nil:
				t.Fatalf("ReportUsage: %v", err)
			case tt.status == 0 && !errors.Is(err, fillcast.ErrBadUsage):
				t.Fatalf("ReportUsage of an invalid summary: %v, want ErrBadUsage", err)
			case tt.status == 0 && cl.Nodes()[0].Calls()+cl.Nodes()[1].Calls() != calls:
				t.Fatal("an invalid summary was sent")
			case tt.status != http.StatusAccepted && tt.status != 0 && StatusCode(err) != tt.status:
				t.Fatalf("ReportUsage: %v, want status %d", err, tt.status)
			}
		})
	}
	// The first node fails: the summary goes to the second, and sent
	// again, it is still counted once.
	cl.Nodes()[0].Fail(http.StatusServiceUnavailable)
	c := newClient(t, Config{URLs: cl.URLs()}, Deps{Token: credential(t, cl, "a1")})
	u := testUsage("a1")
	u.ID = "a1-2"
	for range 2 {
		if err := c.ReportUsage(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	got := cl.Usage()
	if len(got) != 2 || got[0].ID != "a1-1" || got[1].ID != "a1-2" || got[1].Titles[0].CMCD.BitrateKbpsSum != 9600 {
		t.Errorf("the cluster holds %+v, want a1-1 and a1-2 once each", got)
	}
	if n := cl.Nodes()[1].UsageReports(); n < 2 {
		t.Errorf("the second node took %d summaries, want the two sends of a1-2 at least", n)
	}
}

// TestReportUsageAfterTimeout: a summary whose node took it but timed
// out goes on to the next node, as a heartbeat does, not as other writes:
// the control plane counts it once by its ID. The Timeout is long enough
// for the good node's answer under -race on a busy machine.
func TestReportUsageAfterTimeout(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 2)
	cl.Nodes()[0].SetFault(clienttest.Fault{AfterApply: true, Delay: hang})
	c := newClient(t, Config{URLs: cl.URLs(), Timeout: 2 * time.Second}, Deps{})
	err := returnsWithin(t, 30*time.Second, "ReportUsage", func() error { return c.ReportUsage(context.Background(), testUsage("a1")) })
	if err != nil {
		t.Fatalf("ReportUsage: %v, want the second node's answer", err)
	}
	if got := cl.Usage(); len(got) != 1 {
		t.Errorf("the cluster holds %d summaries, want 1", len(got))
	}
}
