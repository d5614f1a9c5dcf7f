package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/vantage-fleet/vantage/lab/campaign"
)

// runCampaign runs `make campaign`: a seeded, randomised fault campaign
// against the whole fleet (see campaign.NewPlan for what it draws), then
// writes report.md and report.json into the run directory and prints the
// Markdown. The same seed replays the same plan. It fails when a fault
// was missed or misclassified, a false page fired or a result was lost
// or counted twice.
func runCampaign(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("campaign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seed := fs.Uint64("seed", 0, "random seed (0: drawn from the clock and printed)")
	faults := fs.Int("faults", 30, "number of faults")
	bin := fs.String("bin", "bin", "directory holding the prober and aggregator binaries")
	dir := fs.String("dir", "", "run directory (default: a new temporary directory)")
	interval := fs.Duration("interval", 5*time.Second, "every journey's schedule interval")
	maxConc := fs.Int("max-concurrent", 4, "most faults active at once")
	planOnly := fs.Bool("plan", false, "print the plan and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *faults < 1 || *faults > 500 {
		return usageError("-faults must be in [1, 500]")
	}
	if *interval < time.Second || *interval > time.Minute {
		return usageError("-interval must be in [1s, 1m]")
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano()%1_000_000_000) + 1
	}
	replay := fmt.Sprintf("make campaign SEED=%d FAULTS=%d", *seed, *faults)
	fmt.Fprintf(stdout, "campaign: seed %d (replay: %s)\n", *seed, replay)

	regions := []string{"eu", "us", "ap"}
	var agents []campaign.Agent
	for _, r := range regions {
		for i := 1; i <= 2; i++ {
			agents = append(agents, campaign.Agent{Name: fmt.Sprintf("%s-%d", r, i), Region: r})
		}
	}
	plan := campaign.NewPlan(campaign.PlanOptions{Seed: *seed, Faults: *faults, Interval: *interval,
		Regions: regions, Agents: agents, MaxConcurrent: *maxConc})
	fmt.Fprintf(stdout, "campaign: %d faults over %s (settle %s after each)\n", len(plan.Faults), plan.Length.Round(time.Second), plan.Settle)
	for _, f := range plan.Faults {
		fmt.Fprintf(stdout, "  %2d  +%4.0fs  %3.0fs  %-14s %s (expect %s)\n", f.N, f.Onset.Seconds(), f.Duration.Seconds(), f.Category, f.Name, f.Expect)
	}
	if *planOnly {
		return nil
	}

	workDir, binDir, logFile, err := runDir(*dir, *bin, "vantage-campaign-")
	if err != nil {
		return err
	}
	*dir = workDir
	defer logFile.Close()
	st, err := campaign.Start(ctx, campaign.Options{Dir: *dir, BinDir: binDir, Interval: *interval, Regions: regions,
		AgentsPerRegion: 2, Log: slog.New(slog.NewTextHandler(logFile, nil))})
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(stdout, "campaign: status page %s/ (logs, configs and reports in %s)\n", st.AggregatorURL, *dir)
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err = st.WaitGreen(wctx)
	cancel()
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "campaign: fleet is green; running the faults")
	d := &campaign.Driver{Stack: st, Plan: plan, Out: stdout}
	d.Run(ctx)
	acc, err := d.Finish(context.WithoutCancel(ctx))
	if err != nil {
		fmt.Fprintf(stderr, "campaign: counting results: %v\n", err)
	}
	rep := d.Report(acc, replay)
	if b, err := json.MarshalIndent(st.Rec.Events(), "", " "); err == nil {
		_ = os.WriteFile(filepath.Join(*dir, "alerts.json"), b, 0o644)
	}
	if err := rep.Write(*dir); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	rep.WriteMarkdown(stdout)
	fmt.Fprintf(stdout, "\ncampaign: reports in %s/report.md and %s/report.json\n", *dir, *dir)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if rep.Missed > 0 || rep.Misclassified > 0 || rep.FalsePages > 0 || acc.Lost > 0 || acc.DoubleCounted > 0 {
		return errors.New("campaign failed: missed, misclassified or false pages, or results lost or double-counted (see the report)")
	}
	return nil
}
