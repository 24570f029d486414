package opsindex

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/events"
)

// Bounds of a query's limit.
const (
	// DefaultLimit is the events a query answers when it names no limit.
	DefaultLimit = 100
	// MaxLimit bounds the events one query answers.
	MaxLimit = 1000
)

// ErrBadQuery is wrapped by the errors of ParseQuery: the API answers
// 400 with the message.
var ErrBadQuery = errors.New("opsindex: bad query")

// Query selects events: those that match every field set, newest first.
type Query struct {
	// Type, Title, Appliance, Site and User, when set, are the values
	// the events' fields must equal.
	Type      string
	Title     string
	Appliance string
	Site      string
	User      string
	// Since, when set, keeps the events with ts at or after it.
	Since time.Time
	// SinceAgo, when set, keeps the events with ts at or after the
	// index's clock minus it, as of the search ("15m": the last quarter
	// of an hour).
	SinceAgo time.Duration
	// Limit bounds the events answered, 1 to MaxLimit. Zero means
	// DefaultLimit.
	Limit int
}

// params are the query parameters ParseQuery knows, in the order its
// errors list them.
const params = "type, title, appliance, site, user, since, limit"

// ParseQuery reads a query from URL parameters: type (one of the event
// types), title, appliance, site, user, since (RFC 3339, or a Go duration
// such as 15m or 2h meaning that long ago) and limit (1 to MaxLimit,
// DefaultLimit when absent). Every parameter is optional and may be
// given once; an unknown, repeated, empty or malformed one is an error
// wrapping ErrBadQuery that names it and says what to send.
func ParseQuery(v url.Values) (Query, error) {
	var q Query
	bad := func(name, format string, args ...any) error {
		return fmt.Errorf("%w: parameter %s: %s", ErrBadQuery, name, fmt.Sprintf(format, args...))
	}
	names := make([]string, 0, len(v))
	for name := range v {
		names = append(names, name)
	}
	sort.Strings(names) // the first error, whatever the map's order
	for _, name := range names {
		vals := v[name]
		if !slices.Contains([]string{"type", "title", "appliance", "site", "user", "since", "limit"}, name) {
			return Query{}, bad(fmt.Sprintf("%.64q", name), "unknown; the parameters are %s", params)
		}
		if len(vals) != 1 {
			return Query{}, bad(name, "given %d times; give it once", len(vals))
		}
		s := vals[0]
		if s == "" {
			return Query{}, bad(name, "empty; leave it out to match any %s", name)
		}
		var err error
		switch name {
		case "type":
			q.Type = s
			if !slices.Contains(events.Types[:], s) {
				err = bad(name, "%.64q is not one of %s", s, strings.Join(events.Types[:], ", "))
			}
		case "title":
			q.Title = s
			if fillcast.ValidateTitleID(s) != nil {
				err = bad(name, "%.64q is not a title id: want 1 to %d letters, digits, '-' or '_'", s, fillcast.MaxTitleIDLen)
			}
		case "appliance", "site", "user":
			limit := events.MaxTextLen
			if name == "user" {
				limit = events.MaxUserLen
			}
			if len(s) > limit || !events.Printable(s) {
				err = bad(name, "want at most %d printable characters", limit)
			}
			switch name {
			case "appliance":
				q.Appliance = s
			case "site":
				q.Site = s
			default:
				q.User = s
			}
		case "since":
			q.Since, q.SinceAgo, err = parseSince(s)
			if err != nil {
				err = bad(name, "%v", err)
			}
		case "limit":
			q.Limit, err = strconv.Atoi(s)
			if err != nil || q.Limit < 1 || q.Limit > MaxLimit {
				err = bad(name, "%.32q: want a number of events from 1 to %d", s, MaxLimit)
			}
		}
		if err != nil {
			return Query{}, err
		}
	}
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	return q, nil
}

// parseSince reads since: a positive duration, or an RFC 3339 time.
func parseSince(s string) (time.Time, time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, 0, fmt.Errorf("%q: want a positive duration, such as 15m", s)
		}
		return time.Time{}, d, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("%.64q: want an RFC 3339 time (2026-11-26T11:00:00Z) or a duration such as 15m or 2h", s)
	}
	return t, 0, nil
}

// Values returns the URL parameters ParseQuery reads q from; since is
// SinceAgo when set, Since otherwise.
func (q Query) Values() url.Values {
	v := url.Values{}
	set := func(name, s string) {
		if s != "" {
			v.Set(name, s)
		}
	}
	set("type", q.Type)
	set("title", q.Title)
	set("appliance", q.Appliance)
	set("site", q.Site)
	set("user", q.User)
	switch {
	case q.SinceAgo > 0:
		v.Set("since", q.SinceAgo.String())
	case !q.Since.IsZero():
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}
