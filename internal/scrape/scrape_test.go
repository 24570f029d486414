package scrape

import (
	"strings"
	"testing"
)

const page = `# HELP fillcast_raft_term The node's current raft term.
# TYPE fillcast_raft_term gauge
fillcast_raft_term 3
# TYPE fillcast_api_requests_total counter
fillcast_api_requests_total{route="get_title",code="200"} 7
fillcast_api_requests_total{route="get_title",code="404"} 1
fillcast_api_requests_total{code="200",route="list \"titles\"\\x\n"} 2 1712345678000
# TYPE fillcast_unused counter
fillcast_raft_apply_seconds_bucket{le="+Inf"} 5
fillcast_raft_apply_seconds_sum 1.5e-3
`

// TestParse: samples, labels (escapes included) and families are read,
// and Value sums the series a label set selects.
func TestParse(t *testing.T) {
	p, err := Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
		ok     bool
	}{
		{"fillcast_raft_term", nil, 3, true},
		{"fillcast_api_requests_total", nil, 10, true},
		{"fillcast_api_requests_total", map[string]string{"code": "200"}, 9, true},
		{"fillcast_api_requests_total", map[string]string{"route": "list \"titles\"\\x\n"}, 2, true},
		{"fillcast_api_requests_total", map[string]string{"code": "500"}, 0, false},
		{"fillcast_raft_apply_seconds_bucket", map[string]string{"le": "+Inf"}, 5, true},
		{"fillcast_raft_apply_seconds_sum", nil, 0.0015, true},
		{"fillcast_unused", nil, 0, false},
	}
	for _, tt := range tests {
		got, ok := p.Value(tt.name, tt.labels)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Value(%s, %v) = %v, %v; want %v, %v", tt.name, tt.labels, got, ok, tt.want, tt.ok)
		}
	}
	names := p.Names()
	for _, n := range []string{"fillcast_raft_term", "fillcast_unused", "fillcast_raft_apply_seconds_bucket", "fillcast_api_requests_total"} {
		if !names[n] {
			t.Errorf("Names() lacks %s", n)
		}
	}
}

// TestParseRefuses: a malformed line is an error naming its line.
func TestParseRefuses(t *testing.T) {
	for _, bad := range []string{
		"fillcast_x",
		"fillcast_x{a=\"b\" 1",
		"fillcast_x{a=b} 1",
		"fillcast_x{a=\"b} 1",
		"fillcast_x one",
	} {
		if _, err := Parse(strings.NewReader("# TYPE fillcast_x gauge\n" + bad + "\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("Parse(%q) = %v, want an error at line 2", bad, err)
		}
	}
}

// FuzzParse: no input panics the parser.
func FuzzParse(f *testing.F) {
	f.Add(page)
	f.Add(`x{a="\` + "\n")
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := Parse(strings.NewReader(s)); err == nil {
			p.Names()
		}
	})
}
