package campaign

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/vantage-fleet/vantage/lab"
	"github.com/vantage-fleet/vantage/pkg/report"
)

// Scenario is one fault of a campaign: how to inject it, how to clear it,
// and what the fleet should say about it.
type Scenario struct {
	Name   string
	Expect Expect
	// Inject starts the fault; Clear ends it. Either may be nil.
	Inject func(ctx context.Context, s *Stack) error
	Clear  func(ctx context.Context, s *Stack) error
	// AfterDetect runs once the expected alert has fired (e.g. restart
	// the aggregator mid-incident).
	AfterDetect func(ctx context.Context, s *Stack) error
	// Hold is how long a ScopeNone scenario keeps its fault.
	Hold time.Duration
}

// Journey names of the lab's journeys (lab.ProberJourneys with the default prefix).
const (
	JourneyHTTP      = "lab-http"
	JourneyGitHTTP   = "lab-git-http"
	JourneyGitSSH    = "lab-git-ssh"
	JourneyHg        = "lab-hg"
	JourneyPipelines = "lab-pipelines"
)

// FaultScenario is a Scenario that adds one lab fault and removes it.
func FaultScenario(name string, f lab.Fault, exp Expect) Scenario {
	var id string
	return Scenario{Name: name, Expect: exp,
		Inject: func(ctx context.Context, s *Stack) error {
			added, err := s.Lab.Faults.Add(f)
			id = added.ID
			return err
		},
		Clear: func(ctx context.Context, s *Stack) error {
			s.Lab.Faults.Remove(id)
			return nil
		}}
}

// DemoScenarios is `make demo`'s scripted campaign.
func DemoScenarios(regions []string) []Scenario {
	first, second, third := regions[0], regions[len(regions)/2], regions[len(regions)-1]
	restart := FaultScenario("aggregator restarted during a git-http outage in "+second,
		lab.Fault{Kind: lab.FaultHTTPError, Region: second, Protocol: lab.ProtoGitHTTP, Status: 503},
		Expect{Scope: ScopeRegional, Regions: []string{second}, Journeys: []string{JourneyGitHTTP}})
	restart.AfterDetect = func(ctx context.Context, s *Stack) error {
		if err := s.StopAggregator(); err != nil {
			return err
		}
		return s.StartAggregator()
	}
	killed := third + "-1"
	return []Scenario{
		{Name: "all green", Expect: Expect{Scope: ScopeNone}, Hold: 10 * time.Second},
		FaultScenario("git over HTTPS down in "+first,
			lab.Fault{Kind: lab.FaultHTTPError, Region: first, Protocol: lab.ProtoGitHTTP, Status: 503},
			Expect{Scope: ScopeRegional, Regions: []string{first}, Journeys: []string{JourneyGitHTTP}}),
		FaultScenario("Mercurial down everywhere",
			lab.Fault{Kind: lab.FaultHTTPError, Protocol: lab.ProtoHg, Status: 502},
			Expect{Scope: ScopeGlobal, Journeys: []string{JourneyHg}}),
		FaultScenario("prober "+second+"-1's own network broken",
			lab.Fault{Kind: lab.FaultRefuse, Edge: second + "-1"},
			Expect{Scope: ScopeAgentLocal, Agent: second + "-1"}),
		{Name: "prober " + killed + " killed", Expect: Expect{Scope: ScopeNone}, Hold: 20 * time.Second,
			Inject: func(ctx context.Context, s *Stack) error { return s.KillProber(killed) },
			Clear:  func(ctx context.Context, s *Stack) error { return s.StartProber(killed) }},
		restart,
		FaultScenario("Pipelines queue stalled",
			lab.Fault{Kind: lab.FaultQueueStall},
			Expect{Scope: ScopeGlobal, Journeys: []string{JourneyPipelines}}),
	}
}

// Result is one scenario's outcome with its timings.
type Result struct {
	Scenario string
	Outcome  Outcome
	// Unresolved are alerts still firing after the fault was cleared and
	// the fleet had time to recover.
	Unresolved []string
	Err        error
}

// Runner drives scenarios against a Stack and prints a timeline.
type Runner struct {
	Stack *Stack
	Out   io.Writer
	// DetectTimeout bounds the wait for the expected alert; RecoverTimeout
	// the wait for resolution after the fault is cleared.
	DetectTimeout  time.Duration
	RecoverTimeout time.Duration
	start          time.Time
}

