package alert

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/pkg/verdict"
)

// canary is a secret that must never leave the aggregator.
const canary = "canary-s3cr3t-7f1e9a"

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// result builds a Result of journey j for slot, with the canary in its error.
func result(j, region, agent string, slot time.Time, interval time.Duration, trig report.Trigger, st report.Status) report.Result {
	r := report.Result{Journey: j, Kind: "git", Region: region, Agent: agent, Slot: slot, Trigger: trig, Status: st,
		Interval: interval, Components: []string{"https-edge"}, Runbook: "https://runbooks.example/" + j,
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"}
	r.ID = report.ResultID(j, region, agent, slot, trig)
	if st == report.StatusFail {
		r.ErrorType = report.ErrHTTP5xx
		r.Error = "clone https://git.example/repo?token=" + canary + ": 502 Bad Gateway"
		r.Steps = []report.Step{{Name: "ls-remote", Status: report.StatusPass}, {Name: "clone", Status: report.StatusFail}}
	}
	return r
}

// recorder is a local HTTP server recording every request body.
type recorder struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []string
	paths  []string
	status int
	hang   chan struct{}
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{status: http.StatusAccepted}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		r.mu.Lock()
		st, hang := r.status, r.hang
		r.bodies = append(r.bodies, string(b))
		r.paths = append(r.paths, req.URL.Path+" "+req.Header.Get("Authorization"))
		r.mu.Unlock()
		if hang != nil {
			select {
			case <-hang:
			case <-req.Context().Done():
			}
			return
		}
		w.WriteHeader(st)
		io.WriteString(w, `{"status":"success"}`)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) setStatus(s int) { r.mu.Lock(); r.status = s; r.mu.Unlock() }

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bodies...)
}

// okBodies returns bodies received while the server answered 2xx… all of
// them: the test sets the status before the interesting phase.
func (r *recorder) count(sub string) int {
	n := 0
	for _, b := range r.all() {
		if strings.Contains(b, sub) {
			n++
		}
	}
	return n
}

// waitFor polls cond for up to 5 s (delivery is asynchronous).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return v
}

// openEngine opens an engine over dir with the given sinks and clock.
func openEngine(t *testing.T, dir string, clk *clock, sinks ...Sink) *Engine {
	t.Helper()
	e, err := Open(context.Background(), Options{DataDir: dir, Sinks: sinks, Now: clk.Now, RetryBase: 5 * time.Millisecond,
		Redactor: report.NewRedactor(canary), Verdict: verdict.DefaultConfig()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// failRegion feeds a scheduled failure and a confirming failure of journey
// j in region (two agents) for slot, which trips the region.
func failRegion(t *testing.T, e *Engine, j, region string, slot time.Time, interval time.Duration) {
	t.Helper()
	for _, r := range []report.Result{
		result(j, region, region+"-1", slot, interval, report.TriggerSchedule, report.StatusFail),
		result(j, region, region+"-2", slot, interval, report.TriggerConfirm, report.StatusFail),
	} {
		if err := e.Accept(r); err != nil {
			t.Fatal(err)
		}
	}
}

func passRegion(t *testing.T, e *Engine, j, region string, slot time.Time, interval time.Duration) {
	t.Helper()
	if err := e.Accept(result(j, region, region+"-1", slot, interval, report.TriggerSchedule, report.StatusPass)); err != nil {
		t.Fatal(err)
	}
}

func (a Alert) clone() Alert {
	b, _ := json.Marshal(a)
	var c Alert
	_ = json.Unmarshal(b, &c)
	return c
}
