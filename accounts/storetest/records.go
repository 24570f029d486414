package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/fillcast/fillcast/accounts"
)

func testPlans(t *testing.T, f *fixture) {
	got, err := f.s.Plans(f.ctx)
	f.ok("Plans of an empty store", err)
	same(t, "Plans of an empty store", got, nil)

	basic, premium := planBasic(), planPremium()
	free := accounts.Plan{ID: "a-free", Name: "Free", MaxHeight: 480, MaxStreams: 1, Price: accounts.Money{Currency: "USD"}, Period: accounts.PeriodMonth}
	for _, p := range []accounts.Plan{premium, basic, free} {
		f.ok("PutPlan "+p.ID, f.s.PutPlan(f.ctx, p))
	}
	got, err = f.s.Plans(f.ctx)
	f.ok("Plans", err)
	same(t, "Plans, ordered by id", got, []accounts.Plan{free, basic, premium})

	// PutPlan of an existing id replaces the plan.
	basic.Name, basic.MaxStreams, basic.Price.Amount, basic.Downloads = "Basic with ads", 2, 499, true
	f.ok("PutPlan replacing basic", f.s.PutPlan(f.ctx, basic))
	got, err = f.s.Plans(f.ctx)
	f.ok("Plans", err)
	same(t, "Plans after replacing basic", got, []accounts.Plan{free, basic, premium})
}

func testCreateAccount(t *testing.T, f *fixture) {
	f.ok("PutPlan", f.s.PutPlan(f.ctx, planBasic()))
	a, p := f.account("acct-1", "viewer@example.com")
	p.Kids = true
	f.ok("CreateAccount", f.s.CreateAccount(f.ctx, a, p))

	got, err := f.s.Account(f.ctx, a.ID)
	f.ok("Account", err)
	same(t, "Account", got, a)
	got, err = f.s.AccountByEmail(f.ctx, a.Email)
	f.ok("AccountByEmail", err)
	same(t, "AccountByEmail", got, a)
	profiles, err := f.s.Profiles(f.ctx, a.ID)
	f.ok("Profiles", err)
	same(t, "Profiles of a new account", profiles, []accounts.Profile{p})

	// A second account on another plan stays apart.
	f.ok("PutPlan premium", f.s.PutPlan(f.ctx, planPremium()))
	b, q := f.account("acct-2", "other@example.com")
	b.Plan, b.Created, q.Created = "premium", at(60), at(60)
	f.ok("CreateAccount acct-2", f.s.CreateAccount(f.ctx, b, q))
	got, err = f.s.AccountByEmail(f.ctx, b.Email)
	f.ok("AccountByEmail acct-2", err)
	same(t, "AccountByEmail acct-2", got, b)
	profiles, err = f.s.Profiles(f.ctx, a.ID)
	f.ok("Profiles", err)
	same(t, "Profiles of acct-1 after acct-2 was created", profiles, []accounts.Profile{p})
}

func testCreateAccountTaken(t *testing.T, f *fixture) {
	a, _ := f.withAccount("acct-1")
	for _, c := range []struct{ name, id, email string }{
		{"email taken, another id", "acct-2", a.Email},
		{"id taken, another email", a.ID, "else@example.com"},
		{"both taken", a.ID, a.Email},
	} {
		b, q := f.account(c.id, c.email)
		q.ID = "new-profile"
		f.wantErr("CreateAccount, "+c.name, f.s.CreateAccount(f.ctx, b, q), accounts.ErrExists)
	}
	got, err := f.s.Account(f.ctx, a.ID)
	f.ok("Account", err)
	same(t, "the account whose email or id was taken", got, a)
	_, err = f.s.Account(f.ctx, "acct-2")
	f.wantErr("Account of a refused create", err, accounts.ErrNotFound)
	_, err = f.s.AccountByEmail(f.ctx, "else@example.com")
	f.wantErr("AccountByEmail of a refused create", err, accounts.ErrNotFound)
	profiles, err := f.s.Profiles(f.ctx, a.ID)
	f.ok("Profiles", err)
	if len(profiles) != 1 {
		t.Errorf("Profiles of acct-1 after refused creates: got %d, want 1", len(profiles))
	}
}

func testCreateAccountUnknownPlan(t *testing.T, f *fixture) {
	f.ok("PutPlan", f.s.PutPlan(f.ctx, planBasic()))
	a, p := f.account("acct-1", "viewer@example.com")
	a.Plan = "gold"
	f.wantErr("CreateAccount on an unknown plan", f.s.CreateAccount(f.ctx, a, p), accounts.ErrNotFound)
	_, err := f.s.AccountByEmail(f.ctx, a.Email)
	f.wantErr("AccountByEmail after a refused create", err, accounts.ErrNotFound)
	profiles, err := f.s.Profiles(f.ctx, a.ID)
	f.ok("Profiles", err)
	same(t, "Profiles after a refused create", profiles, nil)
}

func testCreateAccountConcurrentEmail(t *testing.T, f *fixture) {
	f.ok("PutPlan", f.s.PutPlan(f.ctx, planBasic()))
	const n = 10
	won := Race(t, "CreateAccount racing for one email", n, accounts.ErrExists, func(i int) error {
		a, p := f.account(fmt.Sprintf("acct-%d", i), "same@example.com")
		return f.s.CreateAccount(f.ctx, a, p)
	})
	if won != 1 {
		t.Errorf("CreateAccount of one email from %d goroutines: %d succeeded, want 1", n, won)
	}
}

