package fillcast

import (
	"errors"
	"fmt"
	"time"
)

// Bounds of a Usage, so that the control plane can refuse a hostile body
// before it counts anything.
const (
	// MaxUsageRows bounds Usage.Titles.
	MaxUsageRows = 10_000
	// MaxUsageIDLen bounds Usage.ID.
	MaxUsageIDLen = 128
)

// ErrBadUsage is wrapped by the errors of Usage.Validate.
var ErrBadUsage = errors.New("fillcast: bad usage summary")

// Usage is the body of POST /v1/appliances/{id}/usage: what one appliance
// served in one interval (10 s by default), per title and rendition, with
// the players' CMCD (CTA-5004) summed, from its access log. The appliance
// sends one per interval that served anything, and sends a summary again
// when no control-plane node took it; the control plane counts a summary
// once per ID.
type Usage struct {
	// Appliance is the id of the appliance that served: the route's {id}.
	Appliance string `json:"appliance"`
	// Site is the id of the appliance's site.
	Site string `json:"site"`
	// ID names this summary alone among every appliance's: the appliance
	// id and the interval's start, in Unix nanoseconds ("a1-1767225600000000000").
	// The control plane de-duplicates by it. Letters, digits, '-' and
	// '_', at most MaxUsageIDLen.
	ID string `json:"id"`
	// Start and End bound the interval: a response is in it when it was
	// recorded at or after Start and before End.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Titles has a row per title and rendition that had a response in
	// the interval, sorted by title then rendition; at most MaxUsageRows.
	Titles []UsageRow `json:"titles"`
	// Unattributed counts the responses of the interval that are in no
	// row: their title and rendition came after the appliance's bound on
	// rows (at most MaxUsageRows) was reached, or their title was not a
	// valid id.
	Unattributed int64 `json:"unattributed,omitempty"`
}

// UsageRow is what one rendition of a title served in an interval.
type UsageRow struct {
	// Title is the title's id.
	Title string `json:"title"`
	// Rendition is the rendition's directory, the first one of the path
	// under the title ("720p" of /t1/720p/seg-00001.m4s); empty for the
	// files at the title's root (the master playlist, the MPD) and for
	// directories that are not a valid id (letters, digits, '.', '-', '_').
	Rendition string `json:"rendition,omitempty"`
	// Requests counts the responses; Bytes the body bytes sent with them
	// (none for HEAD, errors and 304s).
	Requests int64 `json:"requests"`
	Bytes    int64 `json:"bytes"`
	// Status2xx to Status5xx count the responses by status class.
	Status2xx int64 `json:"status_2xx"`
	Status3xx int64 `json:"status_3xx"`
	Status4xx int64 `json:"status_4xx"`
	Status5xx int64 `json:"status_5xx"`
	// CMCD sums what the players said with the requests.
	CMCD UsageCMCD `json:"cmcd"`
}

// UsageCMCD sums the CMCD of a row's requests. A mean is a sum divided by
// the count of requests that sent its key: BitrateKbpsSum / BitrateRequests.
type UsageCMCD struct {
	// Requests counts the requests that sent CMCD (any key the appliance
	// reads), in the CMCD query parameter or the CMCD-* headers.
	Requests int64 `json:"requests"`
	// BitrateRequests counts the requests with br (the object's encoded
	// bitrate) and BitrateKbpsSum sums it, kbps.
	BitrateRequests int64 `json:"bitrate_requests"`
	BitrateKbpsSum  int64 `json:"bitrate_kbps_sum"`
	// BufferRequests counts the requests with bl (the player's buffer
	// length) and BufferMsSum sums it, ms.
	BufferRequests int64 `json:"buffer_requests"`
	BufferMsSum    int64 `json:"buffer_ms_sum"`
	// ThroughputRequests counts the requests with mtp (the throughput the
	// player measured) and ThroughputKbpsSum sums it, kbps.
	ThroughputRequests int64 `json:"throughput_requests"`
	ThroughputKbpsSum  int64 `json:"throughput_kbps_sum"`
	// Starved counts the requests with bs: the player's buffer ran empty.
	Starved int64 `json:"starved"`
	// Sessions estimates the distinct session ids (sid) of the requests:
	// within a few percent up to about a thousand, a lower bound above.
	Sessions int64 `json:"sessions"`
}

