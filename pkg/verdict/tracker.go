package verdict

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
	"unique"

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

// sample is the compact form of a Sample kept per cell: the journey and
// region are the cell's, the Result and trace IDs share one string, the
// names and error text are one interned detail (one copy per distinct
// detail in the process) and the times are Unix nanoseconds.
type sample struct {
	ids            string // the Result ID, then the trace ID; "" means no sample
	idLen          uint16 // the length of the Result ID in ids
	packed         uint8  // packedID, packedTrace: stored as bytes, shown as lower-case hex
	trigger        uint8  // index in triggerCodes
	status         uint8  // index in statusCodes
	detail         unique.Handle[sampleDetail]
	slot, duration int64
}

// sampleDetail is the part of a sample that repeats across cells.
type sampleDetail struct {
	agent, errorType, err, failingStep string
}

// Flags of sample.packed.
const (
	packedID    = 1
	packedTrace = 2
)

func newSample(id, traceID string, d sampleDetail, slot, duration int64, trigger report.Trigger, status report.Status) sample {
	s := sample{detail: unique.Make(d), slot: slot, duration: duration,
		trigger: uint8(slices.Index(triggerCodes, trigger)), status: uint8(slices.Index(statusCodes, status))}
	b := make([]byte, 0, len(id)+len(traceID))
	if isLowerHex(id) {
		b, _ = hex.AppendDecode(b, []byte(id)) // checked by isLowerHex
		s.packed |= packedID
	} else {
		b = append(b, id...)
	}
	s.idLen = uint16(len(b))
	if isLowerHex(traceID) {
		b, _ = hex.AppendDecode(b, []byte(traceID))
		s.packed |= packedTrace
	} else {
		b = append(b, traceID...)
	}
	s.ids = string(b)
	return s
}

// isLowerHex reports whether s is a non-empty even-length lower-case hex
// string (so that decoding and encoding it again gives s back).
func isLowerHex(s string) bool {
	if s == "" || len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func sampleOf(r *report.Result) sample {
	d := sampleDetail{agent: r.Agent, errorType: string(r.ErrorType), err: r.Error}
	if st := r.FailingStep(); st != nil {
		d.failingStep = st.Name
	}
	return newSample(r.ID, r.TraceID, d, r.Slot.UnixNano(), int64(r.Duration), r.Trigger, r.Status)
}

func (s *sample) present() bool { return s.ids != "" }
func (s *sample) id() string {
	if s.packed&packedID != 0 {
		return hex.EncodeToString([]byte(s.ids[:s.idLen]))
	}
	return s.ids[:s.idLen]
}

func (s *sample) traceID() string {
	if s.packed&packedTrace != 0 {
		return hex.EncodeToString([]byte(s.ids[s.idLen:]))
	}
	return s.ids[s.idLen:]
}
func (s *sample) d() sampleDetail     { return s.detail.Value() }
func (s *sample) agent() string       { return s.d().agent }
func (s *sample) err() string         { return s.d().err }
func (s *sample) failingStep() string { return s.d().failingStep }

// public is the Sample of journey j in region.
func (s *sample) public(journey, region string) *Sample {
	d := s.d()
	return &Sample{ID: s.id(), Journey: journey, Region: region, Agent: d.agent, Slot: at(s.slot), Trigger: triggerCodes[s.trigger],
		Status: statusCodes[s.status], ErrorType: d.errorType, Error: d.err, FailingStep: d.failingStep, TraceID: s.traceID(),
		Duration: time.Duration(s.duration)}
}

// intern returns the process-wide copy of s, so that the names repeated
// in every cell (agents, kinds, components, error texts) are stored once
// and do not pin the buffers the Result was decoded from.
func intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}

