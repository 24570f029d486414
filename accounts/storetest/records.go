package storetest

import (
	"fmt"
	"testing"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/internal/storecheck"
)

func testPlans(t *testing.T, f *fixture) {
	got, err := f.s.Plans(f.ctx)
	storecheck.OK(t, "Plans of an empty store", err)
	storecheck.Same(t, "Plans of an empty store", got, nil)

	basic, premium := planBasic(), planPremium()
	free := accounts.Plan{ID: "a-free", Name: "Free", MaxHeight: 480, MaxStreams: 1, Price: accounts.Money{Currency: "USD"}, Period: accounts.PeriodMonth}
	for _, p := range []accounts.Plan{premium, basic, free} {
		storecheck.OK(t, "PutPlan "+p.ID, f.s.PutPlan(f.ctx, p))
	}
	got, err = f.s.Plans(f.ctx)
	storecheck.OK(t, "Plans", err)
	storecheck.Same(t, "Plans, ordered by id", got, []accounts.Plan{free, basic, premium})

	// PutPlan of an existing id replaces the plan.
	basic.Name, basic.MaxStreams, basic.Price.Amount, basic.Downloads = "Basic with ads", 2, 499, true
	storecheck.OK(t, "PutPlan replacing basic", f.s.PutPlan(f.ctx, basic))
	got, err = f.s.Plans(f.ctx)
	storecheck.OK(t, "Plans", err)
	storecheck.Same(t, "Plans after replacing basic", got, []accounts.Plan{free, basic, premium})
}

func testCreateAccount(t *testing.T, f *fixture) {
	storecheck.OK(t, "PutPlan", f.s.PutPlan(f.ctx, planBasic()))
	a, p := f.account("acct-1", "viewer@example.com")
	p.Kids = true
	storecheck.OK(t, "CreateAccount", f.s.CreateAccount(f.ctx, a, p))

	got, err := f.s.Account(f.ctx, a.ID)
	storecheck.OK(t, "Account", err)
	storecheck.Same(t, "Account", got, a)
	got, err = f.s.AccountByEmail(f.ctx, a.Email)
	storecheck.OK(t, "AccountByEmail", err)
	storecheck.Same(t, "AccountByEmail", got, a)
	profiles, err := f.s.Profiles(f.ctx, a.ID)
	storecheck.OK(t, "Profiles", err)
	storecheck.Same(t, "Profiles of a new account", profiles, []accounts.Profile{p})

	// A second account on another plan stays apart.
	storecheck.OK(t, "PutPlan premium", f.s.PutPlan(f.ctx, planPremium()))
	b, q := f.account("acct-2", "other@example.com")
	b.Plan, b.Created, q.Created = "premium", at(60), at(60)
	storecheck.OK(t, "CreateAccount acct-2", f.s.CreateAccount(f.ctx, b, q))
	got, err = f.s.AccountByEmail(f.ctx, b.Email)
	storecheck.OK(t, "AccountByEmail acct-2", err)
	storecheck.Same(t, "AccountByEmail acct-2", got, b)
	profiles, err = f.s.Profiles(f.ctx, a.ID)
	storecheck.OK(t, "Profiles", err)
	storecheck.Same(t, "Profiles of acct-1 after acct-2 was created", profiles, []accounts.Profile{p})
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
		storecheck.WantErr(t, "CreateAccount, "+c.name, f.s.CreateAccount(f.ctx, b, q), accounts.ErrExists)
	}
	got, err := f.s.Account(f.ctx, a.ID)
	storecheck.OK(t, "Account", err)
	storecheck.Same(t, "the account whose email or id was taken", got, a)
	_, err = f.s.Account(f.ctx, "acct-2")
	storecheck.WantErr(t, "Account of a refused create", err, accounts.ErrNotFound)
	_, err = f.s.AccountByEmail(f.ctx, "else@example.com")
	storecheck.WantErr(t, "AccountByEmail of a refused create", err, accounts.ErrNotFound)
	profiles, err := f.s.Profiles(f.ctx, a.ID)
	storecheck.OK(t, "Profiles", err)
	if len(profiles) != 1 {
		t.Errorf("Profiles of acct-1 after refused creates: got %d, want 1", len(profiles))
	}
}

func testCreateAccountUnknownPlan(t *testing.T, f *fixture) {
	storecheck.OK(t, "PutPlan", f.s.PutPlan(f.ctx, planBasic()))
	a, p := f.account("acct-1", "viewer@example.com")
	a.Plan = "gold"
	storecheck.WantErr(t, "CreateAccount on an unknown plan", f.s.CreateAccount(f.ctx, a, p), accounts.ErrNotFound)
	_, err := f.s.AccountByEmail(f.ctx, a.Email)
	storecheck.WantErr(t, "AccountByEmail after a refused create", err, accounts.ErrNotFound)
	profiles, err := f.s.Profiles(f.ctx, a.ID)
	storecheck.OK(t, "Profiles", err)
	storecheck.Same(t, "Profiles after a refused create", profiles, nil)
}

