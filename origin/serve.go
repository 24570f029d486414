package origin

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/fillcast/fillcast/internal/httpserve"
)

// Serve serves h (a Server, or a handler wrapping one) on ln with
// conservative timeouts until ctx is done, then shuts down gracefully,
// letting in-flight responses finish for up to 30 s.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	return httpserve.Serve(ctx, hs, ln, 30*time.Second)
}
