package verdict

import (
	"fmt"
	"sort"
	"time"

	"github.com/vantage-fleet/vantage/pkg/report"
)

// Sample is the part of a Result that verdicts, alerts and the status page
// show: who ran what, when, and how it failed. Error is already redacted by
// the agent.
type Sample struct {
	ID          string         `json:"id"`
	Journey     string         `json:"journey"`
	Region      string         `json:"region"`
	Agent       string         `json:"agent"`
	Slot        time.Time      `json:"slot"`
	Trigger     report.Trigger `json:"trigger"`
	Status      report.Status  `json:"status"`
	ErrorType   string         `json:"error_type,omitempty"`
	Error       string         `json:"error,omitempty"`
	FailingStep string         `json:"failing_step,omitempty"`
	TraceID     string         `json:"trace_id,omitempty"`
	Duration    time.Duration  `json:"duration_ns"`
}

func sampleOf(r *report.Result) Sample {
	s := Sample{ID: r.ID, Journey: r.Journey, Region: r.Region, Agent: r.Agent, Slot: r.Slot.UTC(),
		Trigger: r.Trigger, Status: r.Status, ErrorType: string(r.ErrorType), Error: r.Error,
		TraceID: r.TraceID, Duration: r.Duration}
	if st := r.FailingStep(); st != nil {
		s.FailingStep = st.Name
	}
	return s
}

// run is one counted run of a region-slot.
type run struct {
	ID     string        `json:"id"`
	Agent  string        `json:"agent"`
	Status report.Status `json:"status"`
}

// slotRec is a region-slot: every run of one slot in one region, scheduled
// and confirmation runs together.
type slotRec struct {
	Slot time.Time `json:"slot"`
	Runs []run     `json:"runs"`
}

// outcome returns the failed and passed run counts of a region-slot.
func (s *slotRec) outcome() (fails, passes int) {
	for _, r := range s.Runs {
		switch r.Status {
		case report.StatusFail:
			fails++
		case report.StatusPass:
			passes++
		}
	}
	return
}

// machine is the trip/clear hysteresis, replayed over region-slots in slot
// order so that the verdict does not depend on the order results arrive in.
type machine struct {
	Failing    bool      `json:"failing"`
	ConsecFail int       `json:"consec_fail"`
	ConsecPass int       `json:"consec_pass"`
	RunStart   time.Time `json:"run_start"`
	FirstFail  time.Time `json:"first_fail"`
}

// step applies one region-slot. corroborated says that the same slot also
// failed in another region: two regions failing at the same instant are
// two independent observations, so the slot counts one extra sample. This
// is what lets the confirmation round of the first failure (the other
// regions' owners re-run the same slot at once) classify a global outage
// within seconds instead of after each region's next scheduled run.
func (m *machine) step(cfg *Config, s *slotRec, corroborated bool) {
	fails, passes := s.outcome()
	if fails+passes == 0 {
		return
	}
	if fails > passes { // most of its runs failed
		if m.ConsecFail == 0 {
			m.RunStart = s.Slot
		}
		// Each failed run is a sample: a failed scheduled run plus a failed
		// confirmation of the same slot trip at once.
		m.ConsecFail += fails
		if corroborated {
			m.ConsecFail++
		}
		m.ConsecPass = 0
		if !m.Failing && m.ConsecFail >= cfg.FailuresToTrip {
			m.Failing, m.FirstFail = true, m.RunStart
		}
		return
	}
	m.ConsecPass++
	m.ConsecFail = 0
	if m.Failing && m.ConsecPass >= cfg.SuccessesToClear {
		m.Failing = false
	}
}

// cell is the state of one journey in one region.
type cell struct {
	Slots    []slotRec `json:"slots"` // sorted by Slot, bounded by keepSlots
	Base     machine   `json:"base"`  // the machine after the slots already pruned
	LastData time.Time `json:"last_data"`
	Latest   *Sample   `json:"latest,omitempty"`
	LastFail *Sample   `json:"last_fail,omitempty"`
	State    State     `json:"state"`
	// derived by Evaluate from the fields above, not persisted
	m        machine
	suspects []string
}

// journeyState is everything known about one journey.
type journeyState struct {
	Kind       string           `json:"kind"`
	Interval   time.Duration    `json:"interval"`
	Components []string         `json:"components,omitempty"`
	Runbook    string           `json:"runbook,omitempty"`
	LastSeen   time.Time        `json:"last_seen"`
	Cells      map[string]*cell `json:"cells"`
	Scope      Scope            `json:"scope"`
	// dirty: results arrived since the cells were last replayed.
	dirty bool
}

