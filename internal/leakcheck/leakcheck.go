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
//     server's own goroutines (accepting, serving) are still checked.
func libraries() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/blevesearch/bleve_index_api.AnalysisWorker"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
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