func testAccountNotFound(t *testing.T, f *fixture) {
	f.withAccount("acct-1")
	_, err := f.s.Account(f.ctx, "acct-2")
	f.wantErr("Account of an unknown id", err, accounts.ErrNotFound)
	_, err = f.s.AccountByEmail(f.ctx, "nobody@example.com")
	f.wantErr("AccountByEmail of an unknown email", err, accounts.ErrNotFound)
}

// profile returns the profile number i of account, created i minutes
// after T0.
func profile(account string, i int) accounts.Profile {
	return accounts.Profile{ID: fmt.Sprintf("%s-p%d", account, i), Account: account, Name: fmt.Sprintf("Viewer %d", i), Kids: i%2 == 0, Created: at(60 * i)}
}

func testProfiles(t *testing.T, f *fixture) {
	_, first := f.withAccount("acct-1")
	f.withAccount("acct-2")
	want := []accounts.Profile{first}
	for i := 1; i <= 3; i++ {
		p := profile("acct-1", i)
		f.ok("AddProfile", f.s.AddProfile(f.ctx, p, 5))
		want = append(want, p)
	}
	f.ok("AddProfile acct-2", f.s.AddProfile(f.ctx, profile("acct-2", 1), 5))
	got, err := f.s.Profiles(f.ctx, "acct-1")
	f.ok("Profiles", err)
	same(t, "Profiles, oldest first", got, want)
}

func testAddProfileLimit(t *testing.T, f *fixture) {
	f.withAccount("acct-1")
	for i := 1; i <= 4; i++ {
		f.ok(fmt.Sprintf("AddProfile, profile %d of 5", i+1), f.s.AddProfile(f.ctx, profile("acct-1", i), 5))
	}
	f.wantErr("AddProfile, profile 6 of 5", f.s.AddProfile(f.ctx, profile("acct-1", 5), 5), accounts.ErrLimit)
	f.wantErr("AddProfile, profile 6 of 3", f.s.AddProfile(f.ctx, profile("acct-1", 5), 3), accounts.ErrLimit)
	got, err := f.s.Profiles(f.ctx, "acct-1")
	f.ok("Profiles", err)
	if len(got) != 5 {
		t.Errorf("Profiles after refused adds: got %d, want 5", len(got))
	}
	f.ok("AddProfile, profile 6 of 6", f.s.AddProfile(f.ctx, profile("acct-1", 5), 6))
	f.wantErr("AddProfile of an id the account has", f.s.AddProfile(f.ctx, profile("acct-1", 5), 9), accounts.ErrExists)
}

func testAddProfileUnknownAccount(t *testing.T, f *fixture) {
	f.withAccount("acct-1")
	f.wantErr("AddProfile to an unknown account", f.s.AddProfile(f.ctx, profile("acct-9", 1), 5), accounts.ErrNotFound)
}

func testAddProfileConcurrent(t *testing.T, f *fixture) {
	f.withAccount("acct-1")
	const n = 12
	added := Race(t, "AddProfile racing", n, accounts.ErrLimit, func(i int) error { return f.s.AddProfile(f.ctx, profile("acct-1", i+1), 5) })
	got, err := f.s.Profiles(f.ctx, "acct-1")
	f.ok("Profiles", err)
	if added != 4 || len(got) != 5 {
		t.Errorf("AddProfile from %d goroutines to an account of 1 with max 5: %d added, %d profiles; want 4 and 5", n, added, len(got))
	}
}

func testDeleteProfile(t *testing.T, f *fixture) {
	_, first := f.withAccount("acct-1")
	f.withAccount("acct-2")
	p1, p2 := profile("acct-1", 1), profile("acct-1", 2)
	f.ok("AddProfile", f.s.AddProfile(f.ctx, p1, 3))
	f.ok("AddProfile", f.s.AddProfile(f.ctx, p2, 3))

	f.wantErr("DeleteProfile of the first", f.s.DeleteProfile(f.ctx, "acct-1", first.ID), accounts.ErrLimit)
	f.wantErr("DeleteProfile of an unknown id", f.s.DeleteProfile(f.ctx, "acct-1", "nobody"), accounts.ErrNotFound)
	f.wantErr("DeleteProfile of another account's profile", f.s.DeleteProfile(f.ctx, "acct-2", p1.ID), accounts.ErrNotFound)
	f.wantErr("DeleteProfile of an unknown account", f.s.DeleteProfile(f.ctx, "acct-9", p1.ID), accounts.ErrNotFound)

	f.ok("DeleteProfile", f.s.DeleteProfile(f.ctx, "acct-1", p1.ID))
	got, err := f.s.Profiles(f.ctx, "acct-1")
	f.ok("Profiles", err)
	same(t, "Profiles after a delete", got, []accounts.Profile{first, p2})
	f.wantErr("DeleteProfile again", f.s.DeleteProfile(f.ctx, "acct-1", p1.ID), accounts.ErrNotFound)

	// The deleted profile's slot is free again.
	p3 := profile("acct-1", 3)
	f.ok("AddProfile into the freed slot", f.s.AddProfile(f.ctx, p3, 3))
	got, err = f.s.Profiles(f.ctx, "acct-1")
	f.ok("Profiles", err)
	same(t, "Profiles after delete and add", got, []accounts.Profile{first, p2, p3})
}

// Race calls fn(0) … fn(n-1) from n goroutines let go at once, and
// returns how many succeeded; an error other than lose (the one the
// losers of the race must get) fails t, named by what.
func Race(t *testing.T, what string, n int, lose error, fn func(i int) error) int {
	t.Helper()
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, lose):
			t.Errorf("%s: got %v, want nil or %v", what, err, lose)
		}
	}
	return won
}
