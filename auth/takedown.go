package auth

// Takedowns is an immutable set of taken-down titles: for each, the
// latest expiry (unix seconds) of a playback token issued for it before
// its takedown. Whoever serves a title (appliances, the origin) refuses
// such tokens even though they verify, so that deleting a title stops
// the sessions already under way; a token issued after the title was
// created again expires later and is served. An entry matters only
// until its expiry bound has passed: every token it refuses has expired
// by then, so holders drop it. The zero value and nil refuse nothing.
type Takedowns struct {
	until map[string]int64
}

// NewTakedowns returns the set of until's titles, each with its latest
// refused expiry. It keeps a copy of until.
func NewTakedowns(until map[string]int64) *Takedowns {
	t := &Takedowns{until: make(map[string]int64, len(until))}
	for title, u := range until {
		t.until[title] = u
	}
	return t
}

// Len returns how many titles the set holds.
func (t *Takedowns) Len() int {
	if t == nil {
		return 0
	}
	return len(t.until)
}

// Refuses reports whether token, which verified for title, was issued
// before title's takedown: it expires at or before the title's bound. A
// token whose expiry cannot be read is refused. It allocates nothing, as
// it runs on every request of a player.
func (t *Takedowns) Refuses(token, title string) bool {
	if t == nil || len(t.until) == 0 {
		return false
	}
	until, ok := t.until[title]
	if !ok {
		return false
	}
	exp, ok := TokenExpiry(token)
	return !ok || exp <= until
}

// TokenExpiry returns the expiry (unix seconds) a token's text carries,
// without verifying anything: call it only on a token that verified.
func TokenExpiry(token string) (int64, bool) {
	_, rest, ok := cut(token, '.')
	if !ok {
		return 0, false
	}
	exp, _, _ := cut(rest, '.')
	return parseUnix(exp)
}
