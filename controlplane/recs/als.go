// Package recs recommends titles: implicit-feedback matrix factorisation
// by alternating least squares (Hu, Koren and Volinsky, "Collaborative
// Filtering for Implicit Feedback Datasets", 2008) over the watch time
// package events folds from the replicated event stream, a trending
// fallback for new users and for the time before the first model (topped
// up from the catalog while trending is short), a Service that trains as
// soon as there is enough data and then on a schedule and swaps models in
// atomically, and a ristretto cache of answers that a swap invalidates.
//
// In a cluster one node trains and every node serves: the leader puts
// each model, encoded by Model.MarshalBinary, in a ModelStore, and every
// node watches the store and swaps in what it delivers. Each node
// computes its trending list from its own copy of the stream.
//
// Each (user, title) pair with watch weight w in (0, 1] is an observed
// preference with confidence c = 1 + Alpha·w; every other pair is a
// preference of 0 with confidence 1. Training alternates between solving
// every user's factors with the item factors fixed and the reverse. Each
// solve uses the identity YᵀCᵤY = YᵀY + Yᵀ(Cᵤ−I)Y, so the dense YᵀY is
// computed once per half-iteration and each user costs only her own
// titles: O(nᵤk) per conjugate-gradient step, or O(nᵤk² + k³) with the
// exact Cholesky solve. Rows are solved by Workers goroutines.
//
// An API handler calls Service.Recommend or Service.Similar with the
// request's context and answers Service.Fallback when they fail or time
// out. ErrBadRequest maps to 400, ErrUnknownTitle to 404 and ErrNotReady
// to 503. Service.PopularityScores feeds search.Index.SetPopularity.
package recs

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/events"
)

// Solver names the per-row least-squares method.
type Solver string

// Solvers.
const (
	// SolverCG runs Config.CGSteps conjugate-gradient steps from the
	// previous factors (Takács et al. 2011): fast, and exact enough
	// once the factors settle. The default.
	SolverCG Solver = "cg"
	// SolverCholesky solves each row exactly with a Cholesky
	// factorisation.
	SolverCholesky Solver = "cholesky"
)

// ALSConfig configures training.
type ALSConfig struct {
	// Factors is k, the length of each user and title vector. Zero
	// means 32.
	Factors int
	// Iterations is the number of user-then-item sweeps. Zero means 12.
	Iterations int
	// Lambda is the L2 regularisation. Zero means 0.1.
	Lambda float64
	// Alpha scales watch weight into confidence. Zero means 20.
	Alpha float64
	// Solver is SolverCG (the default) or SolverCholesky.
	Solver Solver
	// CGSteps is the conjugate-gradient steps per row. Zero means 3.
	CGSteps int
	// Workers is the number of goroutines solving rows. Zero means
	// GOMAXPROCS.
	Workers int
}

