package http

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
)

// BenchmarkHTTPJourney_VsBareRequest runs one single-step HTTP journey
// (through the Runner: deadline, trace, assertions, Result, redaction)
// beside a bare net/http GET of the same URL. Both open a fresh connection
// each time, as the journey does by design, so the ratio of the medians
// (µs per run) is the journey's own overhead. They alternate (reps times each), within one benchmark run.
func BenchmarkHTTPJourney_VsBareRequest(b *testing.B) {
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"state":"ok","items":[1,2,3]}`)
	}))
	defer srv.Close()
	c, err := config.LoadBytes("b.toml", []byte(journeyTOML("5s", "[[journey.http.step]]\nurl = \""+srv.URL+"/ok\"\nexpect_status = [200]\n")), nil)
	if err != nil {
		b.Fatal(err)
	}
	red := report.NewRedactor()
	j, err := New(&c.Journey[0], probes.Env{Redact: red})
	if err != nil {
		b.Fatal(err)
	}
	runner := &probes.Runner{Agent: "b", Region: "eu", Redact: red, Log: quietLog()}
	spec := probes.Spec{Journey: &c.Journey[0], Slot: time.Unix(100, 0), Trigger: report.TriggerSchedule}
	bare := func() {
		tr := &nethttp.Transport{}
		defer tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := nethttp.NewRequestWithContext(ctx, nethttp.MethodGet, srv.URL+"/ok", nil)
		resp, err := (&nethttp.Client{Transport: tr}).Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.Status)
		}
	}
	const reps = 1000
	// Warm both paths up once.
	bare()
	runner.Execute(context.Background(), j, spec)
	var tJourney, tBare []time.Duration
	for i := 0; i < b.N; i++ {
		for k := 0; k < reps; k++ {
			// Alternate which goes first, so neither always follows the other.
			if k%2 == 0 {
				t0 := time.Now()
				bare()
				tBare = append(tBare, time.Since(t0))
			}
			t0 := time.Now()
			res := runner.Execute(context.Background(), j, spec)
			tJourney = append(tJourney, time.Since(t0))
			if res.Status != report.StatusPass {
				b.Fatalf("journey: %s %s", res.Status, res.Error)
			}
			if k%2 == 1 {
				t0 := time.Now()
				bare()
				tBare = append(tBare, time.Since(t0))
			}
		}
	}
	// Medians, in µs: the machine is shared, and a mean follows whichever
	// side a stray pause happened to hit.
	v, base := medianMicros(tJourney), medianMicros(tBare)
	b.ReportMetric(v, "value")
	b.ReportMetric(base, "baseline")
	b.ReportMetric(v/base, "ratio")
	b.ReportMetric(1.05, "goal")
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func medianMicros(ds []time.Duration) float64 {
	slices.Sort(ds)
	return float64(ds[len(ds)/2]) / float64(time.Microsecond)
}
