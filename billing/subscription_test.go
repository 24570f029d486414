package billing

import (
	"errors"
	"testing"
	"time"

	"github.com/fillcast/fillcast/accounts"
)

var (
	basic   = accounts.Plan{ID: "basic", Name: "Basic", Price: eur(799), Period: PeriodMonth}
	premium = accounts.Plan{ID: "premium", Name: "Premium", Price: eur(1599), Period: PeriodMonth}
	yearly  = accounts.Plan{ID: "yearly", Name: "Yearly", Price: eur(7999), Period: PeriodYear}
)

// must returns v, and panics (failing the test) on err.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestStart(t *testing.T) {
	now := date(2026, 1, 31)
	tr := must(Start("s1", "a1", basic, 7, now))
	if tr.Status != Trialing || !tr.TrialEnd.Equal(date(2026, 2, 7)) || !DueAt(tr).Equal(tr.TrialEnd) || tr.Version != 1 {
		t.Errorf("trial: got %+v", tr)
	}
	in := must(Start("s2", "a1", basic, 0, now))
	if in.Status != Incomplete || Due(in, now.AddDate(1, 0, 0)) || Entitled(in, now, 0) {
		t.Errorf("incomplete: got %+v", in)
	}
	for name, p := range map[string]accounts.Plan{
		"no period": {ID: "x", Price: eur(1)}, "bad currency": {ID: "x", Period: PeriodMonth, Price: Money{Amount: 1, Currency: "e"}},
	} {
		if _, err := Start("s", "a", p, 0, now); err == nil {
			t.Errorf("%s: Start accepted %+v", name, p)
		}
	}
}

func TestLifecycle(t *testing.T) {
	now := date(2026, 1, 31)
	s := must(Start("s1", "a1", basic, 0, now))
	s, _ = PaymentFailed(s, now)
	if s.Status != Incomplete || s.Attempts != 1 {
		t.Fatalf("first failure: %+v", s)
	}
	s = must(PaymentSucceeded(s, basic, now))
	if s.Status != Active || !s.CurrentPeriodEnd.Equal(date(2026, 2, 28)) || s.Attempts != 0 {
		t.Fatalf("activated: %+v", s)
	}
	if _, err := PaymentSucceeded(s, basic, date(2026, 2, 27)); !errors.Is(err, ErrIllegal) {
		t.Errorf("early payment: got %v, want ErrIllegal", err)
	}
	// Renewal keeps the anchor across the clamp.
	s = must(PaymentSucceeded(s, basic, date(2026, 2, 28)))
	if !s.CurrentPeriodEnd.Equal(date(2026, 3, 31)) {
		t.Fatalf("renewed to %v, want Mar 31", s.CurrentPeriodEnd)
	}
	due := s.CurrentPeriodEnd
	key := ChargeKey(s)
	s = must(PaymentFailed(s, due))
	if s.Status != PastDue || !s.PastDueSince.Equal(due) || ChargeKey(s) == key {
		t.Fatalf("past due: %+v", s)
	}
	if _, err := PaymentFailed(s, due); !errors.Is(err, ErrIllegal) {
		t.Errorf("second failure at once: got %v, want ErrIllegal (a rerun pass must not count it)", err)
	}
	if !Entitled(s, due.Add(71*time.Hour), 0) || Entitled(s, due.Add(72*time.Hour), 0) {
		t.Errorf("grace of past due is not 3 days")
	}
	for i, day := range RetryDays() {
		if got := DueAt(s); !got.Equal(due.AddDate(0, 0, day)) {
			t.Fatalf("retry %d due at %v; want day %d", i+1, got, day)
		}
		s = must(PaymentFailed(s, DueAt(s)))
	}
	if s.Status != Canceled || Due(s, due.AddDate(1, 0, 0)) || Entitled(s, due, 0) {
		t.Fatalf("after retries: %+v", s)
	}
	if s.Version != 8 {
		t.Errorf("version %d; want 8", s.Version)
	}
}

func TestPastDueRecovers(t *testing.T) {
	s := must(Start("s1", "a1", basic, 7, date(2026, 1, 1)))
	s = must(PaymentFailed(s, s.TrialEnd))
	s = must(PaymentSucceeded(s, basic, s.PastDueSince.Add(time.Hour))) // paid between retries
	if s.Status != Active || !s.CurrentPeriodStart.Equal(date(2026, 1, 8)) || !s.CurrentPeriodEnd.Equal(date(2026, 2, 8)) {
		t.Errorf("recovered: %+v", s)
	}
}

