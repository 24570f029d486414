package ratelimit

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Principals of the tests.
var (
	viewerA   = auth.Principal{Kind: auth.Viewer, ID: "acct-a"}
	viewerB   = auth.Principal{Kind: auth.Viewer, ID: "acct-b"}
	keyA      = auth.Principal{Kind: auth.Operator, ID: "acct-a", Scope: auth.ScopeRead}
	appliance = auth.Principal{Kind: auth.Appliance, ID: "app-1"}
	anonymous = auth.Principal{}
	node      = auth.Principal{Kind: auth.Node, ID: "n1"}
)

// req is one Allow of a limiter test and what it should answer.
type req struct {
	route string
	p     auth.Principal
	addr  string // client address, "" for none
	at    time.Duration
	ok    bool
	retry time.Duration
}

func runReqs(t *testing.T, l *Limiter, reqs []req) {
	t.Helper()
	for i, r := range reqs {
		var addr netip.Addr
		if r.addr != "" {
			addr = netip.MustParseAddr(r.addr)
		}
		retry, ok := l.Allow(r.route, r.p, addr, at(r.at))
		if ok != r.ok || retry != r.retry {
			t.Errorf("request %d: Allow(%q, %v, %s, t0+%v) = %v, %v; want %v, %v", i, r.route, r.p, r.addr, r.at, retry, ok, r.retry, r.ok)
		}
	}
}

// testLimits are small class limits that tests exhaust quickly.
func testLimits() map[Class]Limit {
	return map[Class]Limit{
		ClassViewer:    {1, 2},
		ClassAPIKey:    {1, 3},
		ClassAppliance: {1, 1},
		ClassAnonymous: {1, 2},
	}
}

