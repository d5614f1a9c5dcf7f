package campaign

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Driver runs a Plan's faults concurrently against a Stack, each at its
// onset, prints a timeline, and watches which Result IDs reach the
// aggregator's sinks.
type Driver struct {
	Stack *Stack
	Plan  *Plan
	Out   io.Writer

	mu    sync.Mutex
	start time.Time
	// Window per fault: [onset, clear] in wall time.
	onset, clear map[int]time.Time
	errs         map[int]error
	ids          *idWatcher
	// load holds the host's 1-minute load average, sampled during the run:
	// the campaign shares the machine, and a starved prober times out.
	load []loadSample
}

type loadSample struct {
	at    time.Time
	load1 float64
}

// readLoad1 returns the 1-minute load average from /proc/loadavg.
func readLoad1() (float64, bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	return v, err == nil
}

func (d *Driver) sampleLoad(ctx context.Context) {
	for ctx.Err() == nil {
		if v, ok := readLoad1(); ok {
			d.mu.Lock()
			d.load = append(d.load, loadSample{time.Now(), v})
			d.mu.Unlock()
		}
		sleep(ctx, 5*time.Second)
	}
}

// maxLoad returns the highest load sampled in [from, to]; call with d.mu held.
func (d *Driver) maxLoad(from, to time.Time) float64 {
	m := 0.0
	for _, s := range d.load {
		if !s.at.Before(from) && !s.at.After(to) && s.load1 > m {
			m = s.load1
		}
	}
	return m
}

func (d *Driver) say(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.Out, "[+%6.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

// Run injects every fault at its onset, clears it after its duration and
// returns once the last fault's settle time is over (or ctx ends). The
// alerts are in Stack.Rec; Judge the run with Driver.Report.
func (d *Driver) Run(ctx context.Context) {
	d.start = time.Now()
	d.onset, d.clear, d.errs = map[int]time.Time{}, map[int]time.Time{}, map[int]error{}
	d.ids = newIDWatcher(d.Stack.AggregatorURL)
	wctx, wcancel := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { defer close(watched); d.ids.run(wctx, 2*time.Second) }()
	defer func() { wcancel(); <-watched }()

	loadDone := make(chan struct{})
	go func() { defer close(loadDone); d.sampleLoad(wctx) }()
	defer func() { wcancel(); <-loadDone }()

	evDone := make(chan struct{})
	go func() { defer close(evDone); d.printAlerts(wctx) }()
	defer func() { wcancel(); <-evDone }()

	var wg sync.WaitGroup
	for _, f := range d.Plan.Faults {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.runFault(ctx, f)
		}()
	}
	wg.Wait()
	sleep(ctx, time.Until(d.start.Add(d.Plan.Length)))
}

func (d *Driver) printAlerts(ctx context.Context) {
	seen := 0
	for {
		evs := d.Stack.Rec.Events()
		for _, e := range evs[seen:] {
			d.say("alert %s: %s scope=%s regions=%s journeys=%s agent=%s", e.Status, e.Alertname(),
				e.Labels["scope"], e.Labels["regions"], e.Labels["journey"], e.Labels["agent"])
		}
		seen = len(evs)
		select {
		case <-ctx.Done():
			return
		case <-d.Stack.Rec.Changed():
		case <-time.After(time.Second):
		}
	}
}

func (d *Driver) runFault(ctx context.Context, f *PlannedFault) {
	sleep(ctx, time.Until(d.start.Add(f.Onset)))
	if ctx.Err() != nil {
		return
	}
	s := d.Stack
	var clear func() error
	var err error
	d.mu.Lock()
	d.onset[f.N] = time.Now()
	d.mu.Unlock()
	switch {
	case f.Fault != nil:
		var added = *f.Fault
		added, err = s.Lab.Faults.Add(added)
		clear = func() error { s.Lab.Faults.Remove(added.ID); return nil }
	case f.Category == CatProberDeath:
		err = s.KillProber(f.Agent)
		clear = func() error { return s.StartProber(f.Agent) }
	case f.Category == CatAggRestart:
		d.ids.poll(ctx) // see every ID the old process accepted, up to now
		err = s.StopAggregator()
		clear = s.StartAggregator
	}
	if err != nil {
		d.say("fault %d (%s): inject failed: %v", f.N, f.Name, err)
	} else {
		d.say("fault %d injected: %s (expect %s, for %.0fs)", f.N, f.Name, f.Expect, f.Duration.Seconds())
	}
	sleep(ctx, f.Duration)
	if clear != nil {
		if cerr := clear(); cerr != nil && err == nil {
			err = cerr
		}
	}
	d.mu.Lock()
	d.clear[f.N] = time.Now()
	d.errs[f.N] = err
	d.mu.Unlock()
	d.say("fault %d cleared: %s", f.N, f.Name)
}
