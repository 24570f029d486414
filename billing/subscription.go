package billing

import (
	"errors"
	"fmt"
	"time"

	"github.com/fillcast/fillcast/accounts"
)

// Status is where a subscription is in its life.
type Status string

// The statuses of a subscription.
const (
	// Trialing: in a free trial until TrialEnd, when the first charge is due.
	Trialing Status = "trialing"
	// Active: the current period is paid for.
	Active Status = "active"
	// PastDue: the renewal charge failed; dunning retries it.
	PastDue Status = "past_due"
	// Canceled: ended; no further transition.
	Canceled Status = "canceled"
	// Incomplete: created without a trial and its first payment has not
	// succeeded yet.
	Incomplete Status = "incomplete"
)

// DefaultGrace is how long a past-due subscription still entitles to its
// plan when Entitled is given no grace.
const DefaultGrace = 3 * 24 * time.Hour

// RetryDays are the days after the due date on which dunning retries a
// failed renewal charge; a failure on the last one cancels.
func RetryDays() [3]int { return [3]int{1, 3, 5} }

// ErrIllegal is a transition the subscription's (or invoice's) state does
// not allow, wrapped with the state and the transition.
var ErrIllegal = errors.New("billing: illegal transition")

// Subscription is an account's subscription to a plan. It is a value: the
// transition functions return a new one with Version one higher, so a
// store can write it with compare-and-set on the old Version.
type Subscription struct {
	ID      string `json:"id"`
	Account string `json:"account"`
	// Plan is the id of the plan paid for now.
	Plan string `json:"plan"`
	// Period is the plan's period ("month" or "year"), kept here so the
	// renewal schedule needs no plan lookup.
	Period string `json:"period"`
	Status Status `json:"status"`
	// CurrentPeriodStart and CurrentPeriodEnd bound the period paid for
	// (or the trial); renewal is due at CurrentPeriodEnd.
	CurrentPeriodStart time.Time `json:"current_period_start"`
	CurrentPeriodEnd   time.Time `json:"current_period_end"`
	// Anchor is the moment whose day of month (and time of day) periods
	// end on: the first paid period's start.
	Anchor time.Time `json:"anchor"`
	// CancelAtPeriodEnd ends the subscription at CurrentPeriodEnd instead
	// of renewing it.
	CancelAtPeriodEnd bool `json:"cancel_at_period_end"`
	// PendingPlan, when set, is the plan a downgrade takes effect with at
	// CurrentPeriodEnd.
	PendingPlan string    `json:"pending_plan,omitempty"`
	TrialEnd    time.Time `json:"trial_end,omitzero"`
	// PastDueSince is the due date of the charge that failed.
	PastDueSince time.Time `json:"past_due_since,omitzero"`
	// Attempts counts the failed charges of the current due payment.
	Attempts   int       `json:"attempts"`
	CanceledAt time.Time `json:"canceled_at,omitzero"`
	// PaymentMethod is the card renewals are charged to; zero for a
	// trial begun at sign-up without one, whose first charge fails.
	PaymentMethod PaymentMethod `json:"payment_method,omitzero"`
	// Pending is a charge written down before the provider is asked for
	// it, and cleared when its outcome is recorded: a crash between the
	// two leaves it for whoever touches the subscription next to settle.
	Pending *PendingCharge `json:"pending,omitempty"`
	Created time.Time      `json:"created"`
	Version uint64         `json:"version"`
}

// Purposes of a pending charge.
const (
	PurposeSubscribe = "subscribe" // the first period of a new subscription
	PurposeUpgrade   = "upgrade"   // the prorated rest of the period on a dearer plan
	PurposeRenewal   = "renewal"   // the next period, or a dunning retry
)

// PendingCharge is a charge asked of the provider whose outcome is not
// recorded yet. Everything the charge request needs is in it, so that
// whoever settles it asks the provider for the very same charge (same
// key, same request), which the provider makes at most once.
type PendingCharge struct {
	// Key is the provider's idempotency key.
	Key     string `json:"key"`
	Purpose string `json:"purpose"`
	// Invoice is the open invoice the charge pays; Amount its total.
	Invoice     string `json:"invoice"`
	Amount      Money  `json:"amount"`
	Description string `json:"description"`
	// Plan is the plan paid for: the subscription's, the upgrade's new
	// one, or the renewal's.
	Plan  string    `json:"plan"`
	Since time.Time `json:"since"`
	// RequestKey and RequestHash are the idempotent request that asked
	// for the charge, whose answer is recorded with the outcome.
	RequestKey  string `json:"request_key,omitempty"`
	RequestHash string `json:"request_hash,omitempty"`
}

