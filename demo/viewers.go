package demo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/controlplane/client"
)

// plans are the plans the demo offers, cheapest first: what each lets a
// viewer play (the appliances serve renditions up to MaxHeight only), on
// how many screens at once, and whether the MP4 downloads come with it.
var plans = []accounts.Plan{
	{ID: "basic", Name: "Basic", MaxHeight: 480, MaxStreams: 1, Downloads: false,
		Price: accounts.Money{Amount: 799, Currency: "EUR"}, Period: accounts.PeriodMonth},
	{ID: "standard", Name: "Standard", MaxHeight: 1080, MaxStreams: 2, Downloads: true,
		Price: accounts.Money{Amount: 1399, Currency: "EUR"}, Period: accounts.PeriodMonth},
	{ID: "premium", Name: "Premium", MaxHeight: 2160, MaxStreams: 4, Downloads: true,
		Price: accounts.Money{Amount: 1999, Currency: "EUR"}, Period: accounts.PeriodMonth},
}

// viewer is one of the demo's viewer accounts, one per plan: its
// password is made on the first run and kept in the demo's directory,
// like the admin token.
type viewer struct {
	Email, Plan, Password string
}

// viewerEmail is the address of the demo's account on plan.
func viewerEmail(plan string) string { return plan + "@demo.fillcast" }

// loadViewers reads the demo's accounts from path, a line
// "email plan password" each, writing the file first (mode 0600) with a
// random password per plan when it does not exist.
func loadViewers(path string) ([]viewer, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		var b strings.Builder
		for _, p := range plans {
			fmt.Fprintf(&b, "%s %s %s\n", viewerEmail(p.ID), p.ID, randomHex(8))
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	defer f.Close()
	var out []viewer
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 3 || len(fields[2]) < accounts.MinPasswordLen {
			return nil, fmt.Errorf("demo: %s: line %d: want \"email plan password\", the password at least %d characters", path, n, accounts.MinPasswordLen)
		}
		out = append(out, viewer{Email: fields[0], Plan: fields[1], Password: fields[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("demo: %s: %w", path, err)
	}
	return out, nil
}

// ensurePlans puts the demo's plans, as an operator does.
func (d *demo) ensurePlans(ctx context.Context) error {
	for _, p := range plans {
		if err := d.sys.API.Do(ctx, http.MethodPut, "/v1/plans/"+p.ID, p, nil); err != nil {
			return fmt.Errorf("demo: plan %s: %w", p.ID, err)
		}
	}
	return nil
}

// ensureViewers signs the demo's viewers up, as the sign-up page does;
// an account that exists already (409) is kept.
func (d *demo) ensureViewers(ctx context.Context) error {
	anon, err := d.viewerClient("")
	if err != nil {
		return err
	}
	defer anon.Close()
	for _, v := range d.viewers {
		err := anon.Do(ctx, http.MethodPost, "/v1/accounts", map[string]string{"email": v.Email, "password": v.Password, "plan": v.Plan}, nil)
		if err != nil && client.StatusCode(err) != http.StatusConflict {
			return fmt.Errorf("demo: sign up %s: %w", v.Email, err)
		}
	}
	return nil
}

// ensureSubscribed subscribes each demo viewer to its plan with the test
// provider's card that pays, as the account page does, so that the demo
// plays past the trial; a viewer subscribed already (409) is kept.
func (d *demo) ensureSubscribed(ctx context.Context) error {
	for _, v := range d.viewers {
		c, done, err := d.signIn(ctx, v)
		if err != nil {
			return err
		}
		err = c.DoIdempotent(ctx, http.MethodPost, "/v1/subscriptions", "demo-subscribe-"+v.Plan,
			map[string]any{"plan": v.Plan, "payment_method": map[string]string{"card": demoCard}}, nil)
		done()
		if err != nil && client.StatusCode(err) != http.StatusConflict {
			return fmt.Errorf("demo: subscribe %s: %w", v.Email, err)
		}
	}
	return nil
}

// demoCard is the test provider's card whose charges succeed.
const demoCard = "4242424242424242"

// signIn opens a session of v and returns a client that calls as v (its
// first profile), and a function that signs out and closes it.
func (d *demo) signIn(ctx context.Context, v viewer) (*client.Client, func(), error) {
	anon, err := d.viewerClient("")
	if err != nil {
		return nil, nil, err
	}
	defer anon.Close()
	var sess struct {
		Token string `json:"token"`
	}
	if err := anon.Do(ctx, http.MethodPost, "/v1/sessions", map[string]string{"email": v.Email, "password": v.Password}, &sess); err != nil {
		if client.StatusCode(err) == http.StatusUnauthorized {
			return nil, nil, fmt.Errorf("demo: sign in as %s: the password in %s/viewer-accounts is not the account's: delete the demo directory to start afresh: %w", v.Email, d.dir, err)
		}
		return nil, nil, fmt.Errorf("demo: sign in as %s: %w", v.Email, err)
	}
	c, err := d.viewerClient(sess.Token)
	if err != nil {
		return nil, nil, err
	}
	done := func() {
		c.Do(context.WithoutCancel(ctx), http.MethodDelete, "/v1/sessions/current", nil, nil) // it expires anyway
		c.Close()
	}
	return c, done, nil
}

// viewerClient is a client of the control plane that sends token (a
// viewer's session; none when empty) instead of the admin token.
func (d *demo) viewerClient(token string) (*client.Client, error) {
	return client.New(client.Config{URLs: []string{d.sys.ControlPlaneURL}}, client.Deps{Token: token, Log: d.log})
}