// at converts Unix nanoseconds back to a UTC time; 0 is the zero time.
func at(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// runStatus is a run's status in one byte.
type runStatus uint8

const (
	runPass runStatus = iota
	runFail
	runProbeError
)

func runStatusOf(s report.Status) runStatus {
	switch s {
	case report.StatusPass:
		return runPass
	case report.StatusFail:
		return runFail
	}
	return runProbeError
}

// run is one counted run of a region-slot. It holds no pointer, so the
// garbage collector does not scan the run arrays. A re-sent Result is a
// duplicate: one with the canonical ID (report.ResultID of journey, region,
// agent, slot, trigger) is recognised by agent, slot and trigger; the hash
// of any other ID is kept in cell.ext.
type run struct {
	slot    int64  // Unix ns
	agent   uint16 // index into cell.agents
	status  runStatus
	trigger uint8 // index into triggerCodes, | runOtherID
}

// runOtherID marks a run whose Result ID is not the canonical one.
const runOtherID = 0x80

// extID is the hash of a non-canonical Result ID of a kept run.
type extID struct {
	slot int64
	id   uint64
}

// idHash is the first 8 bytes of the SHA-256 of a Result ID: collisions
// among the few runs of one cell are out of reach.
func idHash(id string) uint64 {
	sum := sha256.Sum256([]byte(id))
	return binary.LittleEndian.Uint64(sum[:8])
}

// slotEnd returns the index after the region-slot starting at runs[i].
func slotEnd(runs []run, i int) int {
	j := i + 1
	for j < len(runs) && runs[j].slot == runs[i].slot {
		j++
	}
	return j
}

// superseded reports whether a region-slot's own scheduled run passed
// while the confirmation runs of the same slot, which other regions asked
// for later, failed. With phase-shifted slots a region runs slot S before
// the region that asks for confirmation does, so an outage that began in
// between shows first in the confirmations: the later evidence.
func superseded(runs []run) bool {
	var sf, sp, cf, cp int
	for _, r := range runs {
		confirm := r.trigger&^runOtherID == confirmCode
		switch {
		case r.status == runFail && confirm:
			cf++
		case r.status == runPass && confirm:
			cp++
		case r.status == runFail:
			sf++
		case r.status == runPass:
			sp++
		}
	}
	return sp > 0 && sp >= sf && cf > cp
}

// confirmCode is the run trigger code of confirmation runs.
var confirmCode = uint8(slices.Index(triggerCodes, report.TriggerConfirm))

// confirmOutcome counts only a region-slot's confirmation runs, by agent.
func confirmOutcome(runs []run) (fails, passes int) {
	return agentOutcome(runs, func(r run) bool { return r.trigger&^runOtherID == confirmCode })
}

// outcome returns how many agents failed and passed a region-slot. An
// agent counts once however many runs it made of the slot (a scheduled run
// and a confirmation of the same slot), as failed only if none of them
// passed: one prober's own trouble is one observation, not two.
func outcome(runs []run) (fails, passes int) {
	return agentOutcome(runs, func(run) bool { return true })
}

func agentOutcome(runs []run, use func(run) bool) (fails, passes int) {
	for i, r := range runs {
		if !use(r) || (r.status != runFail && r.status != runPass) {
			continue
		}
		first, failed := true, r.status == runFail
		for j, o := range runs {
			if o.agent != r.agent || !use(o) || (o.status != runFail && o.status != runPass) {
				continue
			}
			if j < i {
				first = false
				break
			}
			failed = failed && o.status == runFail
		}
		if !first {
			continue
		}
		if failed {
			fails++
		} else {
			passes++
		}
	}
	return
}

// machine is the trip/clear hysteresis, replayed over region-slots in slot
// order so that the verdict does not depend on the order results arrive in.
type machine struct {
	failing    bool
	consecFail int32
	consecPass int32
	runStart   int64 // Unix ns
	firstFail  int64 // Unix ns
}

// step applies one region-slot. corroborated says that the same slot also
// failed in another region: two regions failing at the same instant are
// two independent observations, so the slot counts one extra sample. This
// is what lets the confirmation round of the first failure (the other
// regions' owners re-run the same slot at once) classify a global outage
// within seconds instead of after each region's next scheduled run.
func (m *machine) step(cfg *Config, runs []run, corroborated bool) {
	m.stepCounts(cfg, runs, outcome, corroborated)
}

// stepCounts is step with the way the slot's runs are counted.
func (m *machine) stepCounts(cfg *Config, runs []run, count func([]run) (int, int), corroborated bool) {
	fails, passes := count(runs)
	if fails+passes == 0 {
		return
	}
	if fails > passes { // most of its runs failed
		if m.consecFail == 0 {
			m.runStart = runs[0].slot
		}
		// Each failed run is a sample: a failed scheduled run plus a failed
		// confirmation of the same slot trip at once.
		m.consecFail = satAdd(m.consecFail, fails)
		if corroborated {
			m.consecFail = satAdd(m.consecFail, 1)
		}
		m.consecPass = 0
		if !m.failing && int(m.consecFail) >= cfg.FailuresToTrip {
			m.failing, m.firstFail = true, m.runStart
		}
		return
	}
	m.consecPass = satAdd(m.consecPass, 1)
	m.consecFail = 0
	if m.failing && int(m.consecPass) >= cfg.SuccessesToClear {
		m.failing = false
	}
}

func satAdd(a int32, b int) int32 {
	if int64(a)+int64(b) > math.MaxInt32 {
		return math.MaxInt32
	}
	return a + int32(b)
}

// cell is the state of one journey in one region.
type cell struct {
	region   string   // interned
	runs     []run    // sorted by slot, arrival order within a slot; at most keepSlots distinct slots
	agents   []string // the interned agent names runs refer to
	ext      *[]extID // the hashed non-canonical IDs of kept runs (rare)
	base     machine  // the machine after the slots already pruned
	lastData int64    // Unix ns
	latest   sample   // absent until a pass or fail arrives
	lastFail *sample
	state    State
	// derived by Evaluate from the fields above, not persisted
	firstFail int64 // Unix ns: the replayed machine's first failing slot
	wFails    int32 // failing region-slots among the last Window with runs
	wN        int32 // region-slots with runs among the last Window
	failing   bool  // the replayed machine is failing
}

// journeyState is everything known about one journey.
type journeyState struct {
	kind       string
	interval   time.Duration
	components []string
	runbook    string
	lastSeen   int64  // Unix ns
	cells      []cell // sorted by region
	scope      Scope
	// dirty: results arrived since the cells were last replayed.
	dirty bool
	// unsaved: the durable record is out of date (see Changes).
	unsaved bool
	// suspects: the suspect agents per region, derived by Evaluate.
	suspects map[string][]string
	// As of the journey's last evaluation: the membership generation, the
	// earliest time (Unix ns) a cell with data goes silent, the latest a
	// silent one stops being silent (only if the clock went back), and the
	// cells without data.
	membersGen               uint64
	nextSilence, lastSilence int64
	silentCells              int
}

// Tracker holds the verdict state. It is not safe for concurrent use; its
// owner serialises calls.
type Tracker struct {
	cfg      Config
	journeys map[string]*journeyState
	members  Membership
	open     map[string]Condition
	counters Counters
	// removed holds the journeys dropped since the last MarkSaved.
	removed map[string]bool
	// names caches the sorted journey names; nil when stale.
	names []string
	// membersGen counts SetMembership calls.
	membersGen uint64
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
	return &Tracker{cfg: cfg, journeys: map[string]*journeyState{}, open: map[string]Condition{}, removed: map[string]bool{}}
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
	slot, nowNs := r.Slot.UnixNano(), now.UnixNano()
	j := t.journeys[r.Journey]
	c := (*cell)(nil)
	if j != nil {
		c = j.cell(r.Region)
	}
	if c != nil && len(c.runs) > 0 && slot < c.runs[0].slot && c.slotCount() >= t.keepSlots() {
		t.counters.SlotOld++
		return fmt.Errorf("%w: slot %s precedes the kept history", ErrSlotOld, r.Slot.UTC().Format(time.RFC3339))
	}
	// A Result whose ID is the canonical one (report.ResultID of its
	// fields) is identified by its agent, slot and trigger, which the run
	// keeps anyway; only other IDs are kept, hashed, in cell.ext.
	trig := uint8(slices.Index(triggerCodes, r.Trigger))
	canonical := r.ID == report.ResultID(r.Journey, r.Region, r.Agent, r.Slot, r.Trigger)
	agent := -1
	if c != nil {
		agent = slices.Index(c.agents, r.Agent)
	}
	var ext uint64
	if !canonical {
		trig |= runOtherID
		ext = idHash(r.ID)
	}
	if c != nil && c.has(&r, canonical, agent, slot, trig, ext) {
		t.counters.Duplicate++
		return ErrDuplicate
	}
	if c != nil && agent < 0 && len(c.agents) >= maxAgentsPerCell {
		t.counters.Invalid++
		return fmt.Errorf("%w: more than %d agents in region %q", ErrInvalid, maxAgentsPerCell, r.Region)
	}
	if j == nil {
		j = &journeyState{scope: ScopeNone}
		t.journeys[strings.Clone(r.Journey)] = j
		t.names = nil
		delete(t.removed, r.Journey)
	}
	// The newest result describes the journey (kind, interval, components
	// and runbook follow config changes).
	if slot >= j.lastSeen || j.kind == "" {
		j.describe(&r)
	}
	if nowNs > j.lastSeen {
		j.lastSeen = nowNs
	}
	if c == nil {
		c = j.addCell(cell{region: intern(r.Region), lastData: nowNs, state: StateOK})
	}
	if agent < 0 {
		agent = len(c.agents)
		c.agents = append(c.agents, intern(r.Agent))
	}
	t.counters.Accepted++
	j.dirty, j.unsaved = true, true
	if r.Status == report.StatusProbeError {
		// Keep the run's ID so that a re-send is still a duplicate;
		// outcome and the agent ratios skip such runs.
		t.counters.ProbeErrors++
		c.add(run{slot: slot, agent: uint16(agent), status: runProbeError, trigger: trig}, ext)
		t.prune(c)
		return nil
	}
	fresh := !c.latest.present() || slot >= c.latest.slot
	if fresh {
		c.latest = sampleOf(&r)
	}
	if r.Status == report.StatusFail && (c.lastFail == nil || slot >= c.lastFail.slot) {
		if fresh {
			s := c.latest
			c.lastFail = &s
		} else {
			s := sampleOf(&r)
			c.lastFail = &s
		}
	}
	// A late replay of an old slot is history, not fresh data.
	if r.Slot.After(now.Add(-t.noData(j))) && nowNs > c.lastData {
		c.lastData = nowNs
	}
	c.add(run{slot: slot, agent: uint16(agent), status: runStatusOf(r.Status), trigger: trig}, ext)
	t.prune(c)
	return nil
}

// maxAgentsPerCell bounds the distinct agents of one (journey, region).
const maxAgentsPerCell = 1 << 12

// cell returns the journey's cell in region, or nil.
func (j *journeyState) cell(region string) *cell {
	i, ok := slices.BinarySearchFunc(j.cells, region, func(c cell, r string) int { return strings.Compare(c.region, r) })
	if !ok {
		return nil
	}
	return &j.cells[i]
}

// addCell inserts c (whose region is new) and returns it. Pointers to
// other cells of j are invalid afterwards.
func (j *journeyState) addCell(c cell) *cell {
	i, _ := slices.BinarySearchFunc(j.cells, c.region, func(c cell, r string) int { return strings.Compare(c.region, r) })
	if len(j.cells) == cap(j.cells) { // grow by a quarter, not double: cells are many
		j.cells = append(make([]cell, 0, len(j.cells)+len(j.cells)/4+1), j.cells...)
	}
	j.cells = slices.Insert(j.cells, i, c)
	return &j.cells[i]
}

// describe copies the journey's description from r, allocating only what
// changed.
func (j *journeyState) describe(r *report.Result) {
	if j.kind != r.Kind {
		j.kind = intern(r.Kind)
	}
	j.interval = r.Interval
	if j.runbook != r.Runbook {
		j.runbook = strings.Clone(r.Runbook)
	}
	if slices.Equal(j.components, r.Components) {
		return
	}
	cs := slices.Clone(r.Components)
	slices.Sort(cs)
	if slices.Equal(j.components, cs) {
		return
	}
	for i := range cs {
		cs[i] = intern(cs[i])
	}
	j.components = cs
}

// prune folds the region-slots beyond keepSlots into the base machine and
// drops the agents no run refers to any more.
func (t *Tracker) prune(c *cell) {
	n := c.slotCount()
	if n <= t.keepSlots() {
		return
	}
	cut := 0
	for ; n > t.keepSlots(); n-- {
		end := slotEnd(c.runs, cut)
		c.base.step(&t.cfg, c.runs[cut:end], false)
		cut = end
	}
	c.runs = append(c.runs[:0], c.runs[cut:]...)
	if c.ext != nil {
		*c.ext = slices.DeleteFunc(*c.ext, func(e extID) bool { return e.slot < c.runs[0].slot })
		if len(*c.ext) == 0 {
			c.ext = nil
		}
	}
	if len(c.agents) < 2 {
		return
	}
	used := make([]bool, len(c.agents))
	for _, r := range c.runs {
		used[r.agent] = true
	}
	if !slices.Contains(used, false) {
		return
	}
	remap := make([]uint16, len(c.agents))
	agents := c.agents[:0]
	for i, a := range c.agents {
		if used[i] {
			remap[i] = uint16(len(agents))
			agents = append(agents, a)
		}
	}
	clear(c.agents[len(agents):])
	c.agents = agents
	for i := range c.runs {
		c.runs[i].agent = remap[c.runs[i].agent]
	}
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
	case r.Slot.Year() < 1971 || r.Slot.Year() > 2200:
		return bad("slot out of range")
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

// has reports whether the run of r (with the canonical ID or not, its
// agent index or -1, slot, trigger byte and ID hash) is already counted.
func (c *cell) has(r *report.Result, canonical bool, agent int, slot int64, trig uint8, ext uint64) bool {
	if canonical && agent >= 0 {
		for _, x := range c.runs {
			if x.slot == slot && int(x.agent) == agent && x.trigger == trig {
				return true
			}
		}
	}
	if c.ext == nil && canonical {
		return false
	}
	if canonical {
		ext = idHash(r.ID)
	}
	for _, e := range c.extIDs() {
		if e.id == ext {
			return true
		}
	}
	if !canonical {
		// Another run's canonical ID may have been re-sent in this one.
		for _, x := range c.runs {
			if x.trigger&runOtherID == 0 && report.ResultID(r.Journey, r.Region, c.agents[x.agent], at(x.slot), triggerCodes[x.trigger]) == r.ID {
				return true
			}
		}
	}
	return false
}

// slotCount returns how many region-slots the cell keeps.
func (c *cell) slotCount() int {
	n := 0
	for i := 0; i < len(c.runs); i = slotEnd(c.runs, i) {
		n++
	}
	return n
}

// extIDs returns the hashed non-canonical IDs.
func (c *cell) extIDs() []extID {
	if c.ext == nil {
		return nil
	}
	return *c.ext
}

// add inserts r after the runs of the same or earlier slots, and the hash
// of its ID when that is not the canonical one.
func (c *cell) add(r run, ext uint64) {
	i := len(c.runs)
	for i > 0 && c.runs[i-1].slot > r.slot {
		i--
	}
	c.runs = slices.Insert(c.runs, i, r)
	if r.trigger&runOtherID != 0 {
		if c.ext == nil {
			c.ext = new([]extID)
		}
		*c.ext = append(*c.ext, extID{slot: r.slot, id: ext})
	}
}

// HoldNoData tells the tracker that it could not receive results before
// since (the aggregator was down and has just restored its state): the
// no-data rule counts a region's silence from since at the earliest, so a
// restart does not report results missing, nor turn an open incident's
// scope to unknown, while the probers replay what they spooled meanwhile.
func (t *Tracker) HoldNoData(since time.Time) { t.heardFrom = since }

// noData is how long a region may stay silent for journey j.
func (t *Tracker) noData(j *journeyState) time.Duration {
	return time.Duration(t.cfg.NoDataIntervals) * j.interval
}

// SetMembership replaces the fleet view.
func (t *Tracker) SetMembership(m Membership) {
	cp := Membership{Known: m.Known, Probers: map[string][]string{}}
	for r, ps := range m.Probers {
		cp.Probers[r] = append([]string(nil), ps...)
		sort.Strings(cp.Probers[r])
	}
	changed := false
	for _, r := range unionKeys(t.members.Probers, cp.Probers) {
		was := t.members.Known && len(t.members.Probers[r]) >= 2
		now := cp.Known && len(cp.Probers[r]) >= 2
		changed = changed || was != now
	}
	t.members = cp
	t.membersGen++
	if changed {
		// Whether a region can confirm its own failures changes how its
		// slots are corroborated: replay every journey.
		for _, j := range t.journeys {
			j.dirty = true
		}
	}
}

func unionKeys(a, b map[string][]string) []string {
	var out []string
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

// Membership returns the fleet view in use.
func (t *Tracker) Membership() Membership { return t.members }

// Forget drops a journey removed from config; its open conditions resolve
// at the next Evaluate.
func (t *Tracker) Forget(journey string) {
	if _, ok := t.journeys[journey]; ok {
		delete(t.journeys, journey)
		t.names = nil
		t.removed[journey] = true
	}
}
