// Package origin serves packaged titles from a directory over HTTP: the
// embedded default origin that appliances fill from and players fall back
// to. GET and HEAD follow the same URL forms as an appliance:
// /c/{token}/{title}/{path} for players, /f/{title}/{path} for appliances
// filling their caches with their credential (Authorization: Bearer
// fca...), and /{title}/{path} for tools with the admin token, with
// ranges, strong ETags and conditional requests. Without keys every GET is
// served, as a lab origin should be; with keys (public ones suffice) a GET
// needs a token, a credential or the admin token, and any refusal is a 403
// whose body says only "forbidden". A token's limits (auth.Limits) are
// enforced as on an appliance: files they do not allow are refused, and
// the master playlist and MPD are served without the renditions above the
// token's height (package manifestfilter), the heights read from the
// title's own master playlist. With a steering URL (Config.SteeringURL)
// the master playlist and MPD served to players advertise the control
// plane's Content Steering manifest. Dot-files, the temporary files of
// uploads in flight among them, are never served. PUT with the admin token writes
// a file atomically, which is how the control plane publishes a
// transcoded title; DELETE of a title with the admin token removes it and
// refuses the tokens issued for it before (takedown.go).
package origin

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/manifestfilter"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Deps are what a Server works with besides its Config.
type Deps struct {
	// AdminToken authorises PUT and any GET. Empty disables PUT.
	AdminToken string
	// Keys, when set, makes every GET/HEAD of content carry a valid path
	// token, an appliance credential or the admin token: give the public
	// keys (a private set works, with a warning). Nil serves content to
	// anyone.
	Keys *auth.Keys
	// Log receives errors and stored files; nil discards them.
	Log *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Server is an http.Handler for the origin.
type Server struct {
	cfg       Config
	d         Deps
	root      *os.Root
	log       *slog.Logger
	verify    *auth.Verifier // nil without keys
	requests  *prometheus.CounterVec
	bytes     prometheus.Counter
	forbidden *prometheus.CounterVec
	metrics   http.Handler
	heights   heights               // titles' rendition heights, for restricted tokens
	variants  *manifestfilter.Cache // manifests made for players: filtered, steered
	takedowns takedowns             // refused tokens of deleted titles (takedown.go)
}

// New opens cfg.Root (creating it if missing) and returns a Server.
func New(cfg Config, d Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	var verify *auth.Verifier
	if d.Keys != nil {
		var err error
		if verify, err = auth.NewVerifier(cfg.Tokens, d.Keys); err != nil {
			return nil, err
		}
		if d.Keys.CanSign() {
			d.Log.Warn("origin: the key file holds private keys; the origin only verifies: give it the public file (fillcast keys public)")
		}
	}
	if err := os.MkdirAll(cfg.Root, 0o755); err != nil {
		return nil, fmt.Errorf("origin: create root: %w", err)
	}
	root, err := os.OpenRoot(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("origin: open root: %w", err)
	}
	reg := prometheus.NewRegistry()
	s := &Server{
		cfg:      cfg,
		d:        d,
		root:     root,
		log:      d.Log,
		verify:   verify,
		heights:  heights{m: map[string]titleHeights{}},
		variants: manifestfilter.NewCache(cfg.VariantBytes),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fillcast_origin_requests_total",
			Help: "Requests by method and status code.",
		}, []string{"method", "code"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fillcast_origin_sent_bytes_total",
			Help: "Body bytes sent.",
		}),
		forbidden: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fillcast_origin_forbidden_total",
			Help: "GETs answered 403, by reason (auth.RejectReason, missing_pass, or auth.LimitReason: rendition, download).",
		}, []string{"reason"}),
	}
	if err := s.loadTakedowns(); err != nil {
		root.Close()
		return nil, err
	}
	reg.MustRegister(s.requests, s.bytes, s.forbidden)
	s.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return s, nil
}

// Close releases the root directory.
func (s *Server) Close() error { return s.root.Close() }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
		return
	case "/metrics":
		s.metrics.ServeHTTP(w, r)
		return
	}
	cw := &countingWriter{ResponseWriter: w, code: http.StatusOK}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.serveGet(cw, r)
	case http.MethodPut:
		s.servePut(cw, r)
	case http.MethodDelete:
		s.serveDelete(cw, r)
	case http.MethodOptions:
		setCORS(cw.Header())
		cw.WriteHeader(http.StatusNoContent)
	default:
		cw.Header().Set("Allow", "GET, HEAD, PUT, DELETE, OPTIONS")
		httpError(cw, http.StatusMethodNotAllowed, "method not allowed")
	}
	s.requests.WithLabelValues(r.Method, strconv.Itoa(cw.code)).Inc()
	s.bytes.Add(float64(cw.n))
}

// parsePath splits a request path into token (empty for the fill and bare
// forms), title and object path. Titles named "c" and "f" cannot be
// reached in the bare form, which tools use for the others.
func parsePath(p string) (token, title, object string, err error) {
	p = strings.TrimPrefix(p, "/")
	if rest, ok := strings.CutPrefix(p, "c/"); ok {
		token, p, ok = strings.Cut(rest, "/")
		if !ok || token == "" {
			return "", "", "", errors.New("origin: want /c/{token}/{title}/{path}")
		}
	} else {
		p = strings.TrimPrefix(p, "f/")
	}
	title, object, ok := strings.Cut(p, "/")
	if !ok {
		return "", "", "", errors.New("origin: want /{title}/{path}")
	}
	if err := fillcast.ValidateTitleID(title); err != nil {
		return "", "", "", err
	}
	if err := fillcast.ValidateObjectPath(object); err != nil {
		return "", "", "", err
	}
	if object[0] == '.' || strings.Contains(object, "/.") {
		return "", "", "", errHidden
	}
	return token, title, object, nil
}

