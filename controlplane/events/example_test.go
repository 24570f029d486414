package events_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/fillcast/fillcast/controlplane/events"
)

// An API handler decodes the body, appends it, and maps errors to
// statuses.
func ExampleLog_Append() {
	dir, _ := os.MkdirTemp("", "events-example-")
	defer os.RemoveAll(dir)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	l, err := events.Open(events.DefaultConfig(dir), slog.New(slog.DiscardHandler), func() time.Time { return now })
	if err != nil {
		panic(err)
	}
	defer l.Close()

	post := func(body string) {
		batch, err := l.DecodeBatch(strings.NewReader(body))
		if err == nil {
			err = l.Append(context.Background(), batch)
		}
		switch {
		case errors.Is(err, events.ErrTooLarge):
			fmt.Println("413", err)
		case errors.Is(err, events.ErrInvalid):
			fmt.Println("400", err)
		case err != nil:
			fmt.Println("500", err)
		default:
			fmt.Println("204")
		}
	}
	post(`[{"user":"ann","title":"t1","type":"progress","position_s":600,"duration_s":3000}]`)
	post(`[{"user":"ann","title":"t2","type":"play"},{"user":"ann","title":"t2","type":"pause"}]`)
	h := l.History("ann", 10)
	fmt.Printf("continue watching %s at %.0f%%\n", h.ContinueWatching[0].Title, 100*h.ContinueWatching[0].Progress)
	// Output:
	// 204
	// 400 events: event 1: field "type": "pause" is not one of play, progress, stop, complete
	// continue watching t1 at 20%
}
