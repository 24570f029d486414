package billing

import (
	"testing"
	"time"
)

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 10, 30, 0, 0, time.UTC) }

func TestNextPeriodEnd(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	tests := []struct {
		name   string
		start  time.Time
		period string
		want   time.Time
	}{
		{"month", date(2026, 3, 15), PeriodMonth, date(2026, 4, 15)},
		{"december", date(2026, 12, 15), PeriodMonth, date(2027, 1, 15)},
		{"jan 31", date(2026, 1, 31), PeriodMonth, date(2026, 2, 28)},
		{"jan 31 leap", date(2028, 1, 31), PeriodMonth, date(2028, 2, 29)},
		{"mar 31", date(2026, 3, 31), PeriodMonth, date(2026, 4, 30)},
		{"year", date(2026, 5, 1), PeriodYear, date(2027, 5, 1)},
		{"feb 29", date(2028, 2, 29), PeriodYear, date(2029, 2, 28)},
		{"utc", time.Date(2026, 2, 1, 0, 30, 0, 0, paris), PeriodMonth, time.Date(2026, 2, 28, 23, 30, 0, 0, time.UTC)},
		{"bad period", date(2026, 1, 1), "week", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NextPeriodEnd(tt.start, tt.period); !got.Equal(tt.want) {
				t.Errorf("got %v; want %v", got, tt.want)
			}
		})
	}
}

func TestAnchoredKeepsAnchor(t *testing.T) {
	tests := []struct {
		name   string
		anchor time.Time
		period string
		want   []time.Time
	}{
		{"jan 31", date(2026, 1, 31), PeriodMonth, []time.Time{date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30), date(2026, 5, 31)}},
		{"feb 29 yearly", date(2028, 2, 29), PeriodYear, []time.Time{date(2029, 2, 28), date(2030, 2, 28), date(2031, 2, 28), date(2032, 2, 29)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := tt.anchor
			for i, want := range tt.want {
				got := AnchoredPeriodEnd(start, tt.anchor, tt.period)
				if !got.Equal(want) {
					t.Fatalf("period %d: got %v; want %v", i+1, got, want)
				}
				start = got
			}
		})
	}
}