// PendingSettleAfter is how long a pending charge is left to the request
// that made it before the renewal pass settles it (DueAt).
const PendingSettleAfter = 2 * time.Minute

// illegal returns ErrIllegal wrapped with what was tried.
func illegal(s Subscription, what string) error {
	return fmt.Errorf("billing: subscription %s is %s and cannot %s: %w", s.ID, s.Status, what, ErrIllegal)
}

// checkPlan returns an error unless p can be billed.
func checkPlan(p accounts.Plan) error {
	if p.ID == "" {
		return errors.New("billing: plan has no id")
	}
	if err := CheckPeriod(p.Period); err != nil {
		return fmt.Errorf("billing: plan %s: %w", p.ID, err)
	}
	if err := CheckCurrency(p.Price.Currency); err != nil {
		return fmt.Errorf("billing: plan %s: %w", p.ID, err)
	}
	if p.Price.Amount < 0 {
		return fmt.Errorf("billing: plan %s has a negative price", p.ID)
	}
	return nil
}

// Start returns a new subscription of account to plan at now. With
// trialDays > 0 it is Trialing until now + trialDays; otherwise it is
// Incomplete, for the period starting now, until its first payment
// succeeds (PaymentSucceeded).
func Start(id, account string, plan accounts.Plan, trialDays int, now time.Time) (Subscription, error) {
	if err := checkPlan(plan); err != nil {
		return Subscription{}, err
	}
	if trialDays < 0 {
		return Subscription{}, fmt.Errorf("billing: %d trial days is negative", trialDays)
	}
	now = now.UTC()
	s := Subscription{ID: id, Account: account, Plan: plan.ID, Period: plan.Period,
		CurrentPeriodStart: now, Anchor: now, Created: now, Version: 1}
	if trialDays > 0 {
		s.Status = Trialing
		s.TrialEnd = now.AddDate(0, 0, trialDays)
		s.CurrentPeriodEnd = s.TrialEnd
		s.Anchor = s.TrialEnd
		return s, nil
	}
	s.Status = Incomplete
	s.CurrentPeriodEnd = NextPeriodEnd(now, plan.Period)
	return s, nil
}

// RenewalPlan returns the id of the plan the next period is charged for:
// the pending downgrade's, or the current one.
func RenewalPlan(s Subscription) string {
	if s.PendingPlan != "" {
		return s.PendingPlan
	}
	return s.Plan
}

// Action is what the renewal pass does with a subscription.
type Action string

// The renewal actions.
const (
	ActionNone   Action = ""
	ActionCharge Action = "charge" // charge RenewalPlan for the next period
	ActionCancel Action = "cancel" // the period ended with CancelAtPeriodEnd: EndPeriod
)

// DueAt returns when the renewal pass must next act on s: the period's end
// for a trialing or active one, the next dunning retry for a past-due one,
// and the zero Time when nothing is scheduled (incomplete, canceled, or
// retries exhausted); a pending charge PendingSettleAfter after it was
// asked for, if sooner.
func DueAt(s Subscription) time.Time {
	at := scheduled(s)
	if p := s.Pending; p != nil {
		if settle := p.Since.Add(PendingSettleAfter); at.IsZero() || settle.Before(at) {
			at = settle
		}
	}
	return at
}

// scheduled is when the subscription's state asks the renewal pass to
// act, pending charges aside.
func scheduled(s Subscription) time.Time {
	switch s.Status {
	case Trialing, Active:
		return s.CurrentPeriodEnd
	case PastDue:
		if s.CancelAtPeriodEnd {
			return s.PastDueSince
		}
		if s.Attempts < 1 || s.Attempts > len(RetryDays()) {
			return time.Time{}
		}
		return s.PastDueSince.AddDate(0, 0, RetryDays()[s.Attempts-1])
	}
	return time.Time{}
}

// NextAction returns what the renewal pass does with s as of asOf, once
// any pending charge is settled.
func NextAction(s Subscription, asOf time.Time) Action {
	at := scheduled(s)
	if at.IsZero() || asOf.Before(at) {
		return ActionNone
	}
	if s.CancelAtPeriodEnd {
		return ActionCancel
	}
	return ActionCharge
}

// Due reports whether the renewal pass has something to do with s as of
// asOf (see NextAction).
func Due(s Subscription, asOf time.Time) bool { return NextAction(s, asOf) != ActionNone }

