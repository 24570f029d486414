package accounts_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/accounts/embedded"
)

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var cheap = accounts.Argon2{MemoryKiB: 64, Time: 1}

// newService returns a service over the embedded state machine in this
// process, with a basic plan and a settable clock.
func newService(t *testing.T, cfg accounts.Config) (*accounts.Service, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)}
	cfg.Argon2 = cheap
	s, err := accounts.NewService(cfg, accounts.Deps{Store: embedded.NewLocal(), Log: slog.New(slog.DiscardHandler), Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutPlan(context.Background(), accounts.Plan{ID: "basic", Name: "Basic", MaxHeight: 480, MaxStreams: 1,
		Price: accounts.Money{Amount: 799, Currency: "EUR"}, Period: "month"}); err != nil {
		t.Fatal(err)
	}
	return s, clk
}

var client = netip.MustParseAddr("192.0.2.1")

func TestSignUpValidates(t *testing.T) {
	s, _ := newService(t, accounts.Config{})
	ctx := context.Background()
	for _, tt := range []struct {
		email, password, plan string
		want                  error
	}{
		{"ann@example.com", "long enough!", "basic", nil},
		{"ANN@example.com", "long enough!", "basic", accounts.ErrExists},
		{"bob@example.com", "short", "basic", accounts.ErrInvalid},
		{"bob@example", "long enough!", "basic", accounts.ErrInvalid},
		{"Bob <bob@example.com>", "long enough!", "basic", accounts.ErrInvalid},
		{"bob@example.com", "long enough!", "gold", accounts.ErrNotFound},
		{"bob@example.com", strings.Repeat("x", accounts.MaxPasswordLen+1), "basic", accounts.ErrInvalid},
	} {
		_, err := s.SignUp(ctx, tt.email, tt.password, tt.plan, netip.Addr{})
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("SignUp(%q, %q): %v, want %v", tt.email, tt.plan, err, tt.want)
		}
	}
	a, err := s.Store().AccountByEmail(ctx, "ann@example.com")
	if err != nil || !strings.HasPrefix(a.PasswordHash, "$argon2id$v=19$m=64,t=1,p=1$") || strings.Contains(a.PasswordHash, "long enough") {
		t.Errorf("stored account %+v, %v: want an argon2id hash", a, err)
	}
}

