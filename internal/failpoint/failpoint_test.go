package failpoint

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want map[string]int64
		bad  bool
	}{
		{in: "", want: map[string]int64{}},
		{in: "a=kill", want: map[string]int64{"a": 1}},
		{in: "a=kill, b=kill-after:3", want: map[string]int64{"a": 1, "b": 3}},
		{in: "a", bad: true},
		{in: "=kill", bad: true},
		{in: "a=panic", bad: true},
		{in: "a=kill-after:0", bad: true},
		{in: "a=kill-after:x", bad: true},
	} {
		got, err := Parse(c.in)
		if (err != nil) != c.bad {
			t.Errorf("Parse(%q) error %v, want error %v", c.in, err, c.bad)
			continue
		}
		if !c.bad && len(got) != len(c.want) {
			t.Errorf("Parse(%q) = %v, want %v", c.in, got, c.want)
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("Parse(%q)[%s] = %d, want %d", c.in, k, got[k], v)
			}
		}
	}
}

// TestKill runs this test binary as a child that hits a point three times
// with kill-after:2: it must print the first hit and die by SIGKILL at
// the second.
func TestKill(t *testing.T) {
	if os.Getenv("FAILPOINT_CHILD") == "1" {
		for i := 1; i <= 3; i++ {
			os.Stdout.WriteString("before\n")
			Hit("step")
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill$")
	cmd.Env = append(os.Environ(), "FAILPOINT_CHILD=1", Env+"=step=kill-after:2,other=kill")
	out, err := cmd.Output()
	ee, ok := err.(*exec.ExitError)
	if !ok {
		t.Fatalf("child: %v, want killed", err)
	}
	if ws := ee.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended %v, want SIGKILL", ws)
	}
	if n := strings.Count(string(out), "before"); n != 2 {
		t.Fatalf("child reached the point %d times, want 2", n)
	}
}

func TestInactive(t *testing.T) {
	Hit("anything") // FILLCAST_FAILPOINTS unset: nothing happens
}

// FuzzParse: any value parses or is refused; what parses has names and
// hits from 1.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "a=kill", "a=kill,b=kill-after:3", "a=kill-after:0", "=", ",,", "a=kill-after:99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := Parse(s)
		if err != nil {
			return
		}
		for name, at := range ps {
			if name == "" || at < 1 {
				t.Fatalf("Parse(%q) = %v", s, ps)
			}
		}
	})
}
