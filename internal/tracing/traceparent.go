package tracing

// The layout of a W3C traceparent value (https://www.w3.org/TR/trace-context/):
// "vv-<trace id>-<parent id>-ff", lower-case hex throughout.
const (
	traceIDStart   = 3                   // after "vv-"
	traceIDEnd     = traceIDStart + 32   // 35, the dash before the parent id
	parentIDEnd    = traceIDEnd + 1 + 16 // 52, the dash before the flags
	traceparentLen = parentIDEnd + 1 + 2 // 55, the whole of a version 00 value
)

// TraceID returns the trace id (32 lowercase hex) of a W3C traceparent
// value ("00-<trace id>-<parent id>-<flags>"), and false for anything
// malformed (wrong length, upper case, all-zero ids, version ff, ...).
//
// The id is a substring of traceparent, so a request's trace id reaches a
// log line without an allocation or an SDK. The rules are those of a
// receiver in the W3C Trace Context recommendation: the version is two
// lower-case hex digits other than "ff"; version 00 is exactly 55
// characters; a later version may be longer, with a dash after the flags
// starting what that version adds; trace id and parent id are lower-case
// hex and not all zeros; the flags are two lower-case hex digits, whose
// bits are not checked (unknown ones are for later levels to define).
func TraceID(traceparent string) (string, bool) {
	s := traceparent
	if len(s) < traceparentLen || s[2] != '-' || s[traceIDEnd] != '-' || s[parentIDEnd] != '-' {
		return "", false
	}
	version := s[:2]
	switch {
	case !isLowerHex(version) || version == "ff":
	case version == "00" && len(s) != traceparentLen:
	case len(s) > traceparentLen && s[traceparentLen] != '-':
	case !isLowerHex(s[parentIDEnd+1 : traceparentLen]):
	case !isNonZeroLowerHex(s[traceIDStart:traceIDEnd]):
	case !isNonZeroLowerHex(s[traceIDEnd+1 : parentIDEnd]):
	default:
		return s[traceIDStart:traceIDEnd], true
	}
	return "", false
}

// isLowerHex reports whether s is made of 0-9 and a-f only.
func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// isNonZeroLowerHex reports whether s is lower-case hex with a digit other
// than 0: the W3C rule for trace and parent ids.
func isNonZeroLowerHex(s string) bool {
	zero := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
		if c != '0' {
			zero = false
		}
	}
	return !zero
}
