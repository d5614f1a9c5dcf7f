package campaign

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// FaultReport is one fault's judgement in a campaign report.
type FaultReport struct {
	N        int     `json:"n"`
	Name     string  `json:"name"`
	Category string  `json:"category"`
	Expect   string  `json:"expect"`
	OnsetS   float64 `json:"onset_s"`
	DurS     float64 `json:"duration_s"`
	Detected string  `json:"detected"`
	// LatencyS is from injection to the first correctly scoped alert (0
	// when none was expected or it never came).
	LatencyS      float64  `json:"latency_s"`
	Verdict       string   `json:"verdict"`
	Misclassified bool     `json:"misclassified"`
	Missed        bool     `json:"missed"`
	FalsePages    []string `json:"false_pages,omitempty"`
	Unresolved    []string `json:"unresolved,omitempty"`
	Error         string   `json:"error,omitempty"`
	// Load1Max is the host's highest 1-minute load average in the fault's
	// window.
	Load1Max float64 `json:"load1_max"`
}

// LatencyStats is detection latency of one scope, in seconds.
type LatencyStats struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_s"`
	P95 float64 `json:"p95_s"`
	Max float64 `json:"max_s"`
}

// Report is a randomised campaign's outcome.
type Report struct {
	Seed          uint64                  `json:"seed"`
	Faults        int                     `json:"faults"`
	Interval      string                  `json:"interval"`
	Started       time.Time               `json:"started"`
	Took          string                  `json:"took"`
	Replay        string                  `json:"replay"`
	Latency       map[string]LatencyStats `json:"detection_latency"`
	Detected      int                     `json:"detected"`
	Misclassified int                     `json:"misclassified"`
	Missed        int                     `json:"missed"`
	// FalsePages counts product pages no fault explains, plus second
	// pages for an incident already paged.
	FalsePages int `json:"false_pages"`
	Unresolved int `json:"unresolved"`
	// PartialPaged is how many partial faults paged (regionally, right).
	PartialPaged int `json:"partial_paged"`
	// FleetAlerts counts fleet-health alerts (not pages) by name;
	// UnexpectedSuspects are prober-suspect alerts outside agent-local faults.
	FleetAlerts        map[string]int `json:"fleet_alerts"`
	UnexpectedSuspects []string       `json:"unexpected_suspects,omitempty"`
	Unattributed       []string       `json:"unattributed_pages,omitempty"`
	Results            Accounting     `json:"results"`
	// CPUs and Load1Max describe the machine the campaign shared: faults
	// judged while the load exceeded twice the CPUs (Overloaded) ran with
	// starved probers.
	CPUs       int           `json:"cpus"`
	Load1Max   float64       `json:"load1_max"`
	Overloaded int           `json:"overloaded_faults"`
	Items      []FaultReport `json:"faults_detail"`
}

func eventText(e Event) string {
	return fmt.Sprintf("%s %s %s regions=%s journeys=%s agent=%s", e.At.Format("15:04:05"), e.Status, e.Alertname(),
		e.Labels["regions"], e.Labels["journey"], e.Labels["agent"])
}

