package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/billing/subscriptions"
	"github.com/fillcast/fillcast/controlplane/client"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/fillcast/fillcast/internal/viewertest"
)

// TestBillingCommands: against a control-plane process, a viewer
// subscribes; fillcast billing renew charges the renewal, billing report
// counts the subscription, and billing verify finds the ledger and the
// invoices in agreement.
func TestBillingCommands(t *testing.T) {
	bin := fillcastBinary(t)
	e := newOpsEnv(t, 1000)
	n1 := startControlPlaneProc(t, bin, e, "n1", "")
	ops, err := client.New(client.Config{URLs: []string{n1.url}, Timeout: 5 * time.Second}, client.Deps{Token: "adm"})
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "a leader", func() bool {
		st, err := ops.Cluster(t.Context())
		return err == nil && st.Leader != ""
	})
	v := viewertest.New(t, nil, n1.url, "adm")
	req, _ := http.NewRequest("POST", n1.url+"/v1/subscriptions", strings.NewReader(`{"plan":"`+viewertest.Plan+`","payment_method":{"card":"4242424242424242"}}`))
	v.Authorize(req)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "first")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var sub subscriptions.View
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &sub) != nil {
		t.Fatalf("subscribe: %d %s", resp.StatusCode, body)
	}

	billing := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(t.Context(), append([]string{"billing"}, append(args, "--controlplane", n1.url, "--token", "adm")...), &out, &errb)
		return out.String() + errb.String(), err
	}
	out, err := billing("renew", "--as-of", sub.CurrentPeriodEnd.Add(time.Hour).Format(time.RFC3339))
	var res subscriptions.PassResult
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || res.Renewed != 1 {
		t.Fatalf("billing renew: %v\n%s", err, out)
	}
	out, err = billing("report")
	var rep subscriptions.Report
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || rep.ActiveByPlan[viewertest.Plan] != 1 {
		t.Fatalf("billing report: %v\n%s", err, out)
	}
	if out, err = billing("verify"); err != nil || !strings.Contains(out, "2 invoices") || !strings.Contains(out, "agree") {
		t.Fatalf("billing verify: %v\n%s", err, out)
	}
	if _, err := billing("refund"); err == nil {
		t.Fatal("billing refund: no error")
	}
}
