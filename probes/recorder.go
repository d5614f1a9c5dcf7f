package probes

import (
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/vantage-fleet/vantage/pkg/report"
)

// Recorder collects the timed steps of one run and the run-level
// attributes. It is safe for concurrent use; steps keep the order in which
// they were started.
type Recorder struct {
	mu    sync.Mutex
	now   func() time.Time
	steps []*StepTimer
	attrs []attribute.KeyValue
}

// NewRecorder returns a Recorder that reads time from now (time.Now if nil).
func NewRecorder(now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	return &Recorder{now: now}
}

// StepTimer is a step in progress. End it exactly once.
type StepTimer struct {
	rec  *Recorder
	step report.Step
	done bool
}

// Step starts a step named name.
func (r *Recorder) Step(name string) *StepTimer {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &StepTimer{rec: r, step: report.Step{Name: name, Start: r.now()}}
	r.steps = append(r.steps, s)
	return s
}

// SetAttrs adds run-level attributes (url.full, server.address, …).
func (r *Recorder) SetAttrs(kv ...attribute.KeyValue) {
	r.mu.Lock()
	r.attrs = append(r.attrs, kv...)
	r.mu.Unlock()
}

// Set adds attributes to the step; a later value for the same key wins.
func (s *StepTimer) Set(kv ...attribute.KeyValue) {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	s.step.Attrs = slices.Grow(s.step.Attrs, len(kv))
	for _, n := range kv {
		replaced := false
		for i := range s.step.Attrs {
			if s.step.Attrs[i].Key == n.Key {
				s.step.Attrs[i] = n
				replaced = true
			}
		}
		if !replaced {
			s.step.Attrs = append(s.step.Attrs, n)
		}
	}
}

// End closes the step, classifying err (nil means pass), and returns err
// unchanged so that a journey can write `return step.End(err)`.
func (s *StepTimer) End(err error) error {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	if s.done {
		return err
	}
	s.done = true
	s.step.Duration = s.rec.now().Sub(s.step.Start)
	if err == nil {
		s.step.Status = report.StatusPass
		return nil
	}
	s.step.Status, s.step.ErrorType = Classify(err)
	s.step.Error = err.Error()
	return err
}

// Steps returns the recorded steps. A step never ended is closed now as a
// probe error, since a journey that forgets a step is a prober bug.
func (r *Recorder) Steps() []report.Step {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]report.Step, 0, len(r.steps))
	for _, s := range r.steps {
		st := s.step
		if !s.done {
			st.Duration = r.now().Sub(st.Start)
			st.Status = report.StatusProbeError
			st.ErrorType = report.ErrProbeInternal
			st.Error = "step not ended by the journey"
		}
		out = append(out, st)
	}
	return out
}

// Attrs returns the run-level attributes.
func (r *Recorder) Attrs() []attribute.KeyValue {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]attribute.KeyValue(nil), r.attrs...)
}