// errHidden is a path with a segment starting with '.': the temporary
// files of uploads in flight are named so (writeAtomic), and nothing
// under a dot is content. GET answers 404, PUT 400.
var errHidden = errors.New("origin: no file name may start with '.'")

func (s *Server) serveGet(w *countingWriter, r *http.Request) {
	setCORS(w.Header())
	token, title, object, err := parsePath(r.URL.Path)
	switch {
	case errors.Is(err, errHidden):
		httpError(w, http.StatusNotFound, "not found")
		return
	case err != nil:
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	limits, ok := s.authorised(w, r, token, title)
	if !ok || !s.allowed(w, r, limits, title, object) {
		return
	}
	f, err := s.root.Open(title + "/" + object)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			httpError(w, http.StatusNotFound, "not found")
			return
		}
		s.log.Error("origin: open", "path", title+"/"+object, "err", err)
		httpError(w, http.StatusInternalServerError, "cannot open file")
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		httpError(w, http.StatusNotFound, "not found")
		return
	}
	if manifestfilter.Applies(object) && (limits.MaxHeight > 0 || token != "" && s.cfg.SteeringURL != "") {
		s.serveVariant(w, r, f, fi, limits.MaxHeight, token, title, object)
		return
	}
	h := w.Header()
	h.Set("Content-Type", fillcast.ContentType(object))
	if d := fillcast.Disposition(title, object); d != "" {
		h.Set("Content-Disposition", d)
	}
	h.Set("Cache-Control", fillcast.CacheControl(object))
	h.Set("ETag", ETag(fi.Size(), fi.ModTime()))
	http.ServeContent(w, r, object, fi.ModTime(), f)
}

// ETag returns the strong entity tag the origin gives a file of size bytes
// last modified at mtime. Files are only ever replaced whole (PUT renames
// a new file into place), so size and modification time identify a
// version, as they do for nginx.
func ETag(size int64, mtime time.Time) string {
	return `"` + strconv.FormatInt(mtime.UnixNano(), 16) + "-" + strconv.FormatInt(size, 16) + `"`
}

func (s *Server) servePut(w *countingWriter, r *http.Request) {
	if !auth.BearerOK(r.Header.Get("Authorization"), s.d.AdminToken) {
		httpError(w, http.StatusUnauthorized, "PUT needs Authorization: Bearer <admin token>")
		return
	}
	token, title, object, err := parsePath(r.URL.Path)
	if err == nil && (token != "" || strings.HasPrefix(r.URL.Path, "/f/")) {
		err = errors.New("origin: PUT takes /{title}/{path}")
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if r.ContentLength > s.cfg.MaxUploadBytes {
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", s.cfg.MaxUploadBytes))
		return
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes)
	n, err := s.writeAtomic(title+"/"+object, body, r.ContentLength)
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			httpError(w, http.StatusRequestEntityTooLarge, err.Error())
		case errors.Is(err, errShortBody):
			httpError(w, http.StatusBadRequest, err.Error())
		default:
			s.log.Error("origin: put", "path", title+"/"+object, "err", err)
			httpError(w, http.StatusInternalServerError, "cannot store file")
		}
		return
	}
	s.log.Debug("origin: stored", "path", title+"/"+object, "bytes", n)
	w.WriteHeader(http.StatusCreated)
}

var errShortBody = errors.New("origin: body shorter than Content-Length")

// writeAtomic writes body to name through a temporary file in the same
// directory, fsyncs it and renames it into place, so a reader sees either
// the old file or the complete new one. want is the declared length, or -1.
func (s *Server) writeAtomic(name string, body io.Reader, want int64) (int64, error) {
	dir := path.Dir(name)
	if err := s.root.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("origin: mkdir %s: %w", dir, err)
	}
	tmp := fmt.Sprintf("%s/.tmp-%s-%d", dir, path.Base(name), s.d.Now().UnixNano())
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, fmt.Errorf("origin: create %s: %w", tmp, err)
	}
	n, err := io.Copy(f, body)
	if err == nil && want >= 0 && n != want {
		err = fmt.Errorf("%w: got %d of %d bytes", errShortBody, n, want)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.root.Rename(tmp, name)
	}
	if err != nil {
		s.root.Remove(tmp)
		return n, err
	}
	if d, err := s.root.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return n, nil
}

func setCORS(h http.Header) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Range, If-None-Match, If-Modified-Since")
	h.Set("Access-Control-Expose-Headers", "Content-Length, Content-Range, ETag")
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}

// countingWriter records the status code and body bytes for metrics.
type countingWriter struct {
	http.ResponseWriter
	code int
	n    int64
}

func (c *countingWriter) WriteHeader(code int) {
	c.code = code
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

// ReadFrom lets io.Copy inside http.ServeContent keep using sendfile.
func (c *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	n, err := io.Copy(c.ResponseWriter, r)
	c.n += n
	return n, err
}