// Report judges every fault from the alerts recorded during the run: each
// firing alert is attributed to the fault active at that moment (from
// onset to clear plus the plan's settle time) whose journeys it names (a
// product page) or whose agent it names (a prober-suspect alert); product
// pages that no fault explains are false pages.
func (d *Driver) Report(acc Accounting, replay string) Report {
	d.mu.Lock()
	defer d.mu.Unlock()
	events := d.Stack.Rec.Events()
	rep := Report{Seed: d.Plan.Seed, Faults: len(d.Plan.Faults), Interval: d.Stack.Interval().String(),
		Started: d.start, Took: time.Since(d.start).Round(time.Second).String(), Replay: replay,
		Latency: map[string]LatencyStats{}, FleetAlerts: map[string]int{}, Results: acc, CPUs: runtime.NumCPU()}
	for _, l := range d.load {
		rep.Load1Max = max(rep.Load1Max, l.load1)
	}
	window := func(f *PlannedFault) (time.Time, time.Time, bool) {
		on, ok := d.onset[f.N]
		if !ok {
			return time.Time{}, time.Time{}, false
		}
		cl, ok := d.clear[f.N]
		if !ok {
			cl = time.Now()
		}
		return on, cl.Add(d.Plan.Settle), true
	}
	attributed := map[int][]Event{}
	for _, e := range events {
		if e.Status != "firing" {
			continue
		}
		if !e.IsProductAlert() {
			rep.FleetAlerts[e.Alertname()]++
		}
		var owner *PlannedFault
		for _, f := range d.Plan.Faults {
			s, end, ok := window(f)
			if !ok || e.At.Before(s) || e.At.After(end) {
				continue
			}
			switch {
			case e.IsProductAlert() && f.product && overlaps(e.Journeys(), f.journeys):
				owner = f
			case e.IsProductAlert() && !f.product && f.Category != CatAggRestart && overlaps(e.Regions(), f.regions) && owner == nil:
				owner = f // a page in the region of a dead or broken prober: its false page
			case e.Alertname() == AlertProberSuspect && f.Category == CatAgentLocal && e.Labels["agent"] == f.Expect.Agent:
				owner = f
			}
			if owner != nil && owner.product {
				break
			}
		}
		switch {
		case owner != nil:
			attributed[owner.N] = append(attributed[owner.N], e)
		case e.IsProductAlert():
			rep.Unattributed = append(rep.Unattributed, fmt.Sprintf("%s (host load %.1f)", eventText(e),
				d.maxLoad(e.At.Add(-10*time.Second), e.At.Add(10*time.Second))))
			rep.FalsePages++
		case e.Alertname() == AlertProberSuspect:
			rep.UnexpectedSuspects = append(rep.UnexpectedSuspects, eventText(e))
		}
	}
	lat := map[string][]time.Duration{}
	for _, f := range d.Plan.Faults {
		s, end, ok := window(f)
		fr := FaultReport{N: f.N, Name: f.Name, Category: f.Category, Expect: f.Expect.String(),
			OnsetS: f.Onset.Seconds(), DurS: f.Duration.Seconds()}
		if err := d.errs[f.N]; err != nil {
			fr.Error = err.Error()
		}
		if ok {
			fr.Load1Max = d.maxLoad(s, end)
			if fr.Load1Max > 2*float64(rep.CPUs) {
				rep.Overloaded++
			}
		}
		if !ok {
			fr.Verdict = "not run"
			rep.Items = append(rep.Items, fr)
			continue
		}
		o := Judge(f.Expect, s, end, attributed[f.N], firing(eventsBefore(events, s)))
		fr.Detected, fr.Misclassified, fr.Missed = o.Detected, o.Misclassified, o.Missed
		for _, e := range o.FalsePages {
			fr.FalsePages = append(fr.FalsePages, eventText(e))
		}
		fr.Unresolved = stillFiring(o.Fired, events)
		rep.FalsePages += len(o.FalsePages)
		rep.Unresolved += len(fr.Unresolved)
		if o.Misclassified {
			rep.Misclassified++
		}
		if o.Missed {
			rep.Missed++
		}
		if o.OK && f.Expect.Scope != ScopeNone && o.Detected != DetectedNotPaged {
			fr.LatencyS = o.Latency.Seconds()
			lat[f.Expect.Scope] = append(lat[f.Expect.Scope], o.Latency)
			rep.Detected++
			if f.Expect.Scope == ScopePartial {
				rep.PartialPaged++
			}
		}
		fr.Verdict = "ok"
		switch {
		case fr.Error != "":
			fr.Verdict = "error"
		case o.Missed:
			fr.Verdict = "MISSED"
		case o.Misclassified:
			fr.Verdict = "MISCLASSIFIED"
		case len(o.FalsePages) > 0:
			fr.Verdict = fmt.Sprintf("%d FALSE PAGE(S)", len(o.FalsePages))
		case len(fr.Unresolved) > 0:
			fr.Verdict = "not resolved"
		}
		rep.Items = append(rep.Items, fr)
	}
	for scope, l := range lat {
		rep.Latency[scope] = LatencyStats{N: len(l), P50: Percentile(l, 0.5).Seconds(),
			P95: Percentile(l, 0.95).Seconds(), Max: Percentile(l, 1).Seconds()}
	}
	return rep
}

// stillFiring returns the keys among fired whose last event is a firing
// one: an alert of a fault that flapped may resolve before the fault is
// cleared, and concurrent faults make "resolved after the clear" wrong.
func stillFiring(fired []string, events []Event) []string {
	last := map[string]string{}
	for _, e := range events {
		last[e.Key] = e.Status
	}
	var out []string
	seen := map[string]bool{}
	for _, k := range fired {
		if last[k] == "firing" && !seen[k] {
			out = append(out, k)
			seen[k] = true
		}
	}
	return out
}