// Validate reports the first problem of u, a body from the network,
// wrapping ErrBadUsage: ids that are not ids, an interval that ends
// before it starts, more than MaxUsageRows rows, a row given twice, and
// counts that are negative or larger than what they are part of.
func (u *Usage) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadUsage, fmt.Sprintf(format, args...))
	}
	if err := ValidateTitleID(u.Appliance); err != nil {
		return bad("appliance: %v", err)
	}
	if err := ValidateTitleID(u.Site); err != nil {
		return bad("site: %v", err)
	}
	if !validUsageID(u.ID) {
		return bad("id %.140q: want 1 to %d letters, digits, '-' or '_'", u.ID, MaxUsageIDLen)
	}
	if u.Start.IsZero() || u.End.Before(u.Start) {
		return bad("interval %v to %v: want a start, and an end not before it", u.Start, u.End)
	}
	if len(u.Titles) > MaxUsageRows {
		return bad("%d rows: want at most %d", len(u.Titles), MaxUsageRows)
	}
	if u.Unattributed < 0 {
		return bad("unattributed %d is negative", u.Unattributed)
	}
	seen := make(map[[2]string]struct{}, len(u.Titles))
	for i := range u.Titles {
		r := &u.Titles[i]
		if err := r.validate(); err != nil {
			return bad("row %d: %v", i, err)
		}
		k := [2]string{r.Title, r.Rendition}
		if _, dup := seen[k]; dup {
			return bad("row %d: title %q rendition %q is in an earlier row", i, r.Title, r.Rendition)
		}
		seen[k] = struct{}{}
	}
	return nil
}

func (r *UsageRow) validate() error {
	if err := ValidateTitleID(r.Title); err != nil {
		return err
	}
	if !ValidUsageRendition(r.Rendition) {
		return fmt.Errorf("rendition %.80q: want at most %d letters, digits, '.', '-' or '_', not starting with '.' or '-'", r.Rendition, MaxTitleIDLen)
	}
	c := &r.CMCD
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"requests", r.Requests}, {"bytes", r.Bytes}, {"cmcd bitrate_kbps_sum", c.BitrateKbpsSum},
		{"cmcd buffer_ms_sum", c.BufferMsSum}, {"cmcd throughput_kbps_sum", c.ThroughputKbpsSum},
	} {
		if f.v < 0 {
			return fmt.Errorf("%s %d is negative", f.name, f.v)
		}
	}
	// Each part is at most what is left of its whole, so that hostile
	// counts cannot overflow a sum.
	left := r.Requests
	for _, f := range []struct {
		name string
		v    int64
	}{{"status_2xx", r.Status2xx}, {"status_3xx", r.Status3xx}, {"status_4xx", r.Status4xx}, {"status_5xx", r.Status5xx}} {
		if f.v < 0 || f.v > left {
			return fmt.Errorf("%s %d: want 0 to the %d requests not in another status class", f.name, f.v, left)
		}
		left -= f.v
	}
	if c.Requests < 0 || c.Requests > r.Requests {
		return fmt.Errorf("cmcd requests %d: want 0 to requests (%d)", c.Requests, r.Requests)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"bitrate_requests", c.BitrateRequests}, {"buffer_requests", c.BufferRequests},
		{"throughput_requests", c.ThroughputRequests}, {"starved", c.Starved}, {"sessions", c.Sessions},
	} {
		if f.v < 0 || f.v > c.Requests {
			return fmt.Errorf("cmcd %s %d: want 0 to cmcd requests (%d)", f.name, f.v, c.Requests)
		}
	}
	return nil
}

// ValidUsageRendition reports whether dir may be a UsageRow's Rendition:
// empty, or 1 to MaxTitleIDLen letters, digits, '.', '-' and '_' that do
// not start with '.' or '-'. The appliance counts the responses of any
// other directory under the empty rendition.
func ValidUsageRendition(dir string) bool {
	if len(dir) > MaxTitleIDLen || dir != "" && (dir[0] == '.' || dir[0] == '-') {
		return false
	}
	for i := 0; i < len(dir); i++ {
		if !IsIDByte(dir[i]) && dir[i] != '.' {
			return false
		}
	}
	return true
}

func validUsageID(id string) bool {
	if id == "" || len(id) > MaxUsageIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !IsIDByte(id[i]) {
			return false
		}
	}
	return true
}