func (r *Runner) say(format string, args ...any) {
	fmt.Fprintf(r.Out, "[+%6.1fs] %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// Run runs every scenario in order and returns their results.
func (r *Runner) Run(ctx context.Context, scenarios []Scenario) []Result {
	r.start = time.Now()
	var out []Result
	for i, sc := range scenarios {
		if ctx.Err() != nil {
			break
		}
		r.say("scenario %d/%d: %s (expect %s)", i+1, len(scenarios), sc.Name, sc.Expect)
		out = append(out, r.runOne(ctx, sc))
	}
	return out
}

func firing(events []Event) map[string]bool {
	f := map[string]bool{}
	for _, e := range events {
		f[e.Key] = e.Status == "firing"
	}
	for k, v := range f {
		if !v {
			delete(f, k)
		}
	}
	return f
}

func (r *Runner) runOne(ctx context.Context, sc Scenario) Result {
	s := r.Stack
	res := Result{Scenario: sc.Name}
	already := firing(s.Rec.Events())
	t0 := time.Now()
	if sc.Inject != nil {
		if err := sc.Inject(ctx, s); err != nil {
			res.Err = err
			r.say("inject failed: %v", err)
			return res
		}
		r.say("fault injected")
	}
	wctx, wcancel := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		r.watchFirstFailure(wctx, t0, sc.Expect)
	}()
	defer func() { wcancel(); <-watched }()
	reported := 0
	report := func() {
		evs := s.Rec.Since(t0)
		for _, e := range evs[reported:] {
			r.say("alert %s: %s scope=%s regions=%s journeys=%s agent=%s", e.Status, e.Alertname(),
				e.Labels["scope"], e.Labels["regions"], e.Labels["journey"], e.Labels["agent"])
		}
		reported = len(evs)
	}
	deadline := t0.Add(r.DetectTimeout)
	if sc.Expect.Scope == ScopeNone {
		deadline = t0.Add(sc.Hold)
	}
	var o Outcome
	for time.Now().Before(deadline) && ctx.Err() == nil {
		report()
		o = Judge(sc.Expect, t0, time.Now(), s.Rec.Events(), already)
		// Wait for the expected alert even after a wrongly scoped one: a
		// global outage is often first seen in one region.
		if sc.Expect.Scope != ScopeNone && o.OK {
			break
		}
		select {
		case <-s.Rec.Changed():
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	report()
	if o.OK && sc.AfterDetect != nil {
		r.say("restarting the aggregator mid-incident")
		if err := sc.AfterDetect(ctx, s); err != nil {
			res.Err = err
			r.say("after-detect step failed: %v", err)
		}
		// Give the restarted aggregator time to page again if it would.
		sleep(ctx, 3*s.o.Interval)
		report()
	}
	if sc.Clear != nil {
		if err := sc.Clear(ctx, s); err != nil && res.Err == nil {
			res.Err = err
		}
		r.say("fault cleared")
	}
	t1 := time.Now()
	// Recovery: every alert this fault raised must resolve, and the fleet
	// must turn green again, before the next fault.
	rctx, cancel := context.WithTimeout(ctx, r.RecoverTimeout)
	defer cancel()
	for rctx.Err() == nil {
		report()
		o = Judge(sc.Expect, t0, time.Now(), s.Rec.Events(), already)
		if len(Unresolved(o.Fired, t1, s.Rec.Events())) == 0 {
			if err := s.WaitGreen(rctx); err == nil {
				break
			}
		}
		sleep(rctx, 500*time.Millisecond)
	}
	report()
	o = Judge(sc.Expect, t0, time.Now(), s.Rec.Events(), already)
	res.Outcome = o
	res.Unresolved = Unresolved(o.Fired, t1, s.Rec.Events())
	verdict := "ok"
	switch {
	case o.Missed:
		verdict = "MISSED"
	case o.Misclassified:
		verdict = "MISCLASSIFIED as " + o.Detected
	case len(o.FalsePages) > 0:
		verdict = fmt.Sprintf("%d FALSE PAGE(S)", len(o.FalsePages))
	case len(res.Unresolved) > 0:
		verdict = "NOT RESOLVED"
	}
	r.say("outcome: %s (detected %s in %.1fs)", verdict, o.Detected, o.Latency.Seconds())
	return res
}

// watchFirstFailure prints the first failing result of the affected
// journeys after t0, from the aggregator's results API.
func (r *Runner) watchFirstFailure(ctx context.Context, t0 time.Time, exp Expect) {
	ctx, cancel := context.WithTimeout(ctx, r.DetectTimeout)
	defer cancel()
	for ctx.Err() == nil {
		var body struct {
			Results []report.Result `json:"results"`
		}
		if err := getJSON(ctx, r.Stack.AggregatorURL+"/api/v1/results", &body); err == nil {
			for _, res := range body.Results {
				if res.Status != report.StatusFail || res.Start.Before(t0) {
					continue
				}
				if len(exp.Journeys) > 0 && !overlaps([]string{res.Journey}, exp.Journeys) {
					continue
				}
				if exp.Agent != "" && res.Agent != exp.Agent {
					continue
				}
				r.say("first failing result: %s from %s (%s, %s) %s", res.Journey, res.Agent, res.Region, res.ErrorType, truncate(res.Error, 100))
				return
			}
		}
		sleep(ctx, 300*time.Millisecond)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Summary counts a campaign's results.
type Summary struct {
	Faults, Detected, Misclassified, Missed, FalsePages, Unresolved int
	P95                                                             time.Duration
	// ByScope holds detection latencies per expected scope.
	ByScope map[string][]time.Duration
}

// Summarize counts results.
func Summarize(results []Result) Summary {
	s := Summary{ByScope: map[string][]time.Duration{}}
	var lats []time.Duration
	for _, r := range results {
		s.Faults++
		o := r.Outcome
		if o.OK && r.Err == nil {
			s.Detected++
		}
		if o.Misclassified {
			s.Misclassified++
		}
		if o.Missed || r.Err != nil {
			s.Missed++
		}
		s.FalsePages += len(o.FalsePages)
		s.Unresolved += len(r.Unresolved)
		if o.OK && o.Expect.Scope != ScopeNone && o.Detected != DetectedNotPaged {
			lats = append(lats, o.Latency)
			s.ByScope[o.Expect.Scope] = append(s.ByScope[o.Expect.Scope], o.Latency)
		}
	}
	s.P95 = Percentile(lats, 0.95)
	return s
}

// Percentile returns the p-th percentile (nearest rank) of ds, 0 if empty.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(p*float64(len(s)))) - 1
	if i < 0 {
		i = 0
	}
	return s[i]
}

// PrintSummary writes the summary table and the closing line.
func PrintSummary(w io.Writer, results []Result, label string) Summary {
	sum := Summarize(results)
	fmt.Fprintf(w, "\n%-55s %-18s %-22s %9s  %s\n", "fault", "expected", "detected", "latency", "result")
	fmt.Fprintln(w, strings.Repeat("-", 120))
	for _, r := range results {
		o := r.Outcome
		lat := "-"
		if o.OK && o.Expect.Scope != ScopeNone {
			lat = fmt.Sprintf("%.1fs", o.Latency.Seconds())
		}
		verdict := "ok"
		switch {
		case r.Err != nil:
			verdict = "error: " + r.Err.Error()
		case o.Missed:
			verdict = "missed"
		case o.Misclassified:
			verdict = "misclassified"
		case len(o.FalsePages) > 0:
			verdict = fmt.Sprintf("%d false page(s)", len(o.FalsePages))
		case len(r.Unresolved) > 0:
			verdict = "not resolved"
		}
		fmt.Fprintf(w, "%-55s %-18s %-22s %9s  %s\n", truncate(r.Scenario, 55), o.Expect, o.Detected, lat, verdict)
	}
	fmt.Fprintln(w)
	for _, scope := range []string{ScopeRegional, ScopeGlobal, ScopeAgentLocal} {
		if l := sum.ByScope[scope]; len(l) > 0 {
			fmt.Fprintf(w, "detection %-12s n=%d p50=%.1fs p95=%.1fs max=%.1fs\n", scope, len(l),
				Percentile(l, 0.5).Seconds(), Percentile(l, 0.95).Seconds(), Percentile(l, 1).Seconds())
		}
	}
	fmt.Fprintf(w, "missed alerts: %d, unexpected pages: %d, alerts not resolved: %d\n", sum.Missed, sum.FalsePages, sum.Unresolved)
	fmt.Fprintf(w, "%s: %d faults, %d detected, %d misclassified, %d false pages, p95 detection %.1f s\n",
		label, sum.Faults, sum.Detected, sum.Misclassified, sum.FalsePages, sum.P95.Seconds())
	return sum
}