// Tracker holds the verdict state. It is not safe for concurrent use; its
// owner serialises calls.
type Tracker struct {
	cfg      Config
	journeys map[string]*journeyState
	members  Membership
	open     map[string]Condition
	counters Counters
	// heardFrom is when this process could first receive results (see
	// HoldNoData); silence before it is not the probers'.
	heardFrom time.Time
}

// New returns an empty Tracker. Zero thresholds in cfg take the defaults.
func New(cfg Config) *Tracker {
	d := DefaultConfig()
	fill := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	fill(&cfg.FailuresToTrip, d.FailuresToTrip)
	fill(&cfg.SuccessesToClear, d.SuccessesToClear)
	fill(&cfg.Window, d.Window)
	fill(&cfg.NoDataIntervals, d.NoDataIntervals)
	fill(&cfg.GlobalMinRegions, d.GlobalMinRegions)
	for _, f := range []struct {
		p *float64
		v float64
	}{{&cfg.DegradedRatio, d.DegradedRatio}, {&cfg.SuspectRatio, d.SuspectRatio}, {&cfg.GlobalRatio, d.GlobalRatio}} {
		if *f.p <= 0 {
			*f.p = f.v
		}
	}
	for _, f := range []struct {
		p *time.Duration
		v time.Duration
	}{{&cfg.MaxSlotSkew, d.MaxSlotSkew}, {&cfg.MaxSlotAge, d.MaxSlotAge}, {&cfg.ForgetAfter, d.ForgetAfter}} {
		if *f.p <= 0 {
			*f.p = f.v
		}
	}
	return &Tracker{cfg: cfg, journeys: map[string]*journeyState{}, open: map[string]Condition{}}
}

// Config returns the thresholds in use.
func (t *Tracker) Config() Config { return t.cfg }

// Counters returns what Accept has counted.
func (t *Tracker) Counters() Counters { return t.counters }

// keepSlots bounds the region-slots kept per cell; older ones are folded
// into the cell's base machine.
func (t *Tracker) keepSlots() int {
	return t.cfg.Window + t.cfg.FailuresToTrip + t.cfg.SuccessesToClear
}

// maxFieldLen bounds the strings a Result may carry into the state.
const maxFieldLen = 256

// Accept records one Result at the aggregator time now. A result that is
// invalid, a duplicate, or whose slot lies beyond the skew bound or before
// the kept history returns an error and changes nothing but a counter.
// Call Evaluate afterwards to learn what changed.
func (t *Tracker) Accept(r report.Result, now time.Time) error {
	if err := validate(&r); err != nil {
		t.counters.Invalid++
		return err
	}
	if r.Slot.After(now.Add(t.cfg.MaxSlotSkew)) {
		t.counters.SlotFuture++
		return fmt.Errorf("%w: slot %s is %s ahead of %s", ErrSlotFuture, r.Slot.UTC().Format(time.RFC3339), r.Slot.Sub(now), now.UTC().Format(time.RFC3339))
	}
	if r.Slot.Before(now.Add(-t.cfg.MaxSlotAge)) {
		t.counters.SlotOld++
		return fmt.Errorf("%w: slot %s is older than %s", ErrSlotOld, r.Slot.UTC().Format(time.RFC3339), t.cfg.MaxSlotAge)
	}
	j := t.journeys[r.Journey]
	if j == nil {
		j = &journeyState{Cells: map[string]*cell{}, Scope: ScopeNone}
		t.journeys[r.Journey] = j
	}
	c := j.Cells[r.Region]
	if c != nil && len(c.Slots) >= t.keepSlots() && r.Slot.Before(c.Slots[0].Slot) {
		t.counters.SlotOld++
		return fmt.Errorf("%w: slot %s precedes the kept history", ErrSlotOld, r.Slot.UTC().Format(time.RFC3339))
	}
	if c != nil && c.has(r.ID) {
		t.counters.Duplicate++
		return ErrDuplicate
	}
	// The newest result describes the journey (kind, interval, components
	// and runbook follow config changes).
	if !r.Slot.Before(j.LastSeen) || j.Kind == "" {
		j.Kind, j.Interval, j.Runbook = r.Kind, r.Interval, r.Runbook
		j.Components = append([]string(nil), r.Components...)
		sort.Strings(j.Components)
	}
	if now.After(j.LastSeen) {
		j.LastSeen = now
	}
	if c == nil {
		c = &cell{LastData: now, State: StateOK}
		j.Cells[r.Region] = c
	}
	t.counters.Accepted++
	j.dirty = true
	if r.Status == report.StatusProbeError {
		t.counters.ProbeErrors++
		c.remember(r.ID, r.Slot)
		return nil
	}
	s := sampleOf(&r)
	if c.Latest == nil || !s.Slot.Before(c.Latest.Slot) {
		c.Latest = &s
	}
	if s.Status == report.StatusFail && (c.LastFail == nil || !s.Slot.Before(c.LastFail.Slot)) {
		c.LastFail = &s
	}
	// A late replay of an old slot is history, not fresh data.
	if r.Slot.After(now.Add(-t.noData(j))) && now.After(c.LastData) {
		c.LastData = now
	}
	c.add(r.Slot, run{ID: r.ID, Agent: r.Agent, Status: r.Status})
	for len(c.Slots) > t.keepSlots() {
		c.Base.step(&t.cfg, &c.Slots[0], false)
		c.Slots = c.Slots[1:]
	}
	return nil
}