func newTestLimiter(t *testing.T, rules ...Rule) *Limiter {
	t.Helper()
	l, err := New(Config{Classes: testLimits()}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetRules(rules); err != nil {
		t.Fatal(err)
	}
	return l
}

// refusals returns the count of fillcast_rate_limited_total{class, rule}.
func refusals(t *testing.T, l *Limiter, class Class, rule string) float64 {
	t.Helper()
	var m dto.Metric
	if err := l.refused.WithLabelValues(string(class), rule).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestAllowClasses(t *testing.T) {
	l := newTestLimiter(t)
	runReqs(t, l, []req{
		{"titles", viewerA, "", 0, true, 0},
		{"search", viewerA, "", 0, true, 0},
		{"titles", viewerA, "", 0, false, time.Second},
		{"titles", viewerB, "", 0, true, 0},   // another account
		{"titles", keyA, "", 0, true, 0},      // same id, another class
		{"titles", appliance, "", 0, true, 0}, // appliance: burst 1
		{"titles", appliance, "", 0, false, time.Second},
		{"titles", viewerA, "", time.Second, true, 0},
		{"titles", viewerA, "", time.Second, false, time.Second},
	})
	if got := refusals(t, l, ClassViewer, ""); got != 2 {
		t.Errorf("viewer refusals = %v, want 2", got)
	}
	if got := refusals(t, l, ClassAppliance, ""); got != 1 {
		t.Errorf("appliance refusals = %v, want 1", got)
	}
}

func TestAllowNodesNeverLimited(t *testing.T) {
	l := newTestLimiter(t, Rule{ID: "all", Limit: Limit{}})
	for _, p := range []auth.Principal{node, {Kind: auth.Node}} {
		for i := range 100 {
			if _, ok := l.Allow("titles", p, netip.Addr{}, t0); !ok {
				t.Fatalf("request %d of %v refused: nodes are never limited", i, p)
			}
		}
	}
}

func TestAllowAnonymousByAddress(t *testing.T) {
	l := newTestLimiter(t)
	runReqs(t, l, []req{
		{"titles", anonymous, "192.0.2.1", 0, true, 0},
		{"titles", anonymous, "192.0.2.1", 0, true, 0},
		{"titles", anonymous, "192.0.2.1", 0, false, time.Second},
		{"titles", anonymous, "::ffff:192.0.2.1", 0, false, time.Second}, // the same, mapped
		{"titles", anonymous, "192.0.2.2", 0, true, 0},
		{"titles", anonymous, "2001:db8:1:2::1", 0, true, 0},
		{"titles", anonymous, "2001:db8:1:2:aaaa::ffff", 0, true, 0}, // the same /64
		{"titles", anonymous, "2001:db8:1:2::9", 0, false, time.Second},
		{"titles", anonymous, "2001:db8:1:3::1", 0, true, 0}, // the next /64
		{"titles", anonymous, "fe80::1%eth0", 0, true, 0},
		{"titles", anonymous, "fe80::2%eth1", 0, true, 0},
		{"titles", anonymous, "fe80::3", 0, false, time.Second},
		// An anonymous principal's id plays no part.
		{"titles", auth.Principal{ID: "x"}, "192.0.2.1", 0, false, time.Second},
		// Without an address, all share one bucket.
		{"titles", anonymous, "", 0, true, 0},
		{"titles", anonymous, "", 0, true, 0},
		{"titles", anonymous, "", 0, false, time.Second},
	})
}

func TestAllowRules(t *testing.T) {
	slow := Limit{MinPerSecond, 1} // one an hour: never refills in a test
	for _, tc := range []struct {
		name  string
		rules []Rule
		reqs  []req
	}{
		{"route rule stacks with the class", []Rule{{ID: "search", Route: "search", Limit: slow}}, []req{
			{"search", viewerA, "", 0, true, 0},
			{"search", viewerA, "", 0, false, time.Hour},
			// The refusal took nothing from the class: two remain.
			{"titles", viewerA, "", 0, true, 0},
			{"search", viewerB, "", 0, true, 0},
			{"search", keyA, "", 0, true, 0}, // ids are kept apart by class
			{"search", anonymous, "192.0.2.1", 0, true, 0},
			{"search", anonymous, "192.0.2.1", 0, false, time.Hour},
		}},
		{"class rule", []Rule{{ID: "apikeys", Class: ClassAPIKey, Limit: slow}}, []req{
			{"titles", keyA, "", 0, true, 0},
			{"search", keyA, "", 0, false, time.Hour},
			{"titles", viewerA, "", 0, true, 0},
			{"titles", viewerA, "", 0, true, 0},
		}},
		{"route and class rule", []Rule{{ID: "play", Route: "play", Class: ClassViewer, Limit: slow}}, []req{
			{"play", viewerA, "", 0, true, 0},
			{"play", viewerA, "", 0, false, time.Hour},
			{"play", keyA, "", 0, true, 0},
			{"play", keyA, "", 0, true, 0},
			{"titles", viewerA, "", 0, true, 0},
		}},
		{"rule above the class", []Rule{{ID: "generous", Limit: Limit{100, 100}}}, []req{
			{"titles", viewerA, "", 0, true, 0},
			{"titles", viewerA, "", 0, true, 0},
			{"titles", viewerA, "", 0, false, time.Second},
		}},
		{"longest wait wins", []Rule{{ID: "slow", Route: "search", Limit: Limit{0.1, 2}}}, []req{
			{"search", viewerA, "", 0, true, 0},
			{"search", viewerA, "", 0, true, 0},
			{"search", viewerA, "", 0, false, 10 * time.Second},
		}},
		{"blocking rule", []Rule{{ID: "no-signups", Route: "signup", Limit: Limit{}}}, []req{
			{"signup", anonymous, "192.0.2.1", 0, false, BlockedRetryAfter},
			{"titles", anonymous, "192.0.2.1", 0, true, 0},
			{"titles", anonymous, "192.0.2.1", 0, true, 0},
		}},
		{"refused by a later rule takes from none", []Rule{
			{ID: "all", Limit: Limit{MinPerSecond, 2}},
			{ID: "search", Route: "search", Limit: slow},
		}, []req{
			{"search", viewerA, "", 0, true, 0},
			{"search", viewerA, "", 0, false, time.Hour},
			// Class and "all" gave no token to the refusal: one left in both.
			{"titles", viewerA, "", 0, true, 0},
			{"titles", viewerA, "", 0, false, time.Hour},
		}},
		{"refused by the class takes nothing from rules", []Rule{{ID: "search", Route: "search", Limit: Limit{MinPerSecond, 2}}}, []req{
			{"titles", viewerA, "", 0, true, 0},
			{"titles", viewerA, "", 0, true, 0},
			{"search", viewerA, "", 0, false, time.Second},
			{"search", viewerA, "", 0, false, time.Second},
			{"search", viewerA, "", 2 * time.Second, true, 0},
			{"search", viewerA, "", 2 * time.Second, true, 0},
			{"search", viewerA, "", 3 * time.Second, false, time.Hour - time.Second},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runReqs(t, newTestLimiter(t, tc.rules...), tc.reqs)
		})
	}
}

func TestAllowMetrics(t *testing.T) {
	l := newTestLimiter(t, Rule{ID: "search", Route: "search", Limit: Limit{0.1, 1}})
	runReqs(t, l, []req{
		{"search", viewerA, "", 0, true, 0},
		{"search", viewerA, "", 0, false, 10 * time.Second}, // the rule waits longest
		{"titles", viewerA, "", 0, true, 0},
		{"titles", viewerA, "", 0, false, time.Second},
	})
	for _, tc := range []struct {
		rule string
		want float64
	}{{"", 1}, {"search", 1}} {
		if got := refusals(t, l, ClassViewer, tc.rule); got != tc.want {
			t.Errorf("refusals{viewer, %q} = %v, want %v", tc.rule, got, tc.want)
		}
	}
	// A rule's series go with it.
	if err := l.SetRules(nil); err != nil {
		t.Fatal(err)
	}
	if got := refusals(t, l, ClassViewer, "search"); got != 0 {
		t.Errorf("refusals of a removed rule = %v, want a fresh series", got)
	}
}

func TestSetRules(t *testing.T) {
	slow := Limit{MinPerSecond, 1}
	spent := []req{
		{"search", viewerB, "", 0, true, 0},
		{"search", viewerB, "", 0, false, time.Hour},
	}
	for _, tc := range []struct {
		name  string
		next  []Rule
		after req
	}{
		{"unchanged rule keeps its buckets", []Rule{{ID: "s", Route: "search", Limit: slow}, {ID: "new", Route: "titles", Limit: slow}},
			req{"search", viewerB, "", time.Second, false, time.Hour - time.Second}},
		{"changed limit keeps tokens, adopts the rate", []Rule{{ID: "s", Route: "search", Limit: Limit{0.5, 3}}},
			req{"search", viewerB, "", 0, false, 2 * time.Second}},
		{"changed limit adopts the burst", []Rule{{ID: "s", Route: "search", Limit: Limit{-1, 0}}},
			req{"search", viewerB, "", 0, true, 0}},
		{"changed route starts afresh", []Rule{{ID: "s", Route: "titles", Limit: slow}},
			req{"titles", viewerB, "", 0, true, 0}},
		{"changed class starts afresh", []Rule{{ID: "s", Route: "search", Class: ClassViewer, Limit: slow}},
			req{"search", viewerB, "", 0, true, 0}},
		{"removed rule", nil,
			req{"search", viewerB, "", 0, true, 0}},
		{"another id starts afresh", []Rule{{ID: "s2", Route: "search", Limit: slow}},
			req{"search", viewerB, "", 0, true, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newTestLimiter(t, Rule{ID: "s", Route: "search", Limit: slow})
			runReqs(t, l, spent)
			if err := l.SetRules(tc.next); err != nil {
				t.Fatal(err)
			}
			runReqs(t, l, []req{tc.after})
			if got := len(l.Rules()); got != len(tc.next) {
				t.Errorf("len(Rules()) = %d, want %d", got, len(tc.next))
			}
		})
	}

	t.Run("bad rules are left out", func(t *testing.T) {
		l := newTestLimiter(t)
		err := l.SetRules([]Rule{
			{ID: "good", Route: "search", Limit: slow},
			{ID: "", Route: "titles", Limit: slow},
			{ID: "nodes", Class: ClassNode, Limit: slow},
			{ID: "robots", Class: "robots", Limit: slow},
			{ID: "bad-limit", Limit: Limit{5, 0}},
			{ID: "good", Route: "titles", Limit: Limit{}},
		})
		if err == nil {
			t.Fatal("SetRules with bad rules = nil, want an error")
		}
		for _, want := range []string{"without id", `"nodes"`, `"robots"`, `"bad-limit"`, `"good" given twice`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %s", err, want)
			}
		}
		if rules := l.Rules(); len(rules) != 1 || rules[0].Route != "search" {
			t.Errorf("Rules() = %v, want the first good one alone", rules)
		}
		runReqs(t, l, []req{
			{"search", viewerA, "", 0, true, 0},
			{"search", viewerA, "", 0, false, time.Hour},
			{"titles", viewerA, "", 0, true, 0},
		})
	})
}

func TestSetClass(t *testing.T) {
	l := newTestLimiter(t)
	runReqs(t, l, []req{
		{"titles", viewerA, "", 0, true, 0},
		{"titles", viewerA, "", 0, true, 0},
		{"titles", viewerA, "", 0, false, time.Second},
	})
	if err := l.SetClass(ClassViewer, Limit{10, 5}); err != nil {
		t.Fatal(err)
	}
	if got, want := l.Class(ClassViewer), (Limit{10, 5}); got != want {
		t.Errorf("Class(viewer) = %v, want %v", got, want)
	}
	runReqs(t, l, []req{
		{"titles", viewerA, "", 0, false, time.Second}, // tokens kept: none
		{"titles", viewerA, "", 200 * time.Millisecond, true, 0},
		{"titles", viewerA, "", 200 * time.Millisecond, true, 0},
		{"titles", viewerA, "", 200 * time.Millisecond, false, time.Second},
	})
	if err := l.SetClass(ClassViewer, Limit{-1, 0}); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		runReqs(t, l, []req{{"titles", viewerA, "", 0, true, 0}})
	}
	for _, tc := range []struct {
		c   Class
		lim Limit
	}{{ClassNode, Limit{1, 1}}, {"robots", Limit{1, 1}}, {ClassViewer, Limit{1, 0}}} {
		if err := l.SetClass(tc.c, tc.lim); err == nil {
			t.Errorf("SetClass(%q, %v) = nil, want an error", tc.c, tc.lim)
		}
	}
	if got, want := l.Class(ClassViewer), (Limit{-1, 0}); got != want {
		t.Errorf("Class(viewer) after refused changes = %v, want %v", got, want)
	}
	if got := l.Class(ClassNode); got != (Limit{}) {
		t.Errorf("Class(node) = %v, want the zero Limit", got)
	}
}

func TestNew(t *testing.T) {
	if _, err := New(Config{Classes: map[Class]Limit{ClassNode: {1, 1}}}, nil); err == nil {
		t.Error("New with a node limit = nil error, want one")
	}
	reg := prometheus.NewRegistry()
	if _, err := New(Config{}, reg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{}, reg); err == nil {
		t.Error("New registering twice in one registry = nil error, want one")
	}
	// A class missing from Config.Classes has its default.
	l, err := New(Config{Classes: map[Class]Limit{ClassViewer: {1, 1}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for c, want := range defaultLimits() {
		if c == ClassViewer {
			want = Limit{1, 1}
		}
		if got := l.Class(c); got != want {
			t.Errorf("Class(%s) = %v, want %v", c, got, want)
		}
	}
}
