package alert

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/pkg/verdict"
)

// rssWorkerEnv, when set in the environment of this test binary, makes it
// the aggregator-state worker instead of running tests (see runRSSWorker).
const rssWorkerEnv = "VANTAGE_BENCH_AGGREGATOR_RSS_WORKER"

// rssProfileEnv, when set to a directory, makes the worker write
// cpu.pprof (the whole build) and heap.pprof (the live state) there.
const rssProfileEnv = "VANTAGE_BENCH_AGGREGATOR_RSS_PROFILE"

// The state the benchmark builds.
const (
	rssJourneys = 10_000
	rssRegions  = 20
	// rssGoalMiB is the aggregator's memory limit in the shipped
	// Kubernetes manifest (deploy/kubernetes/aggregator.yaml): the state of
	// a large fleet must fit the deployment we tell users to run.
	rssGoalMiB = 512
)

// BenchmarkAggregatorRSS_10kJourneys20Regions builds the verdict state of
// 10,000 journeys × 20 regions in an alert.Engine (verdict tracker, alert
// store in bbolt, state saved as the aggregator saves it) and reports the
// peak resident memory (VmHWM) of the process that holds it, in MiB. The
// state is built in a re-executed copy of this test binary so that the
// benchmark harness and other tests do not pollute the figure. Every cell
// receives a full verdict history (window + trip + clear region-slots, the
// most a cell keeps), so this is the steady state of a long-running
// aggregator, not a warm-up. The dedup window of pkg/ingest is not part of
// it. Goal: ≤ 512 MiB, the aggregator's limit in the shipped manifests.
func BenchmarkAggregatorRSS_10kJourneys20Regions(b *testing.B) {
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), rssWorkerEnv+"="+b.TempDir())
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("aggregator worker: %v\n%s", err, out)
		}
		var hwm, rss, heap, db float64
		var accepted int
		if _, err := fmt.Sscanf(string(out), "hwm_mib=%f rss_mib=%f heap_mib=%f db_mib=%f accepted=%d", &hwm, &rss, &heap, &db, &accepted); err != nil {
			b.Fatalf("aggregator worker said %q: %v", out, err)
		}
		b.Logf("peak RSS %.1f MiB, RSS after GC %.1f MiB, live heap %.1f MiB, alerts.db %.1f MiB, %d results accepted", hwm, rss, heap, db, accepted)
		b.ReportMetric(heap, "heap-MiB")
		b.ReportMetric(hwm, "value")
		b.ReportMetric(rssGoalMiB, "goal")
	}
}

