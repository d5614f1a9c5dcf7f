package git

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/lab"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
	"github.com/vantage-fleet/vantage/probes/gitclient"
)

// benchRounds is how many times each side runs inside one benchmark
// iteration (make bench uses -benchtime 1x).
const benchRounds = 20

// seedFiles adds n files of size bytes of random (incompressible) content
// to repo's main branch, through the product's write path.
func seedFiles(b *testing.B, p *lab.GitProduct, n, size int) {
	b.Helper()
	work := b.TempDir()
	run := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = work
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	run("init", "-q", "-b", "main")
	buf := make([]byte, size)
	for i := 0; i < n; i++ {
		_, _ = io.ReadFull(rand.Reader, buf)
		if err := os.WriteFile(filepath.Join(work, fmt.Sprintf("f%04d.bin", i)), buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	run("add", ".")
	run("-c", "user.name=b", "-c", "user.email=b@x", "commit", "-q", "-m", "content")
	if err := p.Repos.Write(context.Background(), repo, func(dir string) error {
		cmd := exec.Command("git", "push", "-q", "--force", dir, "main:main")
		cmd.Dir = work
		return cmd.Run()
	}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkGitJourney_VsGitCLI times the whole journey (advertise, clone,
// push, verify, cleanup) over HTTPS against the git CLI doing a shallow
// clone and a push to the same server, in the same run. Goal: ratio ≤ 1.
func BenchmarkGitJourney_VsGitCLI(b *testing.B) {
	if _, err := exec.LookPath("git"); err != nil {
		b.Skip("git not installed")
	}
	p, err := lab.StartGitProduct(b.TempDir(), lab.GitProductOptions{Repos: []string{repo}, User: "probe", Password: "bench-pw"})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	seedFiles(b, p, 50, 4<<10)
	cfgSrc := fmt.Sprintf(`[agent]
name = "bench"
region = "eu"
data_dir = %q
[[journey]]
name = "git-bench"
kind = "git"
timeout = "30s"
[journey.git]
url = %q
username = "probe"
password = "env:GIT_PASSWORD"
ca_file = %q
push = true
branch_prefix = "vantage-probe/"
verify_interval = "5ms"
`, b.TempDir(), p.HTTPSURL(repo), p.CAFile)
	jc, j := loadBench(b, cfgSrc)
	defer j.Close()
	runner := &probes.Runner{Agent: "bench", Region: "eu", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cliURL := strings.Replace(p.HTTPSURL(repo), "https://", "https://probe:bench-pw@", 1)
	env := append(os.Environ(), "GIT_SSL_CAINFO="+p.CAFile, "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "HOME="+b.TempDir())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var journey, cli time.Duration
		for r := 0; r < benchRounds; r++ {
			slot := time.Unix(1_800_000_000+int64(i*benchRounds+r), 0)
			t0 := time.Now()
			res := runner.Execute(context.Background(), j, probes.Spec{Journey: jc, Slot: slot, Trigger: report.TriggerManual})
			journey += time.Since(t0)
			if res.Status != report.StatusPass {
				b.Fatalf("journey: %s %s", res.ErrorType, res.Error)
			}
			dir := filepath.Join(b.TempDir(), "c")
			t0 = time.Now()
			for _, args := range [][]string{
				{"clone", "-q", "--depth", "1", "--single-branch", "--no-tags", cliURL, dir},
				{"-C", dir, "-c", "user.name=b", "-c", "user.email=b@x", "commit", "-q", "--allow-empty", "-m", "cli probe"},
				{"-C", dir, "push", "-q", "origin", fmt.Sprintf("main:refs/heads/cli-%d-%d", i, r)},
			} {
				cmd := exec.Command("git", args...)
				cmd.Env = env
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("git %v: %v %s", args[0], err, out)
				}
			}
			cli += time.Since(t0)
		}
		v, base := journey.Seconds()*1000/benchRounds, cli.Seconds()*1000/benchRounds
		b.ReportMetric(v, "value")
		b.ReportMetric(base, "baseline")
		b.ReportMetric(v/base, "ratio")
		b.ReportMetric(1.0, "goal")
	}
}

func loadBench(b *testing.B, src string) (*config.Journey, *journey) {
	b.Helper()
	cfg, err := loadConfig(src, map[string]string{"GIT_PASSWORD": "bench-pw"})
	if err != nil {
		b.Fatal(err)
	}
	jc := &cfg.Journey[0]
	j, err := newJourney(jc, probes.Env{Agent: cfg.Agent, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), DataDir: cfg.Agent.DataDir}, 0, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	return jc, j
}

// BenchmarkGitClone_MemoryPerConcurrentClone measures the agent heap per
// in-memory clone at the peak of 8 clones of a 2 MiB repository running at
// once (value in MiB; goal: the repository's size).
func BenchmarkGitClone_MemoryPerConcurrentClone(b *testing.B) {
	if _, err := exec.LookPath("git"); err != nil {
		b.Skip("git not installed")
	}
	p, err := lab.StartGitProduct(b.TempDir(), lab.GitProductOptions{Repos: []string{repo}})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	const files, size, n = 64, 32 << 10, 8
	seedFiles(b, p, files, size)
	c, err := gitclient.New(gitclient.Options{URL: p.HTTPSURL(repo), RootCAs: poolOf(b, p.CAFile)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runtime.GC()
		base := heapBytes()
		peak := base
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for {
				peak = max(peak, heapBytes())
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
		clones := make([]*gitclient.Clone, n)
		var wg sync.WaitGroup
		for k := range clones {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cl, err := c.Clone(context.Background(), gitclient.CloneOptions{})
				if err != nil {
					b.Error(err)
					return
				}
				clones[k] = cl
			}()
		}
		wg.Wait()
		close(stop)
		<-sampled
		runtime.KeepAlive(clones)
		b.ReportMetric(float64(peak-base)/n/(1<<20), "value")
		b.ReportMetric(float64(files*size)/(1<<20), "goal")
	}
}

// heapBytes reads the live-and-unswept heap without stopping the world.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
