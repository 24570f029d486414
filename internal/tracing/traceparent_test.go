package tracing

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

const (
	// specTraceID and specParentID are the ids of the W3C recommendation's
	// examples.
	specTraceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
	specParentID = "00f067aa0ba902b7"
)

// traceIDCases are the W3C Trace Context rules for a receiver of
// traceparent, one case per rule; they seed FuzzTraceID too.
var traceIDCases = []struct {
	name string
	in   string
	want string // "" for malformed
}{
	{"sampled", "00-" + specTraceID + "-" + specParentID + "-01", specTraceID},
	{"not sampled", "00-" + specTraceID + "-" + specParentID + "-00", specTraceID},
	{"random flag", "00-" + specTraceID + "-" + specParentID + "-03", specTraceID},
	{"unknown flags", "00-" + specTraceID + "-" + specParentID + "-09", specTraceID},
	{"trace id all f", "00-ffffffffffffffffffffffffffffffff-" + specParentID + "-01", "ffffffffffffffffffffffffffffffff"},
	{"trace id of one non-zero digit", "00-00000000000000000000000000000001-" + specParentID + "-01", "00000000000000000000000000000001"},
	{"later version", "01-" + specTraceID + "-" + specParentID + "-01", specTraceID},
	{"later version with more fields", "cc-" + specTraceID + "-" + specParentID + "-01-what-the-future-will-be-like", specTraceID},
	{"version fe", "fe-" + specTraceID + "-" + specParentID + "-01", specTraceID},

	{"empty", "", ""},
	{"version ff", "ff-" + specTraceID + "-" + specParentID + "-01", ""},
	{"version upper case", "0A-" + specTraceID + "-" + specParentID + "-01", ""},
	{"version not hex", "0g-" + specTraceID + "-" + specParentID + "-01", ""},
	{"version of one digit", "0-" + specTraceID + "-" + specParentID + "-01", ""},
	{"version 00 with more fields", "00-" + specTraceID + "-" + specParentID + "-01-extra", ""},
	{"version 00 with trailing dash", "00-" + specTraceID + "-" + specParentID + "-01-", ""},
	{"later version, no dash after flags", "cc-" + specTraceID + "-" + specParentID + "-01.what-the-future-will-be-like", ""},
	{"later version, flags too long", "cc-" + specTraceID + "-" + specParentID + "-010", ""},
	{"trace id upper case", "00-4BF92F3577B34DA6A3CE929D0E0E4736-" + specParentID + "-01", ""},
	{"trace id one upper case digit", "00-4bf92f3577b34da6a3ce929d0e0e473A-" + specParentID + "-01", ""},
	{"trace id all zeros", "00-00000000000000000000000000000000-" + specParentID + "-01", ""},
	{"trace id too short", "00-" + specTraceID[1:] + "-" + specParentID + "-01", ""},
	{"trace id too long", "00-" + specTraceID + "0-" + specParentID + "-01", ""},
	{"trace id not hex", "00-4bf92f3577b34da6a3ce929d0e0e473g-" + specParentID + "-01", ""},
	{"parent id upper case", "00-" + specTraceID + "-00F067AA0BA902B7-01", ""},
	{"parent id all zeros", "00-" + specTraceID + "-0000000000000000-01", ""},
	{"parent id too short", "00-" + specTraceID + "-" + specParentID[1:] + "-01", ""},
	{"parent id not hex", "00-" + specTraceID + "-00f067aa0ba902bz-01", ""},
	{"flags upper case", "00-" + specTraceID + "-" + specParentID + "-0A", ""},
	{"flags not hex", "00-" + specTraceID + "-" + specParentID + "-0x", ""},
	{"flags of one digit", "00-" + specTraceID + "-" + specParentID + "-1", ""},
	{"no flags", "00-" + specTraceID + "-" + specParentID, ""},
	{"underscores", "00_" + specTraceID + "_" + specParentID + "_01", ""},
	{"leading space", " 00-" + specTraceID + "-" + specParentID + "-01", ""},
	{"trailing space", "00-" + specTraceID + "-" + specParentID + "-01 ", ""},
	{"dashes only", strings.Repeat("-", traceparentLen), ""},
}

func TestTraceID(t *testing.T) {
	t.Parallel()
	for _, tc := range traceIDCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := TraceID(tc.in)
			if want, wantOK := tc.want, tc.want != ""; got != want || ok != wantOK {
				t.Errorf("TraceID(%q) = %q, %v; want %q, %v", tc.in, got, ok, want, wantOK)
			}
		})
	}
}

// FuzzTraceID checks that TraceID never panics, that what it accepts is a
// trace id cut from the input, and that it agrees with the OpenTelemetry
// propagator, which parses traceparent for the SDK.
func FuzzTraceID(f *testing.F) {
	for _, tc := range traceIDCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, ok := TraceID(in)
		if !ok {
			if got != "" {
				t.Errorf("TraceID(%q) = %q, false; want an empty id with false", in, got)
			}
		} else {
			if len(got) != 32 || !isLowerHex(got) {
				t.Errorf("TraceID(%q) = %q: not 32 lower-case hex digits", in, got)
			}
			if !strings.Contains(in, got) {
				t.Errorf("TraceID(%q) = %q: not a substring of the input", in, got)
			}
		}

		ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": in})
		sc := trace.SpanContextFromContext(ctx)
		switch {
		case sc.IsValid() && ok && got != sc.TraceID().String():
			t.Errorf("TraceID(%q) = %q; the propagator reads trace id %s", in, got, sc.TraceID())
		case sc.IsValid() && !ok && !trailingDash(in):
			t.Errorf("TraceID(%q) = false; the propagator reads trace id %s", in, sc.TraceID())
		case !sc.IsValid() && ok && !reservedFlags(in):
			t.Errorf("TraceID(%q) = %q, true; the propagator refuses it", in, got)
		}
	})
}

// The propagator and TraceID part in two cases, where the propagator is
// the stricter and the more lenient in turn:

// reservedFlags reports whether in is a version 00 traceparent with flags
// other than sampled and random set, which the propagator refuses and
// TraceID, which does not read the flags, accepts.
func reservedFlags(in string) bool {
	return strings.HasPrefix(in, "00-") && len(in) == traceparentLen && in[traceparentLen-2:] > "03"
}

// trailingDash reports whether in is a version 00 traceparent followed by
// a dash alone, which the propagator accepts and TraceID, held to the
// 55 characters of version 00, refuses.
func trailingDash(in string) bool {
	return strings.HasPrefix(in, "00-") && len(in) == traceparentLen+1 && in[traceparentLen] == '-'
}

func BenchmarkTraceID(b *testing.B) {
	in := "00-" + specTraceID + "-" + specParentID + "-01"
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := TraceID(in); !ok {
			b.Fatal("TraceID refused a valid traceparent")
		}
	}
}