func TestCancelAtPeriodEnd(t *testing.T) {
	s := must(Start("s1", "a1", basic, 0, date(2026, 1, 1)))
	s = must(PaymentSucceeded(s, basic, date(2026, 1, 1)))
	t.Run("retry harmless", func(t *testing.T) {
		c := must(CancelAtPeriodEnd(s, date(2026, 1, 5)))
		c2 := must(CancelAtPeriodEnd(c, date(2026, 1, 6)))
		if c2 != c {
			t.Errorf("second cancel changed %+v to %+v", c, c2)
		}
		if NextAction(c, date(2026, 1, 31)) != ActionNone || NextAction(c, date(2026, 2, 1)) != ActionCancel {
			t.Errorf("actions wrong")
		}
		if _, err := EndPeriod(c, date(2026, 1, 31)); !errors.Is(err, ErrIllegal) {
			t.Errorf("early end: %v", err)
		}
		e := must(EndPeriod(c, date(2026, 2, 1)))
		if e.Status != Canceled {
			t.Errorf("ended: %+v", e)
		}
		if _, err := CancelAtPeriodEnd(e, date(2026, 2, 2)); !errors.Is(err, ErrIllegal) {
			t.Errorf("cancel canceled: %v", err)
		}
	})
}

func TestChangePlan(t *testing.T) {
	start := date(2026, 4, 1)
	s := must(Start("s1", "a1", basic, 0, start))
	s = must(PaymentSucceeded(s, basic, start)) // Apr 1 → May 1: 30 days
	t.Run("upgrade halfway", func(t *testing.T) {
		u, lines, err := Upgrade(s, basic, premium, date(2026, 4, 16))
		if err != nil {
			t.Fatal(err)
		}
		// 15 of 30 days left: -399.5 → -400, 799.5 → 800 (half to even).
		if u.Plan != "premium" || len(lines) != 2 || lines[0].Amount != eur(-400) || lines[1].Amount != eur(800) {
			t.Errorf("got %+v, %+v", u, lines)
		}
		inv := must(NewInvoice("i1", "a1", "s1", "k", lines, date(2026, 4, 16)))
		if inv.Total != eur(400) {
			t.Errorf("total %v; want 400", inv.Total)
		}
	})
	tests := []struct {
		name      string
		cur, next accounts.Plan
		up        bool
	}{
		{"upgrade to cheaper", basic, basic, true},
		{"downgrade to dearer", basic, premium, false},
		{"other period", basic, yearly, true},
		{"wrong current", premium, basic, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.up {
				_, _, err = Upgrade(s, tt.cur, tt.next, date(2026, 4, 16))
			} else {
				_, err = Downgrade(s, tt.cur, tt.next)
			}
			if err == nil {
				t.Error("accepted")
			}
		})
	}
	t.Run("downgrade at period end", func(t *testing.T) {
		p := must(Upgrade2(t, s))
		d := must(Downgrade(p, premium, basic))
		if d.Plan != "premium" || d.PendingPlan != "basic" || RenewalPlan(d) != "basic" {
			t.Fatalf("got %+v", d)
		}
		if _, err := PaymentSucceeded(d, premium, d.CurrentPeriodEnd); err == nil {
			t.Error("renewal on the old plan accepted")
		}
		r := must(PaymentSucceeded(d, basic, d.CurrentPeriodEnd))
		if r.Plan != "basic" || r.PendingPlan != "" {
			t.Errorf("renewed: %+v", r)
		}
		back := must(Downgrade(d, premium, premium))
		if back.PendingPlan != "" {
			t.Errorf("undo downgrade: %+v", back)
		}
	})
	t.Run("trial upgrade free", func(t *testing.T) {
		tr := must(Start("s2", "a2", basic, 7, start))
		u, lines, err := Upgrade(tr, basic, premium, start.Add(time.Hour))
		if err != nil || len(lines) != 0 || u.Plan != "premium" {
			t.Errorf("got %+v, %v, %v", u, lines, err)
		}
	})
}

func Upgrade2(t *testing.T, s Subscription) (Subscription, error) {
	u, _, err := Upgrade(s, basic, premium, s.CurrentPeriodStart.Add(time.Hour))
	return u, err
}

func TestEntitled(t *testing.T) {
	end := date(2026, 2, 1)
	tests := []struct {
		name  string
		s     Subscription
		now   time.Time
		grace time.Duration
		want  bool
	}{
		{"active", Subscription{Status: Active, CurrentPeriodEnd: end}, end.Add(-time.Hour), 0, true},
		{"active stalled", Subscription{Status: Active, CurrentPeriodEnd: end}, end.Add(DefaultGrace), 0, false},
		{"trialing", Subscription{Status: Trialing, CurrentPeriodEnd: end}, end, 0, true},
		{"past due in grace", Subscription{Status: PastDue, PastDueSince: end}, end.Add(time.Hour), 2 * time.Hour, true},
		{"past due after grace", Subscription{Status: PastDue, PastDueSince: end}, end.Add(2 * time.Hour), 2 * time.Hour, false},
		{"canceled", Subscription{Status: Canceled, CurrentPeriodEnd: end}, end.Add(-time.Hour), 0, false},
		{"incomplete", Subscription{Status: Incomplete, CurrentPeriodEnd: end}, end.Add(-time.Hour), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Entitled(tt.s, tt.now, tt.grace); got != tt.want {
				t.Errorf("got %v; want %v", got, tt.want)
			}
		})
	}
}