func validate(r *report.Result) error {
	bad := func(what string) error { return fmt.Errorf("%w: %s", ErrInvalid, what) }
	switch {
	case r.Journey == "" || len(r.Journey) > maxFieldLen:
		return bad("journey name empty or too long")
	case r.Region == "" || len(r.Region) > maxFieldLen:
		return bad("region empty or too long")
	case r.Agent == "" || len(r.Agent) > maxFieldLen:
		return bad("agent empty or too long")
	case r.ID == "" || len(r.ID) > maxFieldLen:
		return bad("id empty or too long")
	case r.Slot.IsZero():
		return bad("slot missing")
	case !r.Status.Valid():
		return bad(fmt.Sprintf("status %q", r.Status))
	case !r.Trigger.Valid():
		return bad(fmt.Sprintf("trigger %q", r.Trigger))
	case r.Interval <= 0:
		return bad("interval missing")
	case len(r.Components) > 32:
		return bad("more than 32 components")
	}
	return nil
}

// has reports whether the run with id is already counted in the cell.
func (c *cell) has(id string) bool {
	for i := range c.Slots {
		for _, r := range c.Slots[i].Runs {
			if r.ID == id {
				return true
			}
		}
	}
	return false
}

// remember keeps a probe_error run's ID so that a re-send is still a
// duplicate; outcome and the agent ratios skip such runs.
func (c *cell) remember(id string, slot time.Time) {
	c.add(slot, run{ID: id, Status: report.StatusProbeError})
}

func (c *cell) add(slot time.Time, r run) {
	i := sort.Search(len(c.Slots), func(i int) bool { return !c.Slots[i].Slot.Before(slot) })
	if i < len(c.Slots) && c.Slots[i].Slot.Equal(slot) {
		c.Slots[i].Runs = append(c.Slots[i].Runs, r)
		return
	}
	c.Slots = append(c.Slots, slotRec{})
	copy(c.Slots[i+1:], c.Slots[i:])
	c.Slots[i] = slotRec{Slot: slot.UTC(), Runs: []run{r}}
}

// HoldNoData tells the tracker that it could not receive results before
// since (the aggregator was down and has just restored its state): the
// no-data rule counts a region's silence from since at the earliest, so a
// restart does not report results missing, nor turn an open incident's
// scope to unknown, while the probers replay what they spooled meanwhile.
func (t *Tracker) HoldNoData(since time.Time) { t.heardFrom = since }

// noData is how long a region may stay silent for journey j.
func (t *Tracker) noData(j *journeyState) time.Duration {
	return time.Duration(t.cfg.NoDataIntervals) * j.Interval
}

// SetMembership replaces the fleet view.
func (t *Tracker) SetMembership(m Membership) {
	cp := Membership{Known: m.Known, Probers: map[string][]string{}}
	for r, ps := range m.Probers {
		cp.Probers[r] = append([]string(nil), ps...)
		sort.Strings(cp.Probers[r])
	}
	t.members = cp
}

// Membership returns the fleet view in use.
func (t *Tracker) Membership() Membership { return t.members }

// Forget drops a journey removed from config; its open conditions resolve
// at the next Evaluate.
func (t *Tracker) Forget(journey string) { delete(t.journeys, journey) }
