package schedule

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/vantage-fleet/vantage/pkg/report"
)

// Clock is the time source of a Loop. Tests pass a fake one; production
// uses SystemClock.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed (at once for
	// d <= 0).
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// SystemClock returns the wall clock.
func SystemClock() Clock { return systemClock{} }

// Job is one journey the Loop schedules.
type Job struct {
	// Name is the journey's name; runs of one name never overlap (per trigger).
	Name     string
	Schedule *Schedule
	// Run performs one run. It must return when ctx is cancelled; its own
	// deadline (the journey's timeout) is the Runner's business.
	Run func(ctx context.Context, slot time.Time, trigger report.Trigger)
}

// Stats are the Loop's counters since Start.
type Stats struct {
	// Runs counts runs started (every trigger).
	Runs uint64
	// Skipped counts scheduled slots not run because the journey's previous
	// run was still in flight.
	Skipped uint64
	// NotOwned counts slots that ShouldRun declined (another agent owns them).
	NotOwned uint64
	// Refused counts RunNow requests refused (overlap, concurrency limit, stopping).
	Refused uint64
}

// Loop runs jobs at their slots: our own run loop with contexts (robfig's
// runner has none). A journey never overlaps itself (a slot that finds the
// previous run in flight is skipped and counted), at most MaxConcurrent runs
// execute at once (scheduled runs beyond that wait for a free place, and
// there is at most one waiting per journey), and Stop waits for runs in
// flight up to StopGrace.
//
// Set the fields before Start; they must not change afterwards.
type Loop struct {
	// Clock defaults to SystemClock.
	Clock Clock
	// MaxConcurrent bounds runs executing at once. Default 16.
	MaxConcurrent int
	// StopGrace is how long Stop waits for runs in flight before it cancels
	// them. Default 30 s.
	StopGrace time.Duration
	// ShouldRun is asked at each slot whether this agent runs it (fleet
	// ownership). Nil means always. It runs on the loop's goroutine, so it
	// must return quickly.
	ShouldRun func(journey string, slot time.Time) bool
	// Offset shifts a journey's slots (the region phase offset): the run
	// for slot s starts at s + Offset(journey), and carries slot s. Nil
	// means 0. It is asked again for every slot, so it may change. It is
	// called with the Loop's lock held: it must not call the Loop.
	Offset func(journey string) time.Duration
	// From, when set and earlier than Start's now, plans each job's first
	// slot as the first whose start (slot + offset) is after From: slots
	// that started between From and Start run at once, late. An agent that
	// joined its fleet at From takes, from then on, the slots its peers
	// leave to it; planned from Start it would skip those. At most one
	// such slot per job runs late.
	From time.Time
	// Log receives one line per skipped slot and refused request.
	Log *slog.Logger

	mu       sync.Mutex
	started  bool
	stopping bool
	entries  map[string]*entry
	inflight map[string]bool // name + "\x00" + trigger
	stats    Stats

	sem      chan struct{}
	wake     chan struct{}
	quit     chan struct{}
	done     chan struct{}
	runCtx   context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
	graceful bool
}

// entry is a job and its next slot.
type entry struct {
	job  Job
	slot time.Time // the next slot
	fire time.Time // when it starts: slot + offset
}

func (l *Loop) clock() Clock {
	if l.Clock == nil {
		return systemClock{}
	}
	return l.Clock
}

func (l *Loop) log() *slog.Logger {
	if l.Log == nil {
		return slog.Default()
	}
	return l.Log
}

// Start begins scheduling jobs. Runs get contexts derived from ctx;
// cancelling ctx cancels them at once (Stop is the graceful way).
func (l *Loop) Start(ctx context.Context, jobs []Job) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started {
		panic("schedule: Loop started twice")
	}
	l.started = true
	if l.MaxConcurrent <= 0 {
		l.MaxConcurrent = 16
	}
	if l.StopGrace <= 0 {
		l.StopGrace = 30 * time.Second
	}
	l.sem = make(chan struct{}, l.MaxConcurrent)
	l.wake = make(chan struct{}, 1)
	l.quit = make(chan struct{})
	l.done = make(chan struct{})
	l.inflight = map[string]bool{}
	l.runCtx, l.cancel = context.WithCancel(ctx)
	from := l.clock().Now()
	if !l.From.IsZero() && l.From.Before(from) {
		from = l.From
	}
	l.entries = l.plan(jobs, nil, from)
	go l.loop()
}

