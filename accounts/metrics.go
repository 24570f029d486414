package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the accounts' Prometheus collectors. A nil *Metrics counts
// nothing.
type Metrics struct {
	signUps, signIns *prometheus.CounterVec
}

// Outcomes of a sign-up or a sign-in, the outcome label.
const (
	outcomeOK          = "ok"
	outcomeBad         = "bad_credentials" // sign-in: wrong password or unknown email
	outcomeInvalid     = "invalid"         // malformed input
	outcomeExists      = "exists"          // sign-up: the email is taken
	outcomeThrottled   = "throttled"       // too many attempts
	outcomeUnavailable = "error"           // the store or the context failed
)

// NewMetrics returns the collectors, registered in reg unless it is nil.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		signUps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fillcast_accounts_signups_total",
			Help: "Sign-ups, by outcome: ok, invalid, exists, throttled, error.",
		}, []string{"outcome"}),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fillcast_accounts_signins_total",
			Help: "Sign-ins, by outcome: ok, bad_credentials, throttled, error.",
		}, []string{"outcome"}),
	}
	for _, o := range []string{outcomeOK, outcomeInvalid, outcomeExists, outcomeThrottled, outcomeUnavailable} {
		m.signUps.WithLabelValues(o)
	}
	for _, o := range []string{outcomeOK, outcomeBad, outcomeThrottled, outcomeUnavailable} {
		m.signIns.WithLabelValues(o)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.signUps, m.signIns} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("accounts: register metrics: %w", err)
		}
	}
	return m, nil
}

// outcomeOf classifies a sign-up's or sign-in's error.
func outcomeOf(err error) string {
	var throttled *ThrottledError
	switch {
	case err == nil:
		return outcomeOK
	case errors.Is(err, ErrBadCredentials):
		return outcomeBad
	case errors.Is(err, ErrInvalid):
		return outcomeInvalid
	case errors.Is(err, ErrExists):
		return outcomeExists
	case errors.As(err, &throttled):
		return outcomeThrottled
	}
	return outcomeUnavailable
}

func (m *Metrics) signedUp(err error) {
	if m != nil {
		m.signUps.WithLabelValues(outcomeOf(err)).Inc()
	}
}

func (m *Metrics) signedIn(err error) {
	if m != nil {
		m.signIns.WithLabelValues(outcomeOf(err)).Inc()
	}
}

// SignUp creates an account on plan with a first profile named after the
// email's local part, for a client at client (the zero Addr: a caller of
// this process, not counted against SignUpsPerHour).
func (s *Service) SignUp(ctx context.Context, email, password, plan string, client netip.Addr) (Account, error) {
	a, err := s.signUp(ctx, email, password, plan, client)
	s.d.Metrics.signedUp(err)
	return a, err
}

// SignIn checks an email and password and opens a session: the token to
// give the client (shown once) and the session record. Unknown emails
// and wrong passwords fail alike, in about the same time; more than
// SignInFailures failures within FailureWindow for the email or the
// client refuse further attempts with a *ThrottledError.
func (s *Service) SignIn(ctx context.Context, email, password string, client netip.Addr) (string, Session, error) {
	token, sess, err := s.signIn(ctx, email, password, client)
	s.d.Metrics.signedIn(err)
	return token, sess, err
}
