package main

import (
	"bufio"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/lab"
)

// BenchmarkAgentRSS_200Journeys builds the real prober, starts it with 200
// HTTP journeys every 2 s against a local product, and samples its
// resident memory (VmRSS in /proc) for 10 s. value is the peak in MiB;
// goal is the 64 MiB limit.
func BenchmarkAgentRSS_200Journeys(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "prober")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	srv := httptest.NewServer(lab.NewHTTPAPI())
	defer srv.Close()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "[agent]\nname = \"rss\"\nregion = \"local\"\ndata_dir = %q\nlisten = \"\"\nstop_grace = \"5s\"\n", filepath.Join(dir, "data"))
	fmt.Fprintf(&cfg, "[defaults]\nschedule = \"@every 2s\"\ntimeout = \"1s\"\n[[export]]\ntype = \"jsonl\"\npath = %q\n", filepath.Join(dir, "results.jsonl"))
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&cfg, "[[journey]]\nname = \"j%03d\"\nkind = \"http\"\n[journey.http]\n[[journey.http.step]]\nurl = \"%s/api/2.0/repositories/ws/r%d\"\njson_equals = { full_name = \"ws/r%d\" }\n", i, srv.URL, i, i)
	}
	path := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(bin, "run", "-config", path)
		cmd.Stderr = nil
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		peak := 0.0
		for t := 0; t < 40; t++ {
			time.Sleep(250 * time.Millisecond)
			if v, err := vmRSSMiB(cmd.Process.Pid); err == nil && v > peak {
				peak = v
			}
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			b.Fatalf("prober exited: %v", err)
		}
		res, err := os.ReadFile(filepath.Join(dir, "results.jsonl"))
		if err != nil || strings.Count(string(res), "\n") < 400 {
			b.Fatalf("too few results (%d): %v", strings.Count(string(res), "\n"), err)
		}
		b.ReportMetric(peak, "value")
		b.ReportMetric(64, "goal")
	}
}

func vmRSSMiB(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}