// TestSessions: sign in, the viewer a token opens, the cache honouring a
// revocation elsewhere within CacheTTL, idle expiry.
func TestSessions(t *testing.T) {
	s, clk := newService(t, accounts.Config{CacheTTL: 5 * time.Second, SessionIdle: 48 * time.Hour, TouchEvery: time.Hour})
	ctx := context.Background()
	if _, err := s.SignUp(ctx, "ann@example.com", "long enough!", "basic", netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	token, sess, err := s.SignIn(ctx, " Ann@Example.com ", "long enough!", client)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.ExpiresAt(sess); !got.Equal(clk.now().Add(48 * time.Hour)) {
		t.Errorf("expires at %v", got)
	}
	v, err := s.Viewer(ctx, token, "")
	if err != nil || v.Account.Email != "ann@example.com" || v.Plan.MaxHeight != 480 || v.Profile == nil || v.Profile.Name != "ann" {
		t.Fatalf("Viewer = %+v, %v", v, err)
	}
	if _, err := s.Viewer(ctx, token, "nope"); !errors.Is(err, accounts.ErrNoProfile) {
		t.Errorf("unknown profile: %v", err)
	}
	for _, bad := range []string{"", "fcs.x.y", token + "x", strings.Replace(token, token[len(token)-3:], "AAA", 1)} {
		if _, err := s.Viewer(ctx, bad, ""); !errors.Is(err, accounts.ErrBadSession) {
			t.Errorf("Viewer(%q): %v, want ErrBadSession", bad, err)
		}
	}
	// Revoked in the store behind the cache (as another node would):
	// still honoured until CacheTTL, refused after.
	if err := s.Store().DeleteSession(ctx, sess.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Viewer(ctx, token, ""); err != nil {
		t.Errorf("within the cache's TTL: %v", err)
	}
	clk.add(5 * time.Second)
	if _, err := s.Viewer(ctx, token, ""); !errors.Is(err, accounts.ErrBadSession) {
		t.Errorf("after the cache's TTL: %v, want ErrBadSession", err)
	}
	// Idle expiry, and use keeping a session alive.
	token, _, err = s.SignIn(ctx, "ann@example.com", "long enough!", client)
	if err != nil {
		t.Fatal(err)
	}
	clk.add(30 * time.Hour)
	if _, err := s.Viewer(ctx, token, ""); err != nil {
		t.Fatalf("after 30 h: %v", err)
	}
	clk.add(30 * time.Hour) // 30 h after the touch
	if _, err := s.Viewer(ctx, token, ""); err != nil {
		t.Errorf("30 h after its last use: %v", err)
	}
	clk.add(49 * time.Hour)
	if _, err := s.Viewer(ctx, token, ""); !errors.Is(err, accounts.ErrBadSession) {
		t.Errorf("49 h idle: %v, want ErrBadSession", err)
	}
	// Sign out everywhere.
	t1, _, _ := s.SignIn(ctx, "ann@example.com", "long enough!", client)
	t2, _, _ := s.SignIn(ctx, "ann@example.com", "long enough!", client)
	v, _ = s.Viewer(ctx, t1, "")
	if err := s.SignOutEverywhere(ctx, v.Account.ID); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{t1, t2} {
		if _, err := s.Viewer(ctx, tok, ""); !errors.Is(err, accounts.ErrBadSession) {
			t.Errorf("after signing out everywhere: %v", err)
		}
	}
}

// TestSignInThrottled: more than five failures a minute for an email or
// a client refuse further attempts, right password included, until the
// minute ends; unknown emails fail like wrong passwords.
func TestSignInThrottled(t *testing.T) {
	s, clk := newService(t, accounts.Config{})
	ctx := context.Background()
	if _, err := s.SignUp(ctx, "ann@example.com", "long enough!", "basic", netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SignIn(ctx, "nobody@example.com", "long enough!", netip.MustParseAddr("198.51.100.1")); !errors.Is(err, accounts.ErrBadCredentials) {
		t.Errorf("unknown email: %v", err)
	}
	for i := range 5 {
		addr := netip.AddrFrom4([4]byte{203, 0, 113, byte(i)})
		if _, _, err := s.SignIn(ctx, "ann@example.com", "wrong one!", addr); !errors.Is(err, accounts.ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	_, _, err := s.SignIn(ctx, "ann@example.com", "long enough!", client)
	var th *accounts.ThrottledError
	if !errors.As(err, &th) || th.RetryAfter <= 0 || th.RetryAfter > time.Minute {
		t.Fatalf("sixth attempt: %v, want throttled", err)
	}
	clk.add(time.Minute)
	if _, _, err := s.SignIn(ctx, "ann@example.com", "long enough!", client); err != nil {
		t.Errorf("a minute later: %v", err)
	}
	// One client address guessing many emails.
	guesser := netip.MustParseAddr("2001:db8::1")
	for i := range 5 {
		s.SignIn(ctx, strings.Repeat("x", i+1)+"@example.com", "wrong one!", guesser)
	}
	if _, _, err := s.SignIn(ctx, "ann@example.com", "long enough!", netip.MustParseAddr("2001:db8::2")); !errors.As(err, &th) {
		t.Errorf("same /64 after five failures: %v, want throttled", err)
	}
}

// TestStreams: the plan's screens, reuse without a write, expiry.
func TestStreams(t *testing.T) {
	s, clk := newService(t, accounts.Config{StreamTTL: time.Minute})
	ctx, v, st := streaming(t, s)
	if _, err := s.StartStream(ctx, v, "t1", ""); !errors.Is(err, accounts.ErrLimit) || !strings.Contains(err.Error(), "allows 1 screen at once") {
		t.Errorf("second screen: %v", err)
	}
	again, err := s.StartStream(ctx, v, "t2", st.ID)
	if err != nil || again.ID != st.ID || again.Title != "t2" {
		t.Errorf("switching titles on the screen: %+v, %v", again, err)
	}
	clk.add(50 * time.Second)
	if err := s.KeepAlive(ctx, v.Account.ID, st.ID); err != nil {
		t.Fatal(err)
	}
	clk.add(50 * time.Second) // 100 s after the start, 50 s after the keepalive
	if _, err := s.StartStream(ctx, v, "t1", ""); !errors.Is(err, accounts.ErrLimit) {
		t.Errorf("kept alive: %v, want the screen still taken", err)
	}
	clk.add(11 * time.Second)
	if err := s.KeepAlive(ctx, v.Account.ID, st.ID); !errors.Is(err, accounts.ErrNotFound) {
		t.Errorf("keepalive after 61 s of silence: %v, want ErrNotFound", err)
	}
	again, err = s.StartStream(ctx, v, "t1", st.ID)
	if err != nil || again.ID != st.ID || !again.Started.Equal(clk.now()) {
		t.Errorf("after the lease ran out, naming it: %+v, %v; want a new lease under the same id", again, err)
	}
	if _, err := s.StartStream(ctx, v, "t1", ""); !errors.Is(err, accounts.ErrLimit) {
		t.Errorf("a second screen beside the renewed one: %v", err)
	}
}

// TestThrottleConcurrent: attempts are counted before the hash, so that
// twenty at once for one email get five answers of a wrong password and
// the rest refused; sign-ups from one address stop at SignUpsPerHour.
func TestThrottleConcurrent(t *testing.T) {
	s, clk := newService(t, accounts.Config{SignUpsPerHour: 3})
	ctx := context.Background()
	if _, err := s.SignUp(ctx, "ann@example.com", "long enough!", "basic", netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			_, _, err := s.SignIn(ctx, "ann@example.com", "wrong one!", netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}))
			var th *accounts.ThrottledError
			kind := "other"
			switch {
			case errors.Is(err, accounts.ErrBadCredentials):
				kind = "wrong"
			case errors.As(err, &th):
				kind = "throttled"
			}
			mu.Lock()
			counts[kind]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts["wrong"] != 5 || counts["throttled"] != 15 {
		t.Errorf("20 concurrent wrong passwords: %v, want 5 wrong and 15 throttled", counts)
	}
	// Sixteen viewers behind one address signing in at once all get in.
	office := netip.MustParseAddr("192.0.2.99")
	for i := range 16 {
		if _, err := s.SignUp(ctx, fmt.Sprintf("staff%d@example.com", i), "long enough!", "basic", netip.Addr{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 16 {
		wg.Go(func() {
			if _, _, err := s.SignIn(ctx, fmt.Sprintf("staff%d@example.com", i), "long enough!", office); err != nil {
				t.Errorf("sign-in %d behind one address: %v", i, err)
			}
		})
	}
	wg.Wait()
	from := netip.MustParseAddr("198.51.100.7")
	for i := range 3 {
		if _, err := s.SignUp(ctx, fmt.Sprintf("u%d@example.com", i), "long enough!", "basic", from); err != nil {
			t.Fatal(err)
		}
	}
	var th *accounts.ThrottledError
	if _, err := s.SignUp(ctx, "u9@example.com", "long enough!", "basic", from); !errors.As(err, &th) {
		t.Errorf("fourth sign-up in an hour: %v, want throttled", err)
	}
	if _, err := s.SignUp(ctx, "u9@example.com", "long enough!", "basic", netip.MustParseAddr("198.51.100.8")); err != nil {
		t.Errorf("another address: %v", err)
	}
	clk.add(time.Hour)
	if _, err := s.SignUp(ctx, "u10@example.com", "long enough!", "basic", from); err != nil {
		t.Errorf("an hour later: %v", err)
	}
}

// TestLeaseCache: a player asking again within CacheTTL is answered from
// this node's memory; a lease ended through another node (the store
// directly) counts as live here until CacheTTL, then no more.
func TestLeaseCache(t *testing.T) {
	s, clk := newService(t, accounts.Config{CacheTTL: 5 * time.Second})
	ctx, v, st := streaming(t, s)
	if err := s.Store().EndStream(ctx, v.Account.ID, st.ID); err != nil {
		t.Fatal(err)
	}
	if again, err := s.StartStream(ctx, v, "t1", st.ID); err != nil || again.ID != st.ID {
		t.Errorf("within CacheTTL: %+v, %v", again, err)
	}
	other, err := s.StartStream(ctx, v, "t1", "") // the store has no lease: a screen is free
	if err != nil {
		t.Fatalf("a new stream once the store's lease ended: %v", err)
	}
	clk.add(5 * time.Second)
	if _, err := s.StartStream(ctx, v, "t1", st.ID); !errors.Is(err, accounts.ErrLimit) {
		t.Errorf("after CacheTTL, the ended lease beside %s: %v, want the screen limit", other.ID, err)
	}
}

// streaming signs a basic account up and in and starts a stream of t1.
func streaming(t *testing.T, s *accounts.Service) (context.Context, *accounts.Viewer, accounts.Stream) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.SignUp(ctx, "ann@example.com", "long enough!", "basic", netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	token, _, err := s.SignIn(ctx, "ann@example.com", "long enough!", client)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Viewer(ctx, token, "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.StartStream(ctx, v, "t1", "")
	if err != nil {
		t.Fatal(err)
	}
	return ctx, v, st
}