// ChargeKey returns the idempotency key of the charge s is due for: the
// same for every pass that attempts the same charge (so two passes at
// once, or a pass rerun after a crash, charge once), and a new one for
// each dunning retry.
func ChargeKey(s Subscription) string {
	return fmt.Sprintf("sub:%s:%d:%d", s.ID, s.CurrentPeriodEnd.Unix(), s.Attempts)
}

// PaymentSucceeded returns s after the charge it was due for succeeded at
// at, with plan the plan that was charged (RenewalPlan's). An Incomplete
// subscription becomes Active for the period starting at at; a due
// Trialing, Active or PastDue one becomes Active for the next period,
// which starts where the last ended (a late payment does not move the
// anchor), on plan. A PastDue one may pay between retries too.
func PaymentSucceeded(s Subscription, plan accounts.Plan, at time.Time) (Subscription, error) {
	if err := checkPlan(plan); err != nil {
		return s, err
	}
	at = at.UTC()
	switch {
	case s.Status == Incomplete:
		if plan.ID != s.Plan {
			return s, fmt.Errorf("billing: subscription %s is for plan %s, not %s", s.ID, s.Plan, plan.ID)
		}
		s.CurrentPeriodStart, s.Anchor = at, at
		s.CurrentPeriodEnd = NextPeriodEnd(at, plan.Period)
	case s.Status == PastDue || NextAction(s, at) == ActionCharge:
		if plan.ID != RenewalPlan(s) {
			return s, fmt.Errorf("billing: subscription %s renews on plan %s, not %s", s.ID, RenewalPlan(s), plan.ID)
		}
		if plan.Period != s.Period {
			s.Anchor = s.CurrentPeriodEnd
		}
		s.CurrentPeriodStart = s.CurrentPeriodEnd
		s.CurrentPeriodEnd = AnchoredPeriodEnd(s.CurrentPeriodStart, s.Anchor, plan.Period)
	default:
		return s, illegal(s, "take a payment that is not due")
	}
	s.Status, s.Plan, s.Period, s.PendingPlan = Active, plan.ID, plan.Period, ""
	s.PastDueSince, s.Attempts = time.Time{}, 0
	s.Version++
	return s, nil
}

// PaymentFailed returns s after the charge it was due for failed at at.
// An Incomplete subscription stays Incomplete (Attempts counts the
// failures). A due Trialing or Active one becomes PastDue since its
// period's end; a PastDue one counts the failed retry, and is Canceled
// after the last of RetryDays.
func PaymentFailed(s Subscription, at time.Time) (Subscription, error) {
	at = at.UTC()
	switch {
	case s.Status == Incomplete:
	case NextAction(s, at) != ActionCharge:
		return s, illegal(s, "fail a payment that is not due")
	case s.Status == PastDue:
		if s.Attempts >= len(RetryDays()) {
			s.Status, s.CanceledAt = Canceled, at
		}
	default:
		s.Status, s.PastDueSince = PastDue, s.CurrentPeriodEnd
	}
	s.Attempts++
	s.Version++
	return s, nil
}

// EndTrial returns s, a trial that ended with no card to charge,
// Incomplete: nothing was charged, and it entitles to nothing until the
// account subscribes.
func EndTrial(s Subscription, at time.Time) (Subscription, error) {
	if s.Status != Trialing || s.PaymentMethod.ID != "" || NextAction(s, at) != ActionCharge {
		return s, illegal(s, "end its trial without a card")
	}
	s.Status = Incomplete
	s.Version++
	return s, nil
}

// CancelAtPeriodEnd returns s set to end at its period's end instead of
// renewing (a pending downgrade is dropped). An Incomplete subscription,
// which has paid nothing, is Canceled at once. Asking again changes
// nothing and is not an error, so a retried request is harmless.
func CancelAtPeriodEnd(s Subscription, now time.Time) (Subscription, error) {
	switch s.Status {
	case Canceled:
		return s, illegal(s, "be canceled")
	case Incomplete:
		s.Status, s.CanceledAt = Canceled, now.UTC()
	default:
		if s.CancelAtPeriodEnd {
			return s, nil
		}
		s.CancelAtPeriodEnd, s.PendingPlan = true, ""
	}
	s.Version++
	return s, nil
}

// EndPeriod returns s Canceled when its renewal pass action is
// ActionCancel as of now.
func EndPeriod(s Subscription, now time.Time) (Subscription, error) {
	if NextAction(s, now) != ActionCancel {
		return s, illegal(s, "end before its period ends with cancel_at_period_end")
	}
	s.Status, s.CanceledAt = Canceled, now.UTC()
	s.Version++
	return s, nil
}

