// Package procstat reads what the benchmarks report of the machine they
// ran on, from Linux's /proc: a process's CPU time and resident memory,
// the machine's busy and total CPU ticks, the load average.
package procstat

import (
	"os"
	"strconv"
	"strings"
)

// CPUSeconds is the user plus system CPU time process pid has used, from
// /proc/PID/stat (clock ticks of 1/100 s); pid 0 means this process.
func CPUSeconds(pid int) float64 {
	p := "/proc/self/stat"
	if pid != 0 {
		p = "/proc/" + strconv.Itoa(pid) + "/stat"
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	// After the command name in parentheses: state is field 1, utime
	// and stime fields 12 and 13.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100
}

// RSSBytes is process pid's resident memory (VmRSS of
// /proc/PID/status), 0 when it cannot be read.
func RSSBytes(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// MachineCPU returns the machine's busy and total CPU ticks so far.
func MachineCPU() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	if len(fields) < 2 {
		return 0, 0
	}
	for i, v := range fields[1:] {
		if i >= 8 { // guest time is in user already
			break
		}
		x, _ := strconv.ParseUint(v, 10, 64)
		total += x
		if i != 3 && i != 4 { // idle, iowait
			busy += x
		}
	}
	return busy, total
}

// LoadAvg returns the 1, 5 and 15 minute load averages.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
