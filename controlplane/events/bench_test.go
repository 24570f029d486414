package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

func benchBatch(n int) []Event {
	out := make([]Event, n)
	for i := range out {
		out[i] = Event{ID: fmt.Sprint(i), User: fmt.Sprintf("user-%d", i%50), Title: fmt.Sprintf("title-%d", i%200), Type: TypeProgress,
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
		if _, _, err := DecodeBatch(bytes.NewReader(body), Limits{}, t0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRecord(b *testing.B) {
	batch := benchBatch(100)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRecord(buf[:0], batch)
		if _, err := DecodeRecord(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
}
