package api

import (
	"container/list"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"

	"github.com/fillcast/fillcast/controlplane/gateway"
	"github.com/prometheus/client_golang/prometheus"
)

// Fallback kinds, the values of the fallback label of
// fillcast_api_fallbacks_total.
const (
	fallbackRecsTrending   = "recs_trending"    // recommendations answered with trending titles
	fallbackSearchLastGood = "search_last_good" // search answered with the last good answer to the same query
	fallbackPlaybackParent = "playback_parent"  // no healthy appliance in the client's site: its parent site leads
	fallbackPlaybackOrigin = "playback_origin"  // no healthy appliance anywhere on the path: the origin leads
)

// fallbackCounter counts the answers fallbacks gave, by kind.
type fallbackCounter struct{ vec *prometheus.CounterVec }

func newFallbackCounter(reg prometheus.Registerer) (fallbackCounter, error) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fillcast_api_fallbacks_total",
		Help: "Answers given by a fallback instead of the failing or shed dependency, by kind.",
	}, []string{"fallback"})
	for _, k := range []string{fallbackRecsTrending, fallbackSearchLastGood, fallbackPlaybackParent, fallbackPlaybackOrigin} {
		vec.WithLabelValues(k)
	}
	if err := reg.Register(vec); err != nil {
		return fallbackCounter{}, err
	}
	return fallbackCounter{vec}, nil
}

func (c fallbackCounter) inc(kind string) { c.vec.WithLabelValues(kind).Inc() }

// lastGood keeps the last good answer of each recent search query, for
// the search routes' fallback: a viewer searching while the index is slow
// or its breaker open sees what the same search found a moment ago. It is
// a bounded LRU; answers are kept encoded.
type lastGood struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *lastGoodEntry, most recent first
	m     map[string]*list.Element
}

type lastGoodEntry struct {
	key  string
	body []byte
}

// lastGoodEntries bounds the cache: at ~2 KiB an answer, a few MiB.
const lastGoodEntries = 4096

func newLastGood(max int) *lastGood {
	return &lastGood{max: max, order: list.New(), m: map[string]*list.Element{}}
}

// put keeps body as the answer to key.
func (c *lastGood) put(key string, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[key]; e != nil {
		e.Value.(*lastGoodEntry).body = body
		c.order.MoveToFront(e)
		return
	}
	c.m[key] = c.order.PushFront(&lastGoodEntry{key, body})
	if c.order.Len() > c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.m, old.Value.(*lastGoodEntry).key)
	}
}

// get returns the answer kept for key.
func (c *lastGood) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[key]
	if e == nil {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*lastGoodEntry).body, true
}

// maxSearchKey bounds the queries kept: a longer one (a query padded
// with parameters) is answered but not kept, so the cache's memory stays
// bounded by its entries.
const maxSearchKey = 1024

// searchKey names a search request in the last-good cache: the route,
// whether the caller sees kids' titles only, and the normalised query.
func searchKey(r *http.Request) string {
	return r.Pattern + "\x00" + strconv.FormatBool(kidsOnly(r.Context())) + "\x00" + r.URL.Query().Encode()
}

// writeSearch answers a search result and keeps it as the query's last
// good answer.
func (a *API) writeSearch(w http.ResponseWriter, r *http.Request, res any) error {
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if key := searchKey(r); len(key) <= maxSearchKey {
		a.lastGood.put(key, b)
	}
	return writeJSONBytes(w, b)
}

// searchFallback answers the last good answer to the same query when
// search times out, fails, its bulkhead is full or its breaker is open
// (a request shed by the node's limit gets 503: answering it would spend
// what shedding saves). A bad query
// stays a 400, and a query never answered before keeps its error.
func (a *API) searchFallback(w http.ResponseWriter, r *http.Request, cause error) error {
	var ge *gateway.Error
	if errors.As(cause, &ge) && ge.Status < 500 {
		return cause
	}
	b, ok := a.lastGood.get(searchKey(r))
	if !ok {
		return cause
	}
	a.fallbacks.inc(fallbackSearchLastGood)
	w.Header().Set("X-Fillcast-Fallback", "last-good")
	return writeJSONBytes(w, b)
}

// writeJSONBytes answers 200 with an encoded JSON body.
func writeJSONBytes(w http.ResponseWriter, b []byte) error {
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(b)
	return err
}