// runRSSWorker is the worker's main: it opens an Engine in dir, feeds it
// full histories for every (journey, region), evaluating and saving as the
// aggregator does, and prints its peak and current RSS and live heap.
func runRSSWorker(dir string) int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "aggregator worker:", err); return 1 }
	profDir := os.Getenv(rssProfileEnv)
	if profDir != "" {
		f, err := os.Create(filepath.Join(profDir, "cpu.pprof"))
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(err)
		}
	}
	const iv = 30 * time.Second
	base := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: base}
	e, err := Open(context.Background(), Options{DataDir: dir, Verdict: verdict.DefaultConfig(), Sinks: []Sink{},
		Now: clk.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return fail(err)
	}
	defer e.Close()
	regions := make([]string, rssRegions)
	probers := map[string][]string{}
	for r := range regions {
		regions[r] = fmt.Sprintf("region-%02d", r)
		probers[regions[r]] = []string{regions[r] + "-a", regions[r] + "-b"}
	}
	e.SetMembership(verdict.Membership{Known: true, Probers: probers})
	journeys := make([]string, rssJourneys)
	for j := range journeys {
		journeys[j] = fmt.Sprintf("journey-%05d", j)
	}
	cfg := verdict.DefaultConfig()
	slots := cfg.Window + cfg.FailuresToTrip + cfg.SuccessesToClear
	// One ingest batch is what one OTLP request of a busy fleet carries.
	const batch = 5000
	accepted := 0
	buf := make([]report.Result, 0, batch)
	flush := func() error {
		for i, err := range e.AcceptBatch(buf) {
			if err != nil {
				return fmt.Errorf("result %s: %w", buf[i].ID, err)
			}
		}
		accepted += len(buf)
		buf = buf[:0]
		return nil
	}
	for k := range slots {
		slot := base.Add(time.Duration(k) * iv)
		clk.Set(slot.Add(2 * time.Second))
		for j, name := range journeys {
			for r, region := range regions {
				// One failure in 50 region-slots, never two in a row in a
				// cell: samples and last failures are kept, but nothing trips
				// (an open incident would add alerts, not state).
				st := report.StatusPass
				if (j+r+k)%50 == 0 {
					st = report.StatusFail
				}
				buf = append(buf, rssResult(name, region, region+"-a", slot, iv, st))
				if len(buf) == batch {
					if err := flush(); err != nil {
						return fail(err)
					}
				}
			}
		}
		if err := flush(); err != nil {
			return fail(err)
		}
		e.Tick(clk.Now()) // persists the state, as the aggregator's ticker does
	}
	if open := len(e.Alerts()); open != 0 {
		return fail(fmt.Errorf("%d alerts opened; the workload must hold state, not incidents", open))
	}
	if n := len(e.Snapshot().Journeys); n != rssJourneys {
		return fail(fmt.Errorf("state holds %d journeys, want %d", n, rssJourneys))
	}
	if profDir != "" {
		pprof.StopCPUProfile()
		f, err := os.Create(filepath.Join(profDir, "heap.pprof"))
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			return fail(err)
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	hwm, rss, err := procStatusMiB()
	if err != nil {
		return fail(err)
	}
	var dbMiB float64
	if fi, err := os.Stat(filepath.Join(dir, "alerts.db")); err == nil {
		dbMiB = float64(fi.Size()) / (1 << 20)
	}
	fmt.Printf("hwm_mib=%.1f rss_mib=%.1f heap_mib=%.1f db_mib=%.1f accepted=%d\n", hwm, rss, float64(ms.HeapInuse)/(1<<20), dbMiB, accepted)
	runtime.KeepAlive(e)
	return 0
}

// rssResult is one agent's Result as the aggregator receives it: the
// fields a real HTTP journey carries, a failing step and a redacted error
// when it failed.
func rssResult(j, region, agent string, slot time.Time, iv time.Duration, st report.Status) report.Result {
	r := report.Result{Journey: j, Kind: "http", Region: region, Agent: agent, Slot: slot, Trigger: report.TriggerSchedule,
		Start: slot.Add(150 * time.Millisecond), Duration: 420 * time.Millisecond, Status: st, Interval: iv,
		Components: []string{"https-edge"}, Runbook: "https://runbooks.example/" + j}
	r.ID = report.ResultID(j, region, agent, slot, r.Trigger)
	r.TraceID = r.ID[:32]
	r.Steps = []report.Step{{Name: "GET /api/2.0/repositories", Status: report.StatusPass}}
	if st == report.StatusFail {
		r.ErrorType = report.ErrHTTP5xx
		r.Error = "GET https://api.example/2.0/repositories: 503 Service Unavailable"
		r.Steps[0].Status = report.StatusFail
	}
	return r
}

// procStatusMiB reads this process's peak (VmHWM) and current (VmRSS)
// resident memory.
func procStatusMiB() (hwm, rss float64, err error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		for _, f := range []struct {
			prefix string
			dst    *float64
		}{{"VmHWM:", &hwm}, {"VmRSS:", &rss}} {
			if rest, ok := strings.CutPrefix(s.Text(), f.prefix); ok {
				kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
				if err != nil {
					return 0, 0, fmt.Errorf("%s %q: %w", f.prefix, rest, err)
				}
				*f.dst = kb / 1024
			}
		}
	}
	if hwm == 0 || rss == 0 {
		return 0, 0, fmt.Errorf("no VmHWM/VmRSS in /proc/self/status")
	}
	return hwm, rss, s.Err()
}
