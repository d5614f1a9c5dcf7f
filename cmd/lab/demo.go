package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/vantage-fleet/vantage/lab/campaign"
)

// demo runs the whole fleet against the lab and the scripted campaign of
// `make demo`: all green, git over HTTPS down in one region, Mercurial
// down everywhere, one prober's own network broken, a prober killed, the
// aggregator restarted mid-incident, and the Pipelines queue stalled. It
// fails when an expected alert is missing or an unexpected page fired.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("bin", "bin", "directory holding the prober and aggregator binaries")
	dir := fs.String("dir", "", "working directory (default: a new temporary directory)")
	interval := fs.Duration("interval", 5*time.Second, "every journey's schedule interval")
	keep := fs.Bool("keep", os.Getenv("DEMO_KEEP") == "1", "leave everything running at the end (also DEMO_KEEP=1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	workDir, binDir, logFile, err := runDir(*dir, *bin, "vantage-demo-")
	if err != nil {
		return err
	}
	*dir = workDir
	defer logFile.Close()
	o := campaign.Options{Dir: *dir, BinDir: binDir, Interval: *interval,
		Log: slog.New(slog.NewTextHandler(logFile, nil))}
	if am, err := exec.LookPath("prometheus-alertmanager"); err == nil {
		if cfg, err := filepath.Abs("deploy/alertmanager/alertmanager.yml"); err == nil {
			if _, err := os.Stat(cfg); err == nil {
				o.Alertmanager, o.AlertmanagerConfig = am, cfg
			}
		}
	}
	fmt.Fprintf(stdout, "demo: starting the lab, an aggregator and %d probers in %s\n", 6, *dir)
	st, err := campaign.Start(ctx, o)
	if err != nil {
		return err
	}
	defer func() {
		if !*keep {
			st.Close()
		}
	}()
	fmt.Fprintf(stdout, "demo: status page %s/ (logs and configs in %s)\n", st.AggregatorURL, *dir)
	if st.AlertmanagerURL != "" {
		fmt.Fprintf(stdout, "demo: alertmanager %s/\n", st.AlertmanagerURL)
	}
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	err = st.WaitGreen(wctx)
	cancel()
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "demo: fleet is green; running the campaign")
	r := &campaign.Runner{Stack: st, Out: stdout, DetectTimeout: 6**interval + 15*time.Second, RecoverTimeout: 10**interval + 20*time.Second}
	results := r.Run(ctx, campaign.DemoScenarios([]string{"eu", "us", "ap"}))
	sum := campaign.PrintSummary(stdout, results, "demo")
	if *keep {
		fmt.Fprintf(stdout, "demo: DEMO_KEEP=1: everything keeps running; status page %s/ — press Ctrl-C to stop\n", st.AggregatorURL)
		<-ctx.Done()
		st.Close()
	}
	if sum.Missed > 0 || sum.FalsePages > 0 || sum.Misclassified > 0 || ctx.Err() != nil {
		return errors.New("demo failed: missed, misclassified or unexpected alerts (see above)")
	}
	return nil
}