// Replace swaps the scheduled jobs (a config reload). A journey that keeps
// its name and schedule keeps its next slot; runs in flight continue, and a
// journey still running is not started again until its run ends.
func (l *Loop) Replace(jobs []Job) {
	l.mu.Lock()
	l.entries = l.plan(jobs, l.entries, l.clock().Now())
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// plan builds the entries of jobs, keeping the next slot of unchanged ones.
func (l *Loop) plan(jobs []Job, old map[string]*entry, now time.Time) map[string]*entry {
	out := make(map[string]*entry, len(jobs))
	for _, j := range jobs {
		e := &entry{job: j}
		if o, ok := old[j.Name]; ok && o.job.Schedule.String() == j.Schedule.String() {
			e.slot, e.fire = o.slot, o.fire
		} else {
			l.advance(e, now)
		}
		out[j.Name] = e
	}
	return out
}

// advance sets e to its first slot whose start (slot + offset) is after now.
func (l *Loop) advance(e *entry, now time.Time) {
	var off time.Duration
	if l.Offset != nil {
		off = l.Offset(e.job.Name)
	}
	e.slot = e.job.Schedule.Next(now.Add(-off))
	e.fire = e.slot.Add(off)
}

func (l *Loop) loop() {
	defer close(l.done)
	clk := l.clock()
	for {
		now := clk.Now()
		type due struct {
			job  Job
			slot time.Time
		}
		var fire []due
		var next time.Time
		l.mu.Lock()
		for _, e := range l.entries {
			if !e.fire.After(now) {
				fire = append(fire, due{e.job, e.slot})
				// Slots missed while the agent was busy or asleep are not
				// caught up: the next run is the next slot after now.
				l.advance(e, now)
			}
			if next.IsZero() || e.fire.Before(next) {
				next = e.fire
			}
		}
		l.mu.Unlock()
		for _, d := range fire {
			l.startScheduled(d.job, d.slot)
		}
		var timer <-chan time.Time
		if !next.IsZero() {
			timer = clk.After(next.Sub(now))
		}
		select {
		case <-timer:
		case <-l.wake:
		case <-l.quit:
			return
		case <-l.runCtx.Done():
			return
		}
	}
}

func (l *Loop) startScheduled(job Job, slot time.Time) {
	if l.ShouldRun != nil && !l.ShouldRun(job.Name, slot) {
		l.mu.Lock()
		l.stats.NotOwned++
		l.mu.Unlock()
		return
	}
	key := job.Name + "\x00" + string(report.TriggerSchedule)
	l.mu.Lock()
	if l.stopping {
		l.mu.Unlock()
		return
	}
	if l.inflight[key] {
		l.stats.Skipped++
		l.mu.Unlock()
		l.log().Warn("slot skipped: previous run still in flight", "journey", job.Name, "slot", slot.UTC().Format(time.RFC3339))
		return
	}
	l.inflight[key] = true
	l.wg.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.finish(key)
		// Wait for a free place; the journey counts as in flight meanwhile,
		// so at most one run per journey waits.
		select {
		case l.sem <- struct{}{}:
		case <-l.runCtx.Done():
			return
		case <-l.quit:
			return
		}
		defer func() { <-l.sem }()
		l.mu.Lock()
		l.stats.Runs++
		l.mu.Unlock()
		job.Run(l.runCtx, slot, report.TriggerSchedule)
	}()
}

func (l *Loop) finish(key string) {
	l.mu.Lock()
	delete(l.inflight, key)
	l.mu.Unlock()
	l.wg.Done()
}

// RunNow starts a run of journey for slot with trigger at once (a
// confirmation run). It is refused (false) when the journey is unknown, a
// run of it with the same trigger is in flight, the concurrency limit is
// reached, or the Loop is stopping. ShouldRun is not asked.
func (l *Loop) RunNow(journey string, slot time.Time, trigger report.Trigger) bool {
	key := journey + "\x00" + string(trigger)
	l.mu.Lock()
	e, ok := l.entries[journey]
	if !ok || !l.started || l.stopping || l.inflight[key] {
		l.stats.Refused++
		l.mu.Unlock()
		l.log().Info("run refused", "journey", journey, "trigger", string(trigger), "known", ok)
		return false
	}
	select {
	case l.sem <- struct{}{}:
	default:
		l.stats.Refused++
		l.mu.Unlock()
		l.log().Info("run refused: concurrency limit reached", "journey", journey, "trigger", string(trigger))
		return false
	}
	l.inflight[key] = true
	l.stats.Runs++
	l.wg.Add(1)
	job := e.job
	l.mu.Unlock()
	go func() {
		defer l.finish(key)
		defer func() { <-l.sem }()
		job.Run(l.runCtx, slot, trigger)
	}()
	return true
}

// Stats returns the counters.
func (l *Loop) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// Stop ends scheduling, waits up to StopGrace for runs in flight, then
// cancels the rest and waits for them to return. It reports whether every
// run finished within the grace period. Calling it again returns the same.
func (l *Loop) Stop() bool {
	l.stopOnce.Do(func() {
		l.mu.Lock()
		started := l.started
		l.stopping = true
		l.mu.Unlock()
		if !started {
			l.graceful = true
			return
		}
		close(l.quit)
		<-l.done
		finished := make(chan struct{})
		go func() { l.wg.Wait(); close(finished) }()
		select {
		case <-finished:
			l.graceful = true
		case <-l.clock().After(l.StopGrace):
			l.log().Warn("stop grace period over: cancelling runs in flight", "grace", l.StopGrace.String())
			l.cancel()
			<-finished
		}
		l.cancel()
	})
	return l.graceful
}
