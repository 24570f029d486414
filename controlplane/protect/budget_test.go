package protect

import (
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/clocktest"
)

func TestBudgetConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   BudgetConfig
		field string // "" for no error
	}{
		{"zero is the defaults", BudgetConfig{}, ""},
		{"defaults", DefaultBudgetConfig(), ""},
		{"ratio 1", BudgetConfig{Ratio: 1}, ""},
		{"ratio over 1", BudgetConfig{Ratio: 1.5}, "Ratio"},
		{"negative ratio", BudgetConfig{Ratio: -0.1}, "Ratio"},
		{"negative floor", BudgetConfig{MinPerSecond: -1}, "MinPerSecond"},
		{"negative window", BudgetConfig{Window: -time.Second}, "Window"},
		{"window too short", BudgetConfig{Window: time.Millisecond}, "Window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantConfigError(t, tt.cfg.Validate(), tt.field)
			if _, err := NewBudget(tt.cfg); (err == nil) != (tt.field == "") {
				t.Errorf("NewBudget: %v", err)
			}
		})
	}
}

// withdraw calls b.Withdraw n times and returns how many were granted.
func withdraw(b *Budget, n int) int {
	got := 0
	for range n {
		if b.Withdraw() {
			got++
		}
	}
	return got
}

// TestBudgetCaps: retries are Ratio of the first attempts in the window
// plus the floor, MinPerSecond×Window; spent retries and first attempts
// leave the window as it rolls.
func TestBudgetCaps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		cfg      BudgetConfig
		requests int
		want     int // retries granted of 10,000 asked
	}{
		{"quiet: the floor alone", BudgetConfig{MinPerSecond: 3, Window: 10 * time.Second}, 0, 30},
		{"busy: ratio and floor", BudgetConfig{Ratio: 0.1, MinPerSecond: 3, Window: 10 * time.Second}, 1000, 130},
		{"busier", BudgetConfig{Ratio: 0.2, MinPerSecond: 1, Window: time.Second}, 5000, 1001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := clocktest.New(time.Unix(1000, 0))
			b, err := newBudget(tt.cfg, clk.Now)
			if err != nil {
				t.Fatal(err)
			}
			for range tt.requests {
				b.Request()
			}
			if got := withdraw(b, 10_000); got != tt.want {
				t.Errorf("granted %d retries after %d first attempts, want %d", got, tt.requests, tt.want)
			}
		})
	}
}

// TestBudgetWindowRolls: what was spent and earned leaves the window a
// tenth at a time.
func TestBudgetWindowRolls(t *testing.T) {
	t.Parallel()
	clk := clocktest.New(time.Unix(1000, 0))
	b, err := newBudget(BudgetConfig{Ratio: 0.1, MinPerSecond: 1, Window: 10 * time.Second}, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name     string
		advance  time.Duration
		requests int
		want     int // retries granted of 1,000 asked
	}{
		{"the floor", 0, 0, 10},
		{"spent: 100 first attempts earn 10", time.Second, 100, 10},
		{"half a window on: nothing left the window", 4 * time.Second, 0, 0},
		{"the floor's spending left", 5 * time.Second, 0, 10},
		{"the earned and its spending left", time.Second, 0, 0},
		{"a whole window later", time.Hour, 50, 15},
	}
	for _, s := range steps {
		clk.Advance(s.advance)
		for range s.requests {
			b.Request()
		}
		if got := withdraw(b, 1000); got != s.want {
			t.Errorf("%s: granted %d, want %d", s.name, got, s.want)
		}
	}
}

// TestBudgetConcurrentUse: concurrent callers never overspend (run with
// -race).
func TestBudgetConcurrentUse(t *testing.T) {
	t.Parallel()
	b, err := NewBudget(BudgetConfig{Ratio: 0.1, MinPerSecond: 1, Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	granted := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			n := 0
			for range 1000 {
				b.Request()
				if b.Withdraw() {
					n++
				}
			}
			mu.Lock()
			granted += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if want := 800 + 3600; granted > want {
		t.Errorf("granted %d retries, want at most %d", granted, want)
	}
}
