// Package leakcheck is how Fillcast's tests check that no goroutine
// outlives the parts that started it: goleak, told once which goroutines
// libraries keep on purpose. Only tests import it.
package leakcheck

import (
	"testing"

	"go.uber.org/goleak"
)

// libraries are the goroutines libraries keep on purpose:
//   - bleve's analysis workers, a pool its package starts once per process
//     and never stops;
//   - fasthttp's clock for the Date header, one per process;
//   - the cleaner of a fasthttp server's worker pool, which sleeps 10 s
//     between rounds and only then notices that its server stopped. The
//     server's own goroutines (accepting, serving) are still checked;
//   - a NATS server's file store created while its server shuts down
//     (a stream or consumer being made when a test's cluster stops): its
//     state-flushing loop outlives the server, and with it the package's
//     access-time ticker. Every other goroutine of the embedded servers
//     is checked (controlplane's TestStartStopLeavesNothing).
func libraries() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/blevesearch/bleve_index_api.AnalysisWorker"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*fileStore).flushStreamStateLoop"),
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server/ats.Register.func1"),
	}
}

// Main runs a package's tests and fails them if any goroutine outlives
// them; call it from TestMain.
func Main(m *testing.M) {
	goleak.VerifyTestMain(m, libraries()...)
}

// Baseline records the goroutines running now, for VerifyNone to leave
// alone.
func Baseline() goleak.Option { return goleak.IgnoreCurrent() }

// VerifyNone fails t if a goroutine runs that did not at baseline.
func VerifyNone(t testing.TB, baseline goleak.Option) {
	t.Helper()
	goleak.VerifyNone(t, append(libraries(), baseline)...)
}