// DefaultALSConfig returns the defaults.
func DefaultALSConfig() ALSConfig {
	return ALSConfig{Factors: 32, Iterations: 12, Lambda: 0.1, Alpha: 20, Solver: SolverCG, CGSteps: 3}
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
// Zero fields mean their defaults.
func (c ALSConfig) Validate() error {
	c = c.withDefaults()
	bad := func(field, format string, args ...any) error {
		return fillcast.ConfigErrorf("recs", field, format, args...)
	}
	switch {
	case c.Factors < 1 || c.Factors > 512:
		return bad("Factors", "%d outside 1..512", c.Factors)
	case c.Iterations < 1:
		return bad("Iterations", "%d below 1", c.Iterations)
	case c.Lambda < 0:
		return bad("Lambda", "%v is negative", c.Lambda)
	case c.Alpha < 0:
		return bad("Alpha", "%v is negative", c.Alpha)
	case c.Solver != SolverCG && c.Solver != SolverCholesky:
		return bad("Solver", "unknown solver %q; want cg or cholesky", c.Solver)
	case c.CGSteps < 1:
		return bad("CGSteps", "%d below 1", c.CGSteps)
	case c.Workers < 1:
		return bad("Workers", "%d below 1", c.Workers)
	}
	return nil
}

func (c ALSConfig) withDefaults() ALSConfig {
	d := DefaultALSConfig()
	if c.Factors == 0 {
		c.Factors = d.Factors
	}
	if c.Iterations == 0 {
		c.Iterations = d.Iterations
	}
	if c.Lambda == 0 {
		c.Lambda = d.Lambda
	}
	if c.Alpha == 0 {
		c.Alpha = d.Alpha
	}
	if c.Solver == "" {
		c.Solver = d.Solver
	}
	if c.CGSteps == 0 {
		c.CGSteps = d.CGSteps
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	return c
}

// ErrNoData is returned by Train when there is nothing to learn from.
var ErrNoData = errors.New("recs: no interactions to train on")

// sparse is a compressed row matrix of confidences minus one.
type sparse struct {
	ptr  []int     // row r spans idx[ptr[r]:ptr[r+1]]
	idx  []int32   // column of each entry
	conf []float64 // c − 1 = Alpha·w
}

func (s *sparse) rows() int { return len(s.ptr) - 1 }

// build turns interactions into the user-by-title and title-by-user
// matrices, summing duplicate pairs' weights (capped at 1).
func build(data []events.Interaction, alpha float64) (users, titles []string, byUser, byTitle sparse) {
	uix := map[string]int32{}
	tix := map[string]int32{}
	type cell struct{ u, t int32 }
	cells := make(map[cell]float64, len(data))
	for _, in := range data {
		if in.Weight <= 0 || math.IsNaN(in.Weight) || in.User == "" || in.Title == "" {
			continue
		}
		u, ok := uix[in.User]
		if !ok {
			u = int32(len(users))
			uix[in.User] = u
			users = append(users, in.User)
		}
		t, ok := tix[in.Title]
		if !ok {
			t = int32(len(titles))
			tix[in.Title] = t
			titles = append(titles, in.Title)
		}
		c := cell{u, t}
		cells[c] = min(cells[c]+in.Weight, 1)
	}
	byUser = sparse{ptr: make([]int, len(users)+1)}
	byTitle = sparse{ptr: make([]int, len(titles)+1)}
	for c := range cells {
		byUser.ptr[c.u+1]++
		byTitle.ptr[c.t+1]++
	}
	for i := range users {
		byUser.ptr[i+1] += byUser.ptr[i]
	}
	for i := range titles {
		byTitle.ptr[i+1] += byTitle.ptr[i]
	}
	n := len(cells)
	byUser.idx, byUser.conf = make([]int32, n), make([]float64, n)
	byTitle.idx, byTitle.conf = make([]int32, n), make([]float64, n)
	nextU := append([]int(nil), byUser.ptr[:len(users)]...)
	nextT := append([]int(nil), byTitle.ptr[:len(titles)]...)
	for c, w := range cells {
		byUser.idx[nextU[c.u]], byUser.conf[nextU[c.u]] = c.t, alpha*w
		nextU[c.u]++
		byTitle.idx[nextT[c.t]], byTitle.conf[nextT[c.t]] = c.u, alpha*w
		nextT[c.t]++
	}
	return users, titles, byUser, byTitle
}

// Train fits a model to data. rng seeds the initial factors (nil: a
// fixed seed). It stops early with ctx's error.
func Train(ctx context.Context, data []events.Interaction, cfg ALSConfig, rng *rand.Rand) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if rng == nil {
		rng = rand.New(rand.NewPCG(1, 2))
	}
	users, titles, byUser, byTitle := build(data, cfg.Alpha)
	if len(users) == 0 {
		return nil, ErrNoData
	}
	k := cfg.Factors
	X := mat.NewDense(len(users), k, nil)
	Y := mat.NewDense(len(titles), k, nil)
	scale := 0.1 / math.Sqrt(float64(k))
	for _, m := range []*mat.Dense{X, Y} {
		raw := m.RawMatrix().Data
		for i := range raw {
			raw[i] = rng.NormFloat64() * scale
		}
	}
	for range cfg.Iterations {
		if err := sweep(ctx, X, Y, &byUser, cfg); err != nil {
			return nil, err
		}
		if err := sweep(ctx, Y, X, &byTitle, cfg); err != nil {
			return nil, err
		}
	}
	// Keep float32 precision, which the factors do not need more than:
	// the model then encodes in half the bytes and decodes on another
	// node to the very same answers.
	for _, m := range []*mat.Dense{X, Y} {
		raw := m.RawMatrix().Data
		for i := range raw {
			raw[i] = float64(float32(raw[i]))
		}
	}
	return newModel(users, titles, X, Y), nil
}

// sweep solves every row of dst with the rows of fixed held constant.
func sweep(ctx context.Context, dst, fixed *mat.Dense, m *sparse, cfg ALSConfig) error {
	k := cfg.Factors
	// G = YᵀY + λI, once for all rows.
	var gram mat.Dense
	gram.Mul(fixed.T(), fixed)
	G := mat.NewSymDense(k, nil)
	for i := range k {
		for j := i; j < k; j++ {
			G.SetSym(i, j, gram.At(i, j))
		}
		G.SetSym(i, i, G.At(i, i)+cfg.Lambda)
	}
	const chunk = 256
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, cfg.Workers)
	for w := range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := newSolver(G, cfg)
			for {
				if err := ctx.Err(); err != nil {
					errs[w] = fmt.Errorf("recs: train: %w", err)
					return
				}
				lo := int(next.Add(chunk)) - chunk
				if lo >= m.rows() {
					return
				}
				for r := lo; r < min(lo+chunk, m.rows()); r++ {
					a, b := m.ptr[r], m.ptr[r+1]
					if err := s.solve(dst.RawRowView(r), fixed, m.idx[a:b], m.conf[a:b]); err != nil {
						errs[w] = err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// solver holds one worker's scratch space.
type solver struct {
	cfg       ALSConfig
	G         *mat.SymDense
	g         []float64 // G's raw rows, for the CG products
	r, p, ap  []float64
	a         *mat.SymDense
	chol      mat.Cholesky
	bv, xv    *mat.VecDense
	bRaw, xRw []float64
	z         []float64 // the scaled rows of one solve
}

func newSolver(G *mat.SymDense, cfg ALSConfig) *solver {
	k := cfg.Factors
	s := &solver{cfg: cfg, G: G, r: make([]float64, k), p: make([]float64, k), ap: make([]float64, k)}
	s.g = make([]float64, k*k)
	for i := range k {
		for j := range k {
			s.g[i*k+j] = G.At(i, j)
		}
	}
	if cfg.Solver == SolverCholesky {
		s.a = mat.NewSymDense(k, nil)
		s.bRaw, s.xRw = make([]float64, k), make([]float64, k)
		s.bv, s.xv = mat.NewVecDense(k, s.bRaw), mat.NewVecDense(k, s.xRw)
	}
	return s
}

// solve sets x to the minimiser of Σᵢ cᵢ(pᵢ − x·yᵢ)² + λ|x|² over all
// columns, where the listed columns have pᵢ = 1 and cᵢ = 1 + conf.
func (s *solver) solve(x []float64, Y *mat.Dense, cols []int32, conf []float64) error {
	if s.cfg.Solver == SolverCholesky {
		return s.cholesky(x, Y, cols, conf)
	}
	s.cg(x, Y, cols, conf)
	return nil
}

// mulA sets dst = A v with A = G + Σ confᵢ yᵢyᵢᵀ.
func (s *solver) mulA(dst, v []float64, Y *mat.Dense, cols []int32, conf []float64) {
	k := len(v)
	for i := range k {
		dst[i] = floats.Dot(s.g[i*k:(i+1)*k], v)
	}
	for j, c := range cols {
		y := Y.RawRowView(int(c))
		floats.AddScaled(dst, conf[j]*floats.Dot(y, v), y)
	}
}

func (s *solver) cg(x []float64, Y *mat.Dense, cols []int32, conf []float64) {
	k := len(x)
	r, p, ap := s.r, s.p, s.ap
	// r = b − A x with b = Σ (1 + confᵢ) yᵢ, in one pass over the
	// user's titles.
	for i := range k {
		r[i] = -floats.Dot(s.g[i*k:(i+1)*k], x)
	}
	for j, c := range cols {
		y := Y.RawRowView(int(c))
		floats.AddScaled(r, 1+conf[j]-conf[j]*floats.Dot(y, x), y)
	}
	copy(p, r)
	rs := floats.Dot(r, r)
	for range s.cfg.CGSteps {
		if rs < 1e-20 {
			return
		}
		s.mulA(ap, p, Y, cols, conf)
		pap := floats.Dot(p, ap)
		if pap <= 0 {
			return
		}
		alpha := rs / pap
		floats.AddScaled(x, alpha, p)
		floats.AddScaled(r, -alpha, ap)
		rsNew := floats.Dot(r, r)
		floats.AddScaledTo(p, r, rsNew/rs, p)
		rs = rsNew
	}
}

func (s *solver) cholesky(x []float64, Y *mat.Dense, cols []int32, conf []float64) error {
	if len(cols) == 0 {
		clear(x)
		return nil
	}
	k := len(x)
	// A = G + ZᵀZ with Z's rows √confᵢ·yᵢ: one BLAS syrk instead of a
	// rank-one update per title.
	if cap(s.z) < len(cols)*k {
		s.z = make([]float64, len(cols)*k)
	}
	z := s.z[:len(cols)*k]
	clear(s.bRaw)
	for j, c := range cols {
		y := Y.RawRowView(int(c))
		floats.ScaleTo(z[j*k:(j+1)*k], math.Sqrt(conf[j]), y)
		floats.AddScaled(s.bRaw, 1+conf[j], y)
	}
	s.a.SymRankK(s.G, 1, mat.NewDense(len(cols), k, z).T())
	if ok := s.chol.Factorize(s.a); !ok {
		return errors.New("recs: train: system not positive definite; raise Lambda")
	}
	if err := s.chol.SolveVecTo(s.xv, s.bv); err != nil {
		return fmt.Errorf("recs: train: solve: %w", err)
	}
	copy(x, s.xRw)
	return nil
}
