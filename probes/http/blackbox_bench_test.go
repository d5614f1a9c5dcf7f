package http

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/lab/labtest"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
)

// Fixed sizes of the blackbox comparison: -benchtime is 1x, so the
// repetition lives here. Rounds alternate the two sides so that a noisy
// neighbour on the shared machine hits both alike.
const (
	bbConcurrency = 8
	bbProbes      = 800 // per side per round
	bbRounds      = 3
	bbWarmup      = 50
)

// workerEnv, when set in the environment of this test binary, makes it a
// Vantage probing worker instead of running tests (see runHTTPWorker).
const workerEnv = "VANTAGE_BENCH_HTTP_WORKER"

// BenchmarkHTTPJourneysPerCore_VsBlackbox compares CPU cost per probe of
// an HTTP journey and of prometheus-blackbox-exporter's http_2xx module,
// both probing the same loopback target at the same concurrency, each in
// its own process so that each figure is that process's CPU time only
// (utime+stime; the target server and the load driver live in this
// process and count for neither):
//   - blackbox: the exporter serves /probe?target=…&module=http_2xx (its
//     figure includes serving that request and rendering the metrics);
//   - Vantage: this test binary re-executed as a worker runs the journey
//     through probes.Runner and encodes every Result as JSON (the work the
//     agent does before handing it to the spool).
//
// Both open a fresh connection per probe. value is Vantage journeys per
// CPU-second, baseline is blackbox probes per CPU-second; goal ratio ≥ 2
// (DESIGN.md).
func BenchmarkHTTPJourneysPerCore_VsBlackbox(b *testing.B) {
	bin := labtest.NeedBinary(b, "prometheus-blackbox-exporter", "apt-get install -y prometheus-blackbox-exporter")
	target := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"state":"ok","items":[1,2,3]}`)
	}))
	defer target.Close()
	targetURL := target.URL + "/ok"
	exporter := startBlackbox(b, bin)

	var vRuns, bRuns int
	var vCPU, bCPU time.Duration
	for i := 0; i < b.N; i++ {
		for round := 0; round < bbRounds; round++ {
			n, cpu := blackboxRound(b, exporter, targetURL)
			bRuns, bCPU = bRuns+n, bCPU+cpu
			n, cpu = vantageRound(b, targetURL)
			vRuns, vCPU = vRuns+n, vCPU+cpu
		}
	}
	v := float64(vRuns) / vCPU.Seconds()
	base := float64(bRuns) / bCPU.Seconds()
	b.ReportMetric(v, "value")
	b.ReportMetric(base, "baseline")
	b.ReportMetric(v/base, "ratio")
	b.ReportMetric(2, "goal")
}

// blackboxExporter is a running exporter.
type blackboxExporter struct {
	cmd  *exec.Cmd
	base string // http://127.0.0.1:port
}

// startBlackbox runs the exporter on a loopback port with one http_2xx
// module and waits until it answers.
func startBlackbox(b *testing.B, bin string) *blackboxExporter {
	dir := b.TempDir()
	cfg := filepath.Join(dir, "blackbox.yml")
	// IPv4 only, like the target; the module otherwise uses the defaults
	// (valid status codes 2xx, no keep-alive between probes).
	if err := os.WriteFile(cfg, []byte("modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n      ip_protocol_fallback: false\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "--config.file="+cfg, "--web.listen-address="+addr, "--log.level=error")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	e := &blackboxExporter{cmd: cmd, base: "http://" + addr}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := nethttp.Get(e.base + "/-/healthy")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return e
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("blackbox exporter did not become healthy on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// blackboxRound drives bbProbes probes at bbConcurrency through the
// exporter and returns how many succeeded and the exporter's CPU time.
func blackboxRound(b *testing.B, e *blackboxExporter, targetURL string) (int, time.Duration) {
	client := &nethttp.Client{Timeout: 10 * time.Second, Transport: &nethttp.Transport{MaxIdleConnsPerHost: bbConcurrency}}
	defer client.CloseIdleConnections()
	probeURL := e.base + "/probe?module=http_2xx&target=" + url.QueryEscape(targetURL)
	probe := func() error {
		resp, err := client.Get(probeURL)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return err
		}
		if !strings.Contains(string(body), "\nprobe_success 1\n") {
			return fmt.Errorf("probe failed: %s", body)
		}
		return nil
	}
	for k := 0; k < bbWarmup; k++ {
		if err := probe(); err != nil {
			b.Fatalf("blackbox warm-up: %v", err)
		}
	}
	before := procCPU(b, e.cmd.Process.Pid)
	if err := concurrently(bbProbes, bbConcurrency, probe); err != nil {
		b.Fatalf("blackbox: %v", err)
	}
	return bbProbes, procCPU(b, e.cmd.Process.Pid) - before
}

// vantageRound re-executes this test binary as a worker that runs
// bbProbes journeys at bbConcurrency and reports its own CPU time.
func vantageRound(b *testing.B, targetURL string) (int, time.Duration) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d %d", workerEnv, targetURL, bbWarmup, bbProbes, bbConcurrency))
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("vantage worker: %v\n%s", err, out)
	}
	var runs int
	var cpuNS int64
	if _, err := fmt.Sscanf(string(out), "runs=%d cpu_ns=%d", &runs, &cpuNS); err != nil {
		b.Fatalf("vantage worker said %q: %v", out, err)
	}
	return runs, time.Duration(cpuNS)
}

// runHTTPWorker is the worker's main: it parses "URL WARMUP N C" from the
// environment, runs the journey WARMUP times, then N times at concurrency
// C (one journey value per worker goroutine, as C configured journeys
// would be), encodes each Result as JSON, and prints the runs and the CPU
// time (user+system) the measured part cost this process.
func runHTTPWorker(spec string) int {
	var target string
	var warmup, n, c int
	if _, err := fmt.Sscanf(spec, "%s %d %d %d", &target, &warmup, &n, &c); err != nil {
		fmt.Fprintln(os.Stderr, "worker spec:", err)
		return 2
	}
	cfg, err := config.LoadBytes("w.toml", []byte(journeyTOML("5s", "[[journey.http.step]]\nurl = \""+target+"\"\nexpect_status = [200]\n")), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	red := report.NewRedactor()
	runner := &probes.Runner{Agent: "w", Region: "eu", Redact: red, Log: quietLog()}
	spec2 := probes.Spec{Journey: &cfg.Journey[0], Slot: time.Unix(100, 0), Trigger: report.TriggerSchedule}
	journeys := make(chan probes.Journey, c)
	for range c {
		j, err := New(&cfg.Journey[0], probes.Env{Redact: red})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		journeys <- j
	}
	run := func() error {
		j := <-journeys
		defer func() { journeys <- j }()
		res := runner.Execute(context.Background(), j, spec2)
		if res.Status != report.StatusPass {
			return fmt.Errorf("journey: %s %s", res.Status, res.Error)
		}
		_, err := json.Marshal(res)
		return err
	}
	for range warmup {
		if err := run(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	before := selfCPU()
	if err := concurrently(n, c, run); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("runs=%d cpu_ns=%d\n", n, int64(selfCPU()-before))
	return 0
}

// concurrently calls f n times from c goroutines and returns the first error.
func concurrently(n, c int, f func() error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := f(); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is another process's user+system CPU time, from fields 14 and 15
// of /proc/PID/stat (clock ticks, 100 per second on Linux).
func procCPU(b *testing.B, pid int) time.Duration {
	f, err := os.Open(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && err != io.EOF {
		b.Fatal(err)
	}
	// The command name (field 2) may contain spaces; fields after it are
	// counted from the closing parenthesis.
	rest := line[strings.LastIndexByte(line, ')')+2:]
	fields := strings.Fields(rest) // fields[0] is field 3 (state)
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("parse /proc/%d/stat: %q", pid, line)
	}
	const ticksPerSecond = 100 // sysconf(_SC_CLK_TCK) on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}
