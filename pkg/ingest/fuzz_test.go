package ingest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/vantage-fleet/vantage/pkg/report/reporttest"
	"github.com/vantage-fleet/vantage/pkg/telemetry"
)

// FuzzIngestHTTPLogs feeds arbitrary bodies to OTLP/HTTP /v1/logs: no
// panic, and a refused request leaves the dedup window unchanged.
func FuzzIngestHTTPLogs(f *testing.F) {
	seed, _ := proto.Marshal(logsRequest(f, reporttest.Full()))
	f.Add(seed, false)
	f.Add([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"eventName":"vantage.journey.result","traceId":"0af7651916cd43dd8448eb211c80319c"}]}]}]}`), true)
	d, err := OpenDedup(f.TempDir(), time.Hour, 1_000_000, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { d.Close() })
	recv, err := New(Options{MaxRequestBytes: 1 << 20, Dedup: d, Sink: NewStore(1000), Telemetry: telemetry.NewRegistry()})
	if err != nil {
		f.Fatal(err)
	}
	h := recv.HTTPHandler()
	f.Fuzz(func(t *testing.T, body []byte, asJSON bool) {
		before := d.Len()
		req := httptest.NewRequest(http.MethodPost, "/v1/logs", bytes.NewReader(body))
		req.Header.Set("Content-Type", map[bool]string{false: "application/x-protobuf", true: "application/json"}[asJSON])
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK && d.Len() != before {
			t.Fatalf("HTTP %d but the dedup window changed", rec.Code)
		}
	})
}
