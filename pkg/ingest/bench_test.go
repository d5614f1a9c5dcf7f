package ingest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/pkg/report/reporttest"
	"github.com/vantage-fleet/vantage/pkg/telemetry"
)

// benchBatches returns n OTLP logs requests of size results each, every
// Result distinct, shaped like reporttest.Full (steps with attributes).
func benchBatches(b *testing.B, tag string, n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		req := &collogspb.ExportLogsServiceRequest{}
		for j := 0; j < size; j++ {
			r := reporttest.Full()
			r.Journey = fmt.Sprintf("%s-%d-%d", tag, i, j)
			r.ID = report.ResultID(r.Journey, r.Region, r.Agent, r.Slot, r.Trigger)
			rl, err := report.EncodeOTLP(r)
			if err != nil {
				b.Fatal(err)
			}
			req.ResourceLogs = append(req.ResourceLogs, rl)
		}
		var err error
		if out[i], err = proto.Marshal(req); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// BenchmarkIngest_ResultsPerSecond compares the aggregator's whole OTLP/HTTP
// ingest path (decode, validate, dedup committed to bbolt with fsync, sink)
// with merely protobuf-decoding the same batches (256 Results each, four
// concurrent senders for both), in the same run. Goal: ratio ≥ 0.5.
func BenchmarkIngest_ResultsPerSecond(b *testing.B) {
	const batches, size, reps, senders = 20, 256, 5, 4
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		dedup, err := OpenDedup(b.TempDir(), time.Hour, 1_000_000, nil)
		if err != nil {
			b.Fatal(err)
		}
		recv, err := New(Options{MaxRequestBytes: 64 << 20, Dedup: dedup, Sink: NewStore(1 << 20), Telemetry: telemetry.NewRegistry()})
		if err != nil {
			b.Fatal(err)
		}
		h := recv.HTTPHandler()
		var sets [reps][][]byte
		for r := range sets {
			sets[r] = benchBatches(b, fmt.Sprint("rep", n, "-", r), batches, size)
		}
		runtime.GC()
		b.StartTimer()

		// Baseline (protobuf decoding only) and value (the full ingest
		// path, every Result new) alternate rep by rep, so that both see
		// the same machine load, and run with the same number of
		// concurrent senders, as agents send concurrently.
		var decode, ingest time.Duration
		for r := 0; r < reps; r++ {
			decode += concurrently(senders, sets[r], func(body []byte) {
				var m collogspb.ExportLogsServiceRequest
				if err := proto.Unmarshal(body, &m); err != nil {
					panic(err)
				}
			})
			ingest += concurrently(senders, sets[r], func(body []byte) {
				req := httptest.NewRequest(http.MethodPost, "/v1/logs", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/x-protobuf")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					panic(fmt.Sprintf("HTTP %d: %s", rec.Code, rec.Body))
				}
			})
		}
		b.StopTimer()
		if got := dedup.Len(); got != reps*batches*size {
			b.Fatalf("dedup holds %d IDs, want %d", got, reps*batches*size)
		}
		dedup.Close()
		total := float64(reps * batches * size)
		value, base := total/ingest.Seconds(), total/decode.Seconds()
		b.ReportMetric(value, "value")
		b.ReportMetric(base, "baseline")
		b.ReportMetric(value/base, "ratio")
		b.ReportMetric(0.5, "goal")
		b.StartTimer()
	}
}

// concurrently runs f over bodies with n goroutines and returns the time taken.
func concurrently(n int, bodies [][]byte, f func([]byte)) time.Duration {
	next := make(chan []byte, len(bodies))
	for _, b := range bodies {
		next <- b
	}
	close(next)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range next {
				f(b)
			}
		}()
	}
	wg.Wait()
	return time.Since(t0)
}

// BenchmarkDedup_BytesPerID measures the dedup window's memory per ID.
func BenchmarkDedup_BytesPerID(b *testing.B) {
	const n = 50000
	for i := 0; i < b.N; i++ {
		d, err := OpenDedup(b.TempDir(), time.Hour, 1_000_000, nil)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		// The IDs are made after the first reading: the window keeps them.
		rs := make([]report.Result, 1000)
		for j := 0; j < n; j += len(rs) {
			for k := range rs {
				rs[k].ID = report.ResultID(fmt.Sprint("j", j+k), "r", "a", time.Unix(60, 0), report.TriggerSchedule)
			}
			if _, err := d.Admit(rs); err != nil {
				b.Fatal(err)
			}
		}
		rs = nil
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n, "value")
		b.ReportMetric(200, "goal") // the README documents about 130
		runtime.KeepAlive(d)
		d.Close()
	}
}

// BenchmarkAgent_SpoolAndExportMicrosPerResult is the agent's cost per
// Result: Put (encode, fsync'd spool write, trace and metrics) and its
// export to a real aggregator over OTLP/gRPC until acknowledged.
func BenchmarkAgent_SpoolAndExportMicrosPerResult(b *testing.B) {
	const n = 300
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		agg := &aggregator{dir: b.TempDir(), reg: telemetry.NewRegistry(), store: NewStore(1 << 20)}
		agg.start(b, "", "")
		ag, err := newAgent(b.TempDir(), exportConfig(agg.grpcAddr, "grpc"))
		if err != nil {
			b.Fatal(err)
		}
		rs := make([]report.Result, n)
		for j := range rs {
			rs[j] = reporttest.Full()
			rs[j].Journey = fmt.Sprint("bench-", i, "-", j)
			rs[j].ID = report.ResultID(rs[j].Journey, rs[j].Region, rs[j].Agent, rs[j].Slot, rs[j].Trigger)
		}
		b.StartTimer()
		t0 := time.Now()
		for _, r := range rs {
			if err := ag.exp.Put(context.Background(), r); err != nil {
				b.Fatal(err)
			}
		}
		for agg.store.Accepted() < n || ag.exp.Stats().Entries > 0 {
			time.Sleep(time.Millisecond)
		}
		el := time.Since(t0)
		b.StopTimer()
		ag.close()
		agg.stop()
		b.ReportMetric(float64(el.Microseconds())/n, "value")
		b.StartTimer()
	}
}