// isUpgrade returns whether to costs more than from (same currency).
func isUpgrade(from, to accounts.Plan) (bool, error) {
	c, err := Compare(to.Price, from.Price)
	return c > 0, err
}

// checkChange returns an error unless s, on plan cur, may change to next.
func checkChange(s Subscription, cur, next accounts.Plan) error {
	if err := checkPlan(cur); err != nil {
		return err
	}
	if err := checkPlan(next); err != nil {
		return err
	}
	if cur.ID != s.Plan {
		return fmt.Errorf("billing: subscription %s is on plan %s, not %s", s.ID, s.Plan, cur.ID)
	}
	if cur.Period != next.Period {
		return fmt.Errorf("billing: plan %s is billed per %s and %s per %s; cancel and subscribe again to change the period",
			cur.ID, cur.Period, next.ID, next.Period)
	}
	if s.Status != Trialing && s.Status != Active {
		return illegal(s, "change plan")
	}
	if s.CancelAtPeriodEnd {
		return illegal(s, "change plan while canceling at the period's end")
	}
	return nil
}

// Upgrade returns s moved at now from plan cur to the dearer plan next,
// and the lines of the prorated invoice to charge for it: a credit for
// the unused part of the period on cur and a debit for the same part on
// next (both rounded by Prorate). A trialing subscription changes plan
// with no lines: nothing has been paid yet. A pending downgrade is
// dropped.
func Upgrade(s Subscription, cur, next accounts.Plan, now time.Time) (Subscription, []Line, error) {
	if err := checkChange(s, cur, next); err != nil {
		return s, nil, err
	}
	if up, err := isUpgrade(cur, next); err != nil {
		return s, nil, err
	} else if !up {
		return s, nil, fmt.Errorf("billing: plan %s does not cost more than %s; downgrade instead", next.ID, cur.ID)
	}
	now = now.UTC()
	var lines []Line
	if s.Status == Active {
		if now.Before(s.CurrentPeriodStart) || !now.Before(s.CurrentPeriodEnd) {
			return s, nil, fmt.Errorf("billing: upgrade at %v is outside the current period [%v, %v); renew first",
				now, s.CurrentPeriodStart, s.CurrentPeriodEnd)
		}
		total := s.CurrentPeriodEnd.Sub(s.CurrentPeriodStart)
		left := s.CurrentPeriodEnd.Sub(now)
		credit, err := Prorate(cur.Price, left, total)
		if err != nil {
			return s, nil, err
		}
		debit, err := Prorate(next.Price, left, total)
		if err != nil {
			return s, nil, err
		}
		credit.Amount = -credit.Amount // non-negative price: no overflow
		lines = []Line{
			{Kind: LineProrationCredit, Description: "Unused time on " + cur.Name, Amount: credit, PeriodStart: now, PeriodEnd: s.CurrentPeriodEnd},
			{Kind: LineProrationDebit, Description: "Remaining time on " + next.Name, Amount: debit, PeriodStart: now, PeriodEnd: s.CurrentPeriodEnd},
		}
	}
	s.Plan, s.PendingPlan = next.ID, ""
	s.Version++
	return s, lines, nil
}

// Downgrade returns s set to move from plan cur to next, which costs no
// more, at the end of the period already paid for (PendingPlan).
// Downgrading to the current plan drops a pending downgrade.
func Downgrade(s Subscription, cur, next accounts.Plan) (Subscription, error) {
	if err := checkChange(s, cur, next); err != nil {
		return s, err
	}
	if up, err := isUpgrade(cur, next); err != nil {
		return s, err
	} else if up {
		return s, fmt.Errorf("billing: plan %s costs more than %s; upgrade instead", next.ID, cur.ID)
	}
	pending := next.ID
	if next.ID == s.Plan {
		pending = ""
	}
	if pending == s.PendingPlan {
		return s, nil
	}
	s.PendingPlan = pending
	s.Version++
	return s, nil
}

// Entitled reports whether s entitles to its plan at now: Active or
// Trialing until its period's end plus grace (so a stalled renewal pass
// does not give service away forever), or PastDue within grace of the
// missed due date. grace 0 means DefaultGrace.
func Entitled(s Subscription, now time.Time, grace time.Duration) bool {
	if grace <= 0 {
		grace = DefaultGrace
	}
	switch s.Status {
	case Active, Trialing:
		return now.Before(s.CurrentPeriodEnd.Add(grace))
	case PastDue:
		return now.Before(s.PastDueSince.Add(grace))
	}
	return false
}
