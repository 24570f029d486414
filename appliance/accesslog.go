package appliance

import (
	"fmt"
	"os"

	"github.com/fillcast/fillcast/appliance/accesslog"
	"github.com/fillcast/fillcast/appliance/server"
	"github.com/prometheus/client_golang/prometheus"
)

// openAccessLog opens Config.AccessLog for appending and makes the access
// log over it; nothing without one. Lines go out in whole-line writes to
// a file opened O_APPEND, so the old and the new process of an upgrade
// can share it, and a log rotated by copy and truncate goes on cleanly.
func (a *Appliance) openAccessLog() error {
	if a.cfg.AccessLog == "" {
		return nil
	}
	f, err := os.OpenFile(a.cfg.AccessLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("appliance: access log: %w", err)
	}
	l, err := accesslog.New(accesslog.DefaultConfig(), accesslog.Deps{W: f, Log: a.log})
	if err != nil {
		f.Close()
		return err
	}
	a.access, a.accessFile = l, f
	return nil
}

// closeAccessLog writes what is left of the access log and closes its
// file; it does nothing without one, or the second time.
func (a *Appliance) closeAccessLog() {
	if a.accessFile == nil {
		return
	}
	a.access.Flush()
	a.accessFile.Close()
	a.accessFile = nil
}

// accessLog is the server's Deps.AccessLog: a.access, or a nil interface
// (not one holding a nil pointer) when there is none.
func (a *Appliance) accessLog() server.AccessLog {
	if a.access == nil {
		return nil
	}
	return a.access
}

// accessLogCollector exposes the access log's counters.
type accessLogCollector struct {
	l                           *accesslog.Log
	lines, dropped, writeErrors *prometheus.Desc
}

func newAccessLogCollector(l *accesslog.Log) *accessLogCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("fillcast_appliance_access_log_"+name, help, nil, nil)
	}
	return &accessLogCollector{l: l,
		lines:       d("lines_total", "Access-log lines queued for the file."),
		dropped:     d("dropped_total", "Access-log lines dropped because the file's writes fell 4 MiB behind."),
		writeErrors: d("write_errors_total", "Writes of the access log's file that failed (their lines are lost)."),
	}
}

func (c *accessLogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lines
	ch <- c.dropped
	ch <- c.writeErrors
}

func (c *accessLogCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.l.Stats()
	ch <- prometheus.MustNewConstMetric(c.lines, prometheus.CounterValue, float64(s.Lines))
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(s.Dropped))
	ch <- prometheus.MustNewConstMetric(c.writeErrors, prometheus.CounterValue, float64(s.WriteErrors))
}
