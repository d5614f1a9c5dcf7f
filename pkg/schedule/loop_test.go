package schedule

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vantage-fleet/vantage/pkg/report"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock moves only when the test advances it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	d  time.Duration
	ch chan time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{now: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), d: d, ch: ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// waitFor blocks until a timer matching ok is pending: the code under test
// has reached the point where it waits on the clock.
func (c *fakeClock) waitFor(t *testing.T, what string, ok func(w waiter) bool) {
	t.Helper()
	for i := 0; i < 5000; i++ {
		c.mu.Lock()
		for _, w := range c.waiters {
			if ok(w) {
				c.mu.Unlock()
				return
			}
		}
		c.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("nothing waited on the clock for %s", what)
}

// waitPending waits until at least n timers are pending.
func (c *fakeClock) waitPending(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < 5000; i++ {
		c.mu.Lock()
		k := len(c.waiters)
		c.mu.Unlock()
		if k >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("fewer than %d timers pending", n)
}

type started struct {
	name    string
	slot    time.Time
	at      time.Time
	trigger report.Trigger
}

// recorder builds jobs whose runs report their start and then block until
// released (or their context ends).
type recorder struct {
	clk     *fakeClock
	got     chan started
	release chan struct{}
}

func newRecorder(clk *fakeClock) *recorder {
	return &recorder{clk: clk, got: make(chan started, 16), release: make(chan struct{})}
}

func (r *recorder) job(t *testing.T, name, spec string) Job {
	s, err := Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return Job{Name: name, Schedule: s, Run: func(ctx context.Context, slot time.Time, trig report.Trigger) {
		r.got <- started{name, slot, r.clk.Now(), trig}
		select {
		case <-r.release:
		case <-ctx.Done():
		}
	}}
}

func (r *recorder) next(t *testing.T) started {
	t.Helper()
	select {
	case s := <-r.got:
		return s
	case <-time.After(5 * time.Second):
		r.clk.mu.Lock()
		now, w := r.clk.now, len(r.clk.waiters)
		r.clk.mu.Unlock()
		t.Fatalf("no run started (now %v, %d waiters)", now, w)
		return started{}
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func at(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

func TestLoop_RunsEachSlotWithItsSlotTime(t *testing.T) {
	clk := newFakeClock(at(1003))
	rec := newRecorder(clk)
	close(rec.release) // runs end at once
	l := &Loop{Clock: clk, Log: quiet}
	l.Start(context.Background(), []Job{rec.job(t, "a", "@every 10s")})
	defer l.Stop()
	for _, want := range []int64{1010, 1020, 1030} {
		waitIdle(t, l) // the previous run has ended, so this slot is not skipped
		clk.waitPending(t, 1)
		clk.Advance(at(want).Sub(clk.Now()))
		got := rec.next(t)
		if !got.slot.Equal(at(want)) || !got.at.Equal(at(want)) || got.trigger != report.TriggerSchedule {
			t.Fatalf("run %+v, want slot and start %d", got, want)
		}
	}
	if s := l.Stats(); s.Runs != 3 || s.Skipped != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestLoop_OffsetDelaysTheRunButKeepsTheSlot(t *testing.T) {
	clk := newFakeClock(at(1003))
	rec := newRecorder(clk)
	close(rec.release)
	l := &Loop{Clock: clk, Log: quiet, Offset: func(string) time.Duration { return 4 * time.Second }}
	l.Start(context.Background(), []Job{rec.job(t, "a", "@every 10s")})
	defer l.Stop()
	// Slot 1000 of this region starts at 1004, slot 1010 at 1014.
	for _, slot := range []int64{1000, 1010} {
		waitIdle(t, l)
		clk.waitPending(t, 1)
		clk.Advance(at(slot + 4).Sub(clk.Now()))
		got := rec.next(t)
		if !got.slot.Equal(at(slot)) || !got.at.Equal(at(slot+4)) {
			t.Fatalf("run %+v, want slot %d started at %d", got, slot, slot+4)
		}
	}
}

// TestLoop_From_RunsTheSlotThatStartedSinceFromAtOnce: an agent that
// joined at 1003 but starts its loop at 1006 runs slot 1000 (offset 4,
// start 1004) at once, late, then keeps the schedule.
func TestLoop_From_RunsTheSlotThatStartedSinceFromAtOnce(t *testing.T) {
	clk := newFakeClock(at(1006))
	rec := newRecorder(clk)
	close(rec.release)
	l := &Loop{Clock: clk, Log: quiet, From: at(1003), Offset: func(string) time.Duration { return 4 * time.Second }}
	l.Start(context.Background(), []Job{rec.job(t, "a", "@every 10s")})
	defer l.Stop()
	if got := rec.next(t); !got.slot.Equal(at(1000)) || !got.at.Equal(at(1006)) {
		t.Fatalf("first run %+v, want slot 1000 at once (1006)", got)
	}
	waitIdle(t, l)
	clk.waitPending(t, 1)
	clk.Advance(at(1014).Sub(clk.Now()))
	if got := rec.next(t); !got.slot.Equal(at(1010)) || !got.at.Equal(at(1014)) {
		t.Fatalf("second run %+v, want slot 1010 at 1014", got)
	}
	// Without From the loop plans after its start: slot 1010 first.
	clk2 := newFakeClock(at(1006))
	rec2 := newRecorder(clk2)
	close(rec2.release)
	l2 := &Loop{Clock: clk2, Log: quiet, Offset: func(string) time.Duration { return 4 * time.Second }}
	l2.Start(context.Background(), []Job{rec2.job(t, "a", "@every 10s")})
	defer l2.Stop()
	clk2.waitPending(t, 1)
	clk2.Advance(at(1014).Sub(clk2.Now()))
	if got := rec2.next(t); !got.slot.Equal(at(1010)) {
		t.Fatalf("without From: first run %+v, want slot 1010", got)
	}
}

func TestLoop_SlotWhilePreviousRunInFlight_IsSkippedAndCounted(t *testing.T) {
	clk := newFakeClock(at(1003))
	rec := newRecorder(clk)
	l := &Loop{Clock: clk, Log: quiet}
	l.Start(context.Background(), []Job{rec.job(t, "a", "@every 10s")})
	defer l.Stop()
	clk.waitPending(t, 1)
	clk.Advance(7 * time.Second) // slot 1010: starts and blocks
	if got := rec.next(t); !got.slot.Equal(at(1010)) {
		t.Fatalf("first run %+v", got)
	}
	clk.waitPending(t, 1)
	clk.Advance(10 * time.Second) // slot 1020: still running
	clk.waitPending(t, 1)         // the loop has handled slot 1020
	if s := l.Stats(); s.Skipped != 1 || s.Runs != 1 {
		t.Fatalf("stats %+v, want 1 run and 1 skipped", s)
	}
	rec.release <- struct{}{} // the first run ends
	waitIdle(t, l)
	clk.Advance(10 * time.Second) // slot 1030 runs again
	if got := rec.next(t); !got.slot.Equal(at(1030)) {
		t.Fatalf("run after skip %+v", got)
	}
	close(rec.release)
}

func TestLoop_ConcurrencyLimit_QueuesScheduledAndRefusesRunNow(t *testing.T) {
	clk := newFakeClock(at(1003))
	rec := newRecorder(clk)
	l := &Loop{Clock: clk, Log: quiet, MaxConcurrent: 1}
	l.Start(context.Background(), []Job{rec.job(t, "a", "@every 10s"), rec.job(t, "b", "@every 10s")})
	defer l.Stop()
	clk.waitPending(t, 1)
	clk.Advance(7 * time.Second)
	first := rec.next(t)
	clk.waitPending(t, 1)
	if s := l.Stats(); s.Runs != 1 {
		t.Fatalf("two runs at once with MaxConcurrent 1: %+v", s)
	}
	if l.RunNow(first.name, at(1010), report.TriggerConfirm) {
		t.Fatal("RunNow accepted beyond the concurrency limit")
	}
	rec.release <- struct{}{}
	second := rec.next(t)
	if second.name == first.name || !second.slot.Equal(at(1010)) {
		t.Fatalf("queued run %+v after %+v", second, first)
	}
	close(rec.release)
	if s := l.Stats(); s.Refused != 1 || s.Runs != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestLoop_RunNow_NoOverlapPerTrigger(t *testing.T) {
	clk := newFakeClock(at(1003))
	rec := newRecorder(clk)
	l := &Loop{Clock: clk, Log: quiet}
	l.Start(context.Background(), []Job{rec.job(t, "a", "@every 10s")})
	defer l.Stop()
	clk.waitPending(t, 1)
	clk.Advance(7 * time.Second)
	rec.next(t) // scheduled run in flight
	if !l.RunNow("a", at(1010), report.TriggerConfirm) {
		t.Fatal("confirmation refused beside a scheduled run")
	}
	got := rec.next(t)
	if got.trigger != report.TriggerConfirm || !got.slot.Equal(at(1010)) {
		t.Fatalf("confirmation run %+v", got)
	}
	if l.RunNow("a", at(1010), report.TriggerConfirm) {
		t.Fatal("second confirmation overlapped the first")
	}
	if l.RunNow("nope", at(1010), report.TriggerConfirm) {
		t.Fatal("unknown journey accepted")
	}
	close(rec.release)
	if s := l.Stats(); s.Refused != 2 || s.Runs != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestLoop_ShouldRunFalse_IsNotRunAndCounted(t *testing.T) {
	clk := newFakeClock(at(1003))
	rec := newRecorder(clk)
	close(rec.release)
	var asked []time.Time
	var mu sync.Mutex
	l := &Loop{Clock: clk, Log: quiet, ShouldRun: func(j string, slot time.Time) bool {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, slot)
		return j == "mine"
	}}
	l.Start(context.Background(), []Job{rec.job(t, "mine", "@every 10s"), rec.job(t, "theirs", "@every 10s")})
	defer l.Stop()
	clk.waitPending(t, 1)
	clk.Advance(7 * time.Second)
	if got := rec.next(t); got.name != "mine" {
		t.Fatalf("ran %+v", got)
	}
	clk.waitPending(t, 1)
	if s := l.Stats(); s.NotOwned != 1 || s.Runs != 1 {
		t.Fatalf("stats %+v", s)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 2 || !asked[0].Equal(at(1010)) {
		t.Fatalf("ShouldRun asked %v", asked)
	}
}

func TestLoop_Replace_SchedulesTheNewJobs(t *testing.T) {
	clk := newFakeClock(at(1003))
	rec := newRecorder(clk)
	close(rec.release)
	l := &Loop{Clock: clk, Log: quiet}
	l.Start(context.Background(), []Job{rec.job(t, "old", "@every 10s")})
	defer l.Stop()
	clk.waitPending(t, 1)
	l.Replace([]Job{rec.job(t, "new", "@every 5s")})
	clk.waitFor(t, "the new schedule", func(w waiter) bool { return w.at.Equal(at(1005)) })
	clk.Advance(2 * time.Second)
	if got := rec.next(t); got.name != "new" || !got.slot.Equal(at(1005)) {
		t.Fatalf("after replace ran %+v", got)
	}
	waitIdle(t, l)
	clk.waitPending(t, 2) // the abandoned timer for 1010 and the new one
	clk.Advance(5 * time.Second)
	if got := rec.next(t); got.name != "new" || !got.slot.Equal(at(1010)) {
		t.Fatalf("after replace ran %+v", got)
	}
}

func TestLoop_StopWaitsForRunsInFlight(t *testing.T) {
	clk := newFakeClock(at(1003))
	rec := newRecorder(clk)
	grace := time.Minute
	l := &Loop{Clock: clk, Log: quiet, StopGrace: grace}
	var ctxErr error
	s, _ := Parse("@every 10s")
	ended := make(chan struct{})
	l.Start(context.Background(), []Job{{Name: "a", Schedule: s, Run: func(ctx context.Context, slot time.Time, trig report.Trigger) {
		rec.got <- started{}
		<-rec.release
		ctxErr = ctx.Err()
		close(ended)
	}}})
	clk.waitPending(t, 1)
	clk.Advance(7 * time.Second)
	rec.next(t)
	stopped := make(chan bool)
	go func() { stopped <- l.Stop() }()
	clk.waitFor(t, "the grace period", func(w waiter) bool { return w.d == grace })
	select {
	case <-stopped:
		t.Fatal("Stop returned with a run in flight")
	default:
	}
	close(rec.release)
	if graceful := <-stopped; !graceful {
		t.Fatal("Stop reported a forced stop")
	}
	<-ended
	if ctxErr != nil {
		t.Fatalf("run was cancelled: %v", ctxErr)
	}
	if l.RunNow("a", at(1010), report.TriggerConfirm) {
		t.Fatal("RunNow accepted after Stop")
	}
}

func TestLoop_StopCancelsRunsAfterTheGracePeriod(t *testing.T) {
	clk := newFakeClock(at(1003))
	rec := newRecorder(clk) // never released: runs end only when cancelled
	grace := time.Minute
	l := &Loop{Clock: clk, Log: quiet, StopGrace: grace}
	l.Start(context.Background(), []Job{rec.job(t, "a", "@every 10s")})
	clk.waitPending(t, 1)
	clk.Advance(7 * time.Second)
	rec.next(t)
	stopped := make(chan bool)
	go func() { stopped <- l.Stop() }()
	clk.waitFor(t, "the grace period", func(w waiter) bool { return w.d == grace })
	clk.Advance(grace)
	if graceful := <-stopped; graceful {
		t.Fatal("Stop reported graceful although it had to cancel")
	}
}

// inflightKeys lists the runs in flight.
func (l *Loop) inflightKeys() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var keys []string
	for k := range l.inflight {
		keys = append(keys, k)
	}
	return keys
}

// waitIdle waits until no run is in flight.
func waitIdle(t *testing.T, l *Loop) {
	t.Helper()
	for i := 0; len(l.inflightKeys()) > 0; i++ {
		if i > 5000 {
			t.Fatalf("runs still in flight: %v", l.inflightKeys())
		}
		time.Sleep(time.Millisecond)
	}
}