func testCreateAccountConcurrentEmail(t *testing.T, f *fixture) {
	storecheck.OK(t, "PutPlan", f.s.PutPlan(f.ctx, planBasic()))
	const n = 10
	won := storecheck.Race(t, "CreateAccount racing for one email", n, accounts.ErrExists, func(i int) error {
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
	storecheck.WantErr(t, "Account of an unknown id", err, accounts.ErrNotFound)
	_, err = f.s.AccountByEmail(f.ctx, "nobody@example.com")
	storecheck.WantErr(t, "AccountByEmail of an unknown email", err, accounts.ErrNotFound)
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
		storecheck.OK(t, "AddProfile", f.s.AddProfile(f.ctx, p, 5))
		want = append(want, p)
	}
	storecheck.OK(t, "AddProfile acct-2", f.s.AddProfile(f.ctx, profile("acct-2", 1), 5))
	got, err := f.s.Profiles(f.ctx, "acct-1")
	storecheck.OK(t, "Profiles", err)
	storecheck.Same(t, "Profiles, oldest first", got, want)
}

func testAddProfileLimit(t *testing.T, f *fixture) {
	f.withAccount("acct-1")
	for i := 1; i <= 4; i++ {
		storecheck.OK(t, fmt.Sprintf("AddProfile, profile %d of 5", i+1), f.s.AddProfile(f.ctx, profile("acct-1", i), 5))
	}
	storecheck.WantErr(t, "AddProfile, profile 6 of 5", f.s.AddProfile(f.ctx, profile("acct-1", 5), 5), accounts.ErrLimit)
	storecheck.WantErr(t, "AddProfile, profile 6 of 3", f.s.AddProfile(f.ctx, profile("acct-1", 5), 3), accounts.ErrLimit)
	got, err := f.s.Profiles(f.ctx, "acct-1")
	storecheck.OK(t, "Profiles", err)
	if len(got) != 5 {
		t.Errorf("Profiles after refused adds: got %d, want 5", len(got))
	}
	storecheck.OK(t, "AddProfile, profile 6 of 6", f.s.AddProfile(f.ctx, profile("acct-1", 5), 6))
	storecheck.WantErr(t, "AddProfile of an id the account has", f.s.AddProfile(f.ctx, profile("acct-1", 5), 9), accounts.ErrExists)
}

func testAddProfileUnknownAccount(t *testing.T, f *fixture) {
	f.withAccount("acct-1")
	storecheck.WantErr(t, "AddProfile to an unknown account", f.s.AddProfile(f.ctx, profile("acct-9", 1), 5), accounts.ErrNotFound)
}

func testAddProfileConcurrent(t *testing.T, f *fixture) {
	f.withAccount("acct-1")
	const n = 12
	added := storecheck.Race(t, "AddProfile racing", n, accounts.ErrLimit, func(i int) error { return f.s.AddProfile(f.ctx, profile("acct-1", i+1), 5) })
	got, err := f.s.Profiles(f.ctx, "acct-1")
	storecheck.OK(t, "Profiles", err)
	if added != 4 || len(got) != 5 {
		t.Errorf("AddProfile from %d goroutines to an account of 1 with max 5: %d added, %d profiles; want 4 and 5", n, added, len(got))
	}
}

func testDeleteProfile(t *testing.T, f *fixture) {
	_, first := f.withAccount("acct-1")
	f.withAccount("acct-2")
	p1, p2 := profile("acct-1", 1), profile("acct-1", 2)
	storecheck.OK(t, "AddProfile", f.s.AddProfile(f.ctx, p1, 3))
	storecheck.OK(t, "AddProfile", f.s.AddProfile(f.ctx, p2, 3))

	storecheck.WantErr(t, "DeleteProfile of the first", f.s.DeleteProfile(f.ctx, "acct-1", first.ID), accounts.ErrLimit)
	storecheck.WantErr(t, "DeleteProfile of an unknown id", f.s.DeleteProfile(f.ctx, "acct-1", "nobody"), accounts.ErrNotFound)
	storecheck.WantErr(t, "DeleteProfile of another account's profile", f.s.DeleteProfile(f.ctx, "acct-2", p1.ID), accounts.ErrNotFound)
	storecheck.WantErr(t, "DeleteProfile of an unknown account", f.s.DeleteProfile(f.ctx, "acct-9", p1.ID), accounts.ErrNotFound)

	storecheck.OK(t, "DeleteProfile", f.s.DeleteProfile(f.ctx, "acct-1", p1.ID))
	got, err := f.s.Profiles(f.ctx, "acct-1")
	storecheck.OK(t, "Profiles", err)
	storecheck.Same(t, "Profiles after a delete", got, []accounts.Profile{first, p2})
	storecheck.WantErr(t, "DeleteProfile again", f.s.DeleteProfile(f.ctx, "acct-1", p1.ID), accounts.ErrNotFound)

	// The deleted profile's slot is free again.
	p3 := profile("acct-1", 3)
	storecheck.OK(t, "AddProfile into the freed slot", f.s.AddProfile(f.ctx, p3, 3))
	got, err = f.s.Profiles(f.ctx, "acct-1")
	storecheck.OK(t, "Profiles", err)
	storecheck.Same(t, "Profiles after delete and add", got, []accounts.Profile{first, p2, p3})
}