func eventsBefore(events []Event, t time.Time) []Event {
	var out []Event
	for _, e := range events {
		if e.At.Before(t) {
			out = append(out, e)
		}
	}
	return out
}

// WriteMarkdown writes the report as Markdown.
func (r Report) WriteMarkdown(w io.Writer) {
	fmt.Fprintf(w, "# Fault campaign, seed %d\n\n", r.Seed)
	fmt.Fprintf(w, "%d faults at a %s journey interval, started %s, took %s. Replay: `%s`\n\n",
		r.Faults, r.Interval, r.Started.UTC().Format(time.RFC3339), r.Took, r.Replay)
	fmt.Fprintf(w, "Host: %d CPUs, shared; highest 1-minute load %.1f; %d faults judged while the load exceeded %d (starved probers time out).\n\n",
		r.CPUs, r.Load1Max, r.Overloaded, 2*r.CPUs)
	fmt.Fprintln(w, "## Detection latency (injection → first correctly scoped alert)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| scope | n | p50 | p95 | max |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, s := range []string{ScopeRegional, ScopeGlobal, ScopeAgentLocal, ScopePartial} {
		l, ok := r.Latency[s]
		if !ok {
			fmt.Fprintf(w, "| %s | 0 | - | - | - |\n", s)
			continue
		}
		fmt.Fprintf(w, "| %s | %d | %.1f s | %.1f s | %.1f s |\n", s, l.N, l.P50, l.P95, l.Max)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Verdicts")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "- detected: %d; misclassified: %d; missed: %d; false pages: %d; alerts not resolved: %d\n",
		r.Detected, r.Misclassified, r.Missed, r.FalsePages, r.Unresolved)
	fmt.Fprintf(w, "- partial faults that paged (regionally): %d\n", r.PartialPaged)
	var fleet []string
	for k, v := range r.FleetAlerts {
		fleet = append(fleet, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(fleet)
	fmt.Fprintf(w, "- fleet alerts (not pages): %s\n", strings.Join(fleet, ", "))
	for _, u := range r.Unattributed {
		fmt.Fprintf(w, "- page no fault explains: %s\n", u)
	}
	for _, u := range r.UnexpectedSuspects {
		fmt.Fprintf(w, "- prober suspect outside an agent-local fault: %s\n", u)
	}
	a := r.Results
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Results (probers' JSONL logs vs the aggregator)")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "- logged by the probers: %d; admitted by the aggregator: %d; **lost: %d**; **double-counted: %d**\n",
		a.Logged, a.Received, a.Lost, a.DoubleCounted)
	fmt.Fprintf(w, "- seen reaching the sinks: %d (admitted but not seen by the watcher: %d; ring gaps: %d); admitted but logged by no prober: %d\n",
		a.SinkSeen, a.SinkUnseen, a.SinkGaps, a.Unknown)
	for _, l := range a.LostSample {
		fmt.Fprintf(w, "  - lost: %s\n", l)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Faults")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| # | onset | for | fault | expected | detected | latency | verdict | load |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, f := range r.Items {
		l := "-"
		if f.LatencyS > 0 {
			l = fmt.Sprintf("%.1f s", f.LatencyS)
		}
		v := f.Verdict
		if f.Error != "" {
			v += ": " + f.Error
		}
		fmt.Fprintf(w, "| %d | %.0f s | %.0f s | %s | %s | %s | %s | %s | %.1f |\n", f.N, f.OnsetS, f.DurS, f.Name, f.Expect, f.Detected, l, v, f.Load1Max)
	}
	for _, f := range r.Items {
		for _, p := range f.FalsePages {
			fmt.Fprintf(w, "\n- fault %d false page: %s", f.N, p)
		}
		for _, u := range f.Unresolved {
			fmt.Fprintf(w, "\n- fault %d alert not resolved: %s", f.N, u)
		}
	}
	fmt.Fprintln(w)
}

// Write writes report.md and report.json into dir.
func (r Report) Write(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "report.md"))
	if err != nil {
		return err
	}
	r.WriteMarkdown(f)
	return f.Close()
}
