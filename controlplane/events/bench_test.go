package events

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"
)

func benchBatch(n int) []Event {
	out := make([]Event, n)
	for i := range out {
		out[i] = Event{User: fmt.Sprintf("user-%d", i%50), Title: fmt.Sprintf("title-%d", i%200), Type: TypeProgress,
			PositionS: float64(i % 500), DurationS: 600, TS: t0.Add(-time.Duration(i) * time.Second)}
	}
	return out
}

func BenchmarkDecodeBatch(b *testing.B) {
	body, err := json.Marshal(benchBatch(100))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeBatch(bytes.NewReader(body), Limits{}, t0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, p := range []struct {
		name string
		sync SyncPolicy
	}{{"fsync-every-batch", SyncAlways}, {"fsync-every-second", SyncInterval}} {
		b.Run(p.name, func(b *testing.B) {
			cfg := DefaultConfig(b.TempDir())
			cfg.Sync = p.sync
			l, err := Open(cfg, slog.New(slog.DiscardHandler), func() time.Time { return t0 })
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			batch := benchBatch(100)
			b.ReportAllocs()
			for b.Loop() {
				if err := l.Append(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
		})
	}
}
