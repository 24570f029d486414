package fillcast

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// goldenUsage is a summary as the appliance writes it, every field set.
const goldenUsage = `{"appliance":"a1","site":"s1","id":"a1-1767225600000000000",` +
	`"start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:10Z","titles":[` +
	`{"title":"t1","rendition":"720p","requests":10,"bytes":15000000,"status_2xx":7,"status_3xx":1,"status_4xx":1,"status_5xx":1,` +
	`"cmcd":{"requests":8,"bitrate_requests":6,"bitrate_kbps_sum":19200,"buffer_requests":8,"buffer_ms_sum":170400,` +
	`"throughput_requests":5,"throughput_kbps_sum":127000,"starved":1,"sessions":2}}],"unattributed":3}`

func validUsage() Usage {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return Usage{Appliance: "a1", Site: "s1", ID: "a1-1767225600000000000", Start: start, End: start.Add(10 * time.Second),
		Titles: []UsageRow{
			{Title: "t1", Requests: 2, Status2xx: 2},
			{Title: "t1", Rendition: "720p", Requests: 10, Bytes: 15e6, Status2xx: 9, Status4xx: 1,
				CMCD: UsageCMCD{Requests: 8, BitrateRequests: 6, BitrateKbpsSum: 19200, Starved: 1, Sessions: 2}},
		}}
}

func TestUsageJSON(t *testing.T) {
	t.Parallel()
	var u Usage
	if err := json.Unmarshal([]byte(goldenUsage), &u); err != nil {
		t.Fatal(err)
	}
	if err := u.Validate(); err != nil {
		t.Fatalf("the golden body is refused: %v", err)
	}
	if hasZeroField(reflectValue(&u)) || hasZeroField(reflectValue(&u.Titles[0])) || hasZeroField(reflectValue(&u.Titles[0].CMCD)) {
		t.Errorf("%+v: a field of the types is not in the golden body", u)
	}
	got, err := json.Marshal(&u)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != goldenUsage {
		t.Errorf("encodes to\n%s\nwant\n%s", got, goldenUsage)
	}
}

func TestUsageValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*Usage)
		err    string // a part of the error; "" for none
	}{
		{"valid", func(*Usage) {}, ""},
		{"no rows", func(u *Usage) { u.Titles = nil }, ""},
		{"empty interval", func(u *Usage) { u.End = u.Start }, ""},
		{"dotted rendition", func(u *Usage) { u.Titles[1].Rendition = "audio.en_2-x" }, ""},
		{"most rows", func(u *Usage) { u.Titles = rows(MaxUsageRows) }, ""},
		{"too many rows", func(u *Usage) { u.Titles = rows(MaxUsageRows + 1) }, "10001 rows"},
		{"no appliance", func(u *Usage) { u.Appliance = "" }, "appliance"},
		{"bad site", func(u *Usage) { u.Site = "s/1" }, "site"},
		{"no id", func(u *Usage) { u.ID = "" }, "id"},
		{"long id", func(u *Usage) { u.ID = strings.Repeat("x", MaxUsageIDLen+1) }, "id"},
		{"id with a slash", func(u *Usage) { u.ID = "a1/1" }, "id"},
		{"no start", func(u *Usage) { u.Start = time.Time{} }, "interval"},
		{"ends before it starts", func(u *Usage) { u.End = u.Start.Add(-time.Nanosecond) }, "interval"},
		{"negative unattributed", func(u *Usage) { u.Unattributed = -1 }, "unattributed"},
		{"bad title", func(u *Usage) { u.Titles[0].Title = "../x" }, "row 0"},
		{"rendition with a slash", func(u *Usage) { u.Titles[1].Rendition = "720p/x" }, "rendition"},
		{"rendition starting with a dot", func(u *Usage) { u.Titles[1].Rendition = ".tmp" }, "rendition"},
		{"duplicate row", func(u *Usage) { u.Titles[0].Rendition = "720p" }, "earlier row"},
		{"negative requests", func(u *Usage) { u.Titles[0].Requests = -1 }, "requests -1"},
		{"negative bytes", func(u *Usage) { u.Titles[1].Bytes = -5 }, "bytes -5"},
		{"more 2xx than requests", func(u *Usage) { u.Titles[0].Status2xx = 3 }, "status_2xx"},
		{"classes overflow", func(u *Usage) {
			r := &u.Titles[1]
			r.Requests, r.Status2xx, r.Status3xx, r.Status4xx, r.Status5xx = math.MaxInt64, math.MaxInt64, math.MaxInt64, 0, 0
		}, "status_3xx"},
		{"negative class", func(u *Usage) { u.Titles[1].Status5xx = -1 }, "status_5xx"},
		{"more cmcd requests than requests", func(u *Usage) { u.Titles[1].CMCD.Requests = 11 }, "cmcd requests"},
		{"more starved than cmcd", func(u *Usage) { u.Titles[1].CMCD.Starved = 9 }, "starved"},
		{"negative sum", func(u *Usage) { u.Titles[1].CMCD.BufferMsSum = -1 }, "buffer_ms_sum"},
		{"more sessions than cmcd", func(u *Usage) { u.Titles[1].CMCD.Sessions = 9 }, "sessions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := validUsage()
			tt.change(&u)
			err := u.Validate()
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.err != "" && (err == nil || !errors.Is(err, ErrBadUsage) || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("Validate() = %v, want an ErrBadUsage with %q", err, tt.err)
			}
		})
	}
}

func rows(n int) []UsageRow {
	out := make([]UsageRow, n)
	for i := range out {
		out[i] = UsageRow{Title: fmt.Sprintf("t%d", i), Requests: 1, Status2xx: 1}
	}
	return out
}

// FuzzUsageJSON: a body the control plane takes (it decodes and passes
// Validate) encodes and decodes back to itself, and still passes.
func FuzzUsageJSON(f *testing.F) {
	f.Add([]byte(goldenUsage))
	b, _ := json.Marshal(validUsage())
	f.Add(b)
	f.Add([]byte(`{"appliance":"a1","site":"s1","id":"x","start":"2026-01-01T00:00:00+01:00","end":"2026-01-01T00:00:00.5+01:00","titles":null}`))
	f.Add([]byte(`{"appliance":"a1","titles":[{"title":"t","status_2xx":-1}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var u Usage
		if json.Unmarshal(body, &u) != nil || u.Validate() != nil {
			return
		}
		enc, err := json.Marshal(&u)
		if err != nil {
			t.Fatalf("a valid summary does not encode: %v", err)
		}
		var back Usage
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatalf("%s does not decode: %v", enc, err)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("%s decodes to an invalid summary: %v", enc, err)
		}
		again, _ := json.Marshal(&back)
		if !bytes.Equal(enc, again) || !back.Start.Equal(u.Start) || !back.End.Equal(u.End) || len(back.Titles) != len(u.Titles) {
			t.Fatalf("round trip changed the summary:\n%s\n%s", enc, again)
		}
	})
}

func reflectValue(p any) reflect.Value { return reflect.ValueOf(p).Elem() }
