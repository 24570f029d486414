package billing

import (
	"fmt"
	"time"
)

// The billing periods of a plan (accounts.Plan.Period).
const (
	PeriodMonth = "month"
	PeriodYear  = "year"
)

// CheckPeriod returns an error unless period is PeriodMonth or PeriodYear.
func CheckPeriod(period string) error {
	if period != PeriodMonth && period != PeriodYear {
		return fmt.Errorf("billing: period %q is not %q or %q", period, PeriodMonth, PeriodYear)
	}
	return nil
}

// NextPeriodEnd returns the end of the period that starts at start, in
// UTC: one month later on the start's day of the month, or one year later
// on the same day, at the same time of day. A day the month does not have
// is clamped to its last: Jan 31 → Feb 28 (29 in a leap year), and a
// yearly Feb 29 → Feb 28. For an invalid period (see CheckPeriod) it
// returns the zero Time.
//
// Chaining NextPeriodEnd loses the anchor after a clamp (Feb 28 → Mar 28);
// renewals use AnchoredPeriodEnd, which keeps it (Jan 31 → Feb 28 → Mar 31).
func NextPeriodEnd(start time.Time, period string) time.Time {
	return AnchoredPeriodEnd(start, start, period)
}

// AnchoredPeriodEnd returns the end of the period that starts at start
// for a subscription billed on anchor's day of the month (and, yearly,
// anchor's month) at anchor's time of day, in UTC: the first such moment
// in the month (year) after start's, clamped to that month's last day.
// For an invalid period it returns the zero Time.
func AnchoredPeriodEnd(start, anchor time.Time, period string) time.Time {
	start, anchor = start.UTC(), anchor.UTC()
	y, m := start.Year(), start.Month()
	switch period {
	case PeriodMonth:
		m++
		if m > time.December {
			m, y = time.January, y+1
		}
	case PeriodYear:
		y, m = y+1, anchor.Month()
	default:
		return time.Time{}
	}
	d := min(anchor.Day(), daysIn(y, m))
	h, mi, s := anchor.Clock()
	return time.Date(y, m, d, h, mi, s, anchor.Nanosecond(), time.UTC)
}

// daysIn returns the number of days of month m of year y.
func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
