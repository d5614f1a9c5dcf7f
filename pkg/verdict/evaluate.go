package verdict

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Alert names, shared with pkg/alert and the Alertmanager inhibit rule.
const (
	AlertGlobal         = "VantageJourneyGlobal"
	AlertRegional       = "VantageJourneyRegional"
	AlertRegionBlind    = "VantageRegionBlind"
	AlertResultsMissing = "VantageResultsMissing"
	AlertProberSuspect  = "VantageProberSuspect"
)

// Condition is one alert-worthy fact: a failing incident, a blind region,
// missing results or a suspect prober. Key identifies it deterministically
// across evaluations and restarts.
type Condition struct {
	Key        string   `json:"key"`
	Alert      string   `json:"alert"`
	Severity   string   `json:"severity"`
	Scope      Scope    `json:"scope,omitempty"`
	Incident   string   `json:"incident,omitempty"`
	Journeys   []string `json:"journeys,omitempty"`
	Kinds      []string `json:"kinds,omitempty"`
	Regions    []string `json:"regions,omitempty"`
	Components []string `json:"components,omitempty"`
	Agent      string   `json:"agent,omitempty"`
	Summary    string   `json:"summary"`
	// FirstFailingSlot is the first slot of the failing run that tripped.
	FirstFailingSlot time.Time `json:"first_failing_slot,omitempty"`
	FailingStep      string    `json:"failing_step,omitempty"`
	SampleError      string    `json:"sample_error,omitempty"`
	TraceID          string    `json:"trace_id,omitempty"`
	Runbook          string    `json:"runbook,omitempty"`
	// Since is the aggregator time the condition was first seen.
	Since time.Time `json:"since"`
}

// same reports whether two conditions would notify the same thing; Since
// and the sample fields do not count (a new sample error is not a new page).
func (c Condition) same(o Condition) bool {
	return c.Key == o.Key && c.Alert == o.Alert && c.Scope == o.Scope &&
		strings.Join(c.Journeys, ",") == strings.Join(o.Journeys, ",") &&
		strings.Join(c.Regions, ",") == strings.Join(o.Regions, ",") && c.Agent == o.Agent
}

// ChangeType says what happened to a condition.
type ChangeType string

// The change types.
const (
	Opened   ChangeType = "opened"
	Updated  ChangeType = "updated"
	Resolved ChangeType = "resolved"
)

// Change is one condition opening, changing or resolving at At.
type Change struct {
	Type      ChangeType `json:"type"`
	Condition Condition  `json:"condition"`
	At        time.Time  `json:"at"`
}

// CellChange is a (journey, region) verdict moving from one state to
// another; failing → ok is "recovered".
type CellChange struct {
	Journey, Region string
	From, To        State
}

// Outcome is what one Evaluate changed.
type Outcome struct {
	Cells   []CellChange
	Changes []Change
}

// Evaluate computes every verdict at now, expires journeys silent for
// ForgetAfter, and returns what changed since the previous Evaluate.
func (t *Tracker) Evaluate(now time.Time) Outcome {
	var out Outcome
	nowNs := now.UnixNano()
	for name, j := range t.journeys {
		if nowNs-j.lastSeen > int64(t.cfg.ForgetAfter) {
			delete(t.journeys, name)
			t.removed[name] = true
			t.names = nil
		}
	}
	suspects := map[[2]string]*Condition{} // (region, agent)
	names := t.journeyNames()
	for _, name := range names {
		j := t.journeys[name]
		// Without new results, membership change or a cell reaching its
		// no-data deadline, nothing of this journey can change.
		if !j.dirty && j.membersGen == t.membersGen && nowNs < j.nextSilence && nowNs >= j.lastSilence && len(j.suspects) == 0 {
			continue
		}
		// Replaying region-slots is the costly part: only journeys that
		// received results since the last Evaluate are replayed.
		if j.dirty {
			failed := failedSlots(j)
			clear(j.suspects)
			for i := range j.cells {
				c := &j.cells[i]
				c.replay(&t.cfg, failed, t.confirmable(c.region))
				if s := t.suspectAgents(c); len(s) > 0 {
					if j.suspects == nil {
						j.suspects = map[string][]string{}
					}
					j.suspects[c.region] = s
				}
			}
			j.dirty = false
		}
		noData := int64(t.noData(j))
		j.membersGen, j.nextSilence, j.lastSilence, j.silentCells = t.membersGen, math.MaxInt64, math.MinInt64, 0
		for i := range j.cells {
			c := &j.cells[i]
			region := c.region
			st := t.cellState(j, c, now)
			if st != c.state {
				out.Cells = append(out.Cells, CellChange{Journey: name, Region: region, From: c.state, To: st})
				c.state = st
				j.unsaved = true
			}
			if !st.HasData() {
				j.silentCells++
				j.lastSilence = max(j.lastSilence, c.lastData+noData)
				continue
			}
			j.nextSilence = min(j.nextSilence, c.lastData+noData)
			for _, agent := range j.suspects[region] {
				k := [2]string{region, agent}
				sc := suspects[k]
				if sc == nil {
					sc = &Condition{Alert: AlertProberSuspect, Severity: "info", Agent: agent, Regions: []string{region},
						Key: AlertProberSuspect + "|" + region + "|" + agent}
					suspects[k] = sc
				}
				sc.Journeys = append(sc.Journeys, name)
				if c.lastFail != nil && c.lastFail.agent() == agent {
					sc.FailingStep, sc.SampleError, sc.TraceID = c.lastFail.failingStep(), c.lastFail.err(), c.lastFail.traceID()
				}
			}
		}
		if sc := t.scope(j, j.scope); sc != j.scope {
			j.scope, j.unsaved = sc, true
		}
	}
	conds := t.productConditions(names)
	for _, sc := range suspects {
		sc.Summary = fmt.Sprintf("Prober %s in %s fails %s while other probers in its region pass: the prober is suspect, not the product", sc.Agent, sc.Regions[0], strings.Join(sc.Journeys, ", "))
		conds = append(conds, *sc)
	}
	conds = append(conds, t.dataConditions(names)...)

	seen := map[string]bool{}
	for _, c := range conds {
		seen[c.Key] = true
		prev, ok := t.open[c.Key]
		switch {
		case !ok:
			c.Since = now
			t.open[c.Key] = c
			out.Changes = append(out.Changes, Change{Type: Opened, Condition: c, At: now})
		case !prev.same(c):
			c.Since = prev.Since
			t.open[c.Key] = c
			out.Changes = append(out.Changes, Change{Type: Updated, Condition: c, At: now})
		default:
			c.Since = prev.Since
			t.open[c.Key] = c
		}
	}
	for _, k := range sortedKeys(t.open) {
		if !seen[k] {
			out.Changes = append(out.Changes, Change{Type: Resolved, Condition: t.open[k], At: now})
			delete(t.open, k)
		}
	}
	sort.SliceStable(out.Changes, func(a, b int) bool { return out.Changes[a].Condition.Key < out.Changes[b].Condition.Key })
	return out
}

// failedSlots counts, per slot (Unix ns), the regions where its
// region-slot failed.
func failedSlots(j *journeyState) map[int64]int {
	out := map[int64]int{}
	for ci := range j.cells {
		c := &j.cells[ci]
		for i := 0; i < len(c.runs); {
			end := slotEnd(c.runs, i)
			if f, p := outcome(c.runs[i:end]); f > p || superseded(c.runs[i:end]) {
				out[c.runs[i].slot]++
			}
			i = end
		}
	}
	return out
}

// confirmable says that region has two live probers or more (one can
// confirm the other's failure).
func (t *Tracker) confirmable(region string) bool {
	return t.members.Known && len(t.members.Probers[region]) >= 2
}

// replay runs the cell's machine over its kept region-slots. A slot is
// corroborated when it also failed in another region. confirmable says
// that the region has another live prober to confirm a failure: then a
// slot failed by one prober alone (its scheduled run, or its confirmation
// of another region's failure) is not corroborated by other regions until
// a second prober of its own region failed it too, so that one prober's
// own trouble during another region's outage stays agent-local instead of
// tripping at once. Regions that ran the slot before the outage began are
// judged by their later confirmations instead (superseded).
func (c *cell) replay(cfg *Config, failed map[int64]int, confirmable bool) {
	m := c.base
	for i := 0; i < len(c.runs); {
		end := slotEnd(c.runs, i)
		slot := c.runs[i:end]
		others := failed[c.runs[i].slot]
		if f, p := outcome(slot); f > p || superseded(slot) {
			others--
		}
		if superseded(slot) && others >= 2 {
			// The later confirmations decide, but only when two other
			// regions failed the same slot too: one prober's own trouble
			// while confirming another region's outage must not make it
			// global.
			m.stepCounts(cfg, slot, confirmOutcome, true)
		} else {
			corroborated := others > 0
			if corroborated && confirmable {
				if f, _ := outcome(slot); f < 2 {
					corroborated = false
				}
			}
			m.step(cfg, slot, corroborated)
		}
		i = end
	}
	c.failing, c.firstFail = m.failing, m.firstFail
	f, n := c.failCount(cfg.Window)
	c.wFails, c.wN = int32(f), int32(n)
}

// cellState applies the no-data rule and the replayed machine.
func (t *Tracker) cellState(j *journeyState, c *cell, now time.Time) State {
	last := c.lastData
	if !t.heardFrom.IsZero() && t.heardFrom.UnixNano() > last {
		last = t.heardFrom.UnixNano()
	}
	if now.UnixNano()-last >= int64(t.noData(j)) {
		switch {
		case !t.members.Known:
			return StateNoData
		case len(t.members.Probers[c.region]) == 0:
			return StateBlind
		default:
			return StateMissing
		}
	}
	if c.failing {
		return StateFailing
	}
	if c.wN > 0 && float64(c.wFails)/float64(c.wN) >= t.cfg.DegradedRatio {
		return StateDegraded
	}
	return StateOK
}

// failRatio is the share of failing region-slots among the last window
// slots that have runs, and how many there were.
func (c *cell) failRatio(window int) (float64, int) {
	fails, n := c.failCount(window)
	if n == 0 {
		return 0, 0
	}
	return float64(fails) / float64(n), n
}

// failCount counts the failing region-slots among the last window slots
// that have runs, and those slots.
func (c *cell) failCount(window int) (fails, n int) {
	for end := len(c.runs); end > 0 && n < window; {
		start := slotStart(c.runs, end)
		f, p := outcome(c.runs[start:end])
		end = start
		if f+p == 0 {
			continue
		}
		n++
		if f > p {
			fails++
		}
	}
	return fails, n
}

// slotStart returns the first index of the region-slot ending before end.
func slotStart(runs []run, end int) int {
	i := end - 1
	for i > 0 && runs[i-1].slot == runs[end-1].slot {
		i--
	}
	return i
}

// suspectAgents applies the agent-local rule: an agent whose latest run
// failed while another agent passed the same slot, or whose failure ratio
// over its last Window runs is at least SuspectRatio while the region's
// other agents, over the same slots (from its oldest to its latest of
// those runs), failed less than DegradedRatio.
func (t *Tracker) suspectAgents(c *cell) []string {
	if len(c.agents) < 2 {
		return nil
	}
	type hist struct {
		seen        bool
		runs, fails int
		latest      int64
		oldest      int64
		latestFail  bool
	}
	agents := make([]hist, len(c.agents))
	seen := 0
	for end := len(c.runs); end > 0; {
		start := slotStart(c.runs, end)
		for _, r := range c.runs[start:end] {
			if r.status == runProbeError {
				continue
			}
			h := &agents[r.agent]
			if !h.seen {
				*h = hist{seen: true, latest: r.slot, latestFail: r.status == runFail}
				seen++
			}
			if h.runs < t.cfg.Window {
				h.runs++
				h.oldest = r.slot
				if r.status == runFail {
					h.fails++
				}
			}
		}
		end = start
	}
	if seen < 2 {
		return nil
	}
	var out []string
	order := make([]int, len(c.agents))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(c.agents[a], c.agents[b]) })
	for _, ai := range order {
		h := agents[ai]
		if !h.seen {
			continue
		}
		suspect := false
		if h.latestFail {
			// Did another agent pass the same slot?
			for _, r := range c.runs {
				if r.slot == h.latest && int(r.agent) != ai && r.status == runPass {
					suspect = true
				}
			}
		}
		if !suspect && h.runs >= 2 && float64(h.fails)/float64(h.runs) >= t.cfg.SuspectRatio {
			// The others must have passed over the same stretch of slots,
			// [oldest, latest] of this agent's runs: an agent that only ran
			// confirmations during a regional outage is not suspect once
			// the region recovers, nor is one that stopped running the
			// journey after it (killed, or its slots moved to another
			// owner) while the others pass the slots that came later.
			runs, fails := 0, 0
			for _, r := range c.runs {
				if r.slot < h.oldest || r.slot > h.latest || int(r.agent) == ai || r.status == runProbeError {
					continue
				}
				runs++
				if r.status == runFail {
					fails++
				}
			}
			suspect = runs > 0 && float64(fails)/float64(runs) < t.cfg.DegradedRatio
		}
		if suspect {
			out = append(out, c.agents[ai])
		}
	}
	return out
}

// scope applies the global rule to a journey's cells. A global outage
// stays global until every region has recovered: regions recover one by
// one, and without this the last ones to clear would turn the global
// incident into a fresh regional page on its way out.
func (t *Tracker) scope(j *journeyState, prev Scope) Scope {
	failing, withData := 0, 0
	for i := range j.cells {
		c := &j.cells[i]
		if c.state.HasData() {
			withData++
		}
		if c.state == StateFailing {
			failing++
		}
	}
	switch {
	case failing == 0:
		return ScopeNone
	case prev == ScopeGlobal:
		return ScopeGlobal
	case withData == 1:
		return ScopeUnknown
	case failing >= t.cfg.GlobalMinRegions && float64(failing) >= t.cfg.GlobalRatio*float64(withData):
		return ScopeGlobal
	default:
		return ScopeRegional
	}
}

// failingRegions lists the regions where j is failing.
func failingRegions(j *journeyState) []string {
	var rs []string
	for i := range j.cells {
		if j.cells[i].state == StateFailing {
			rs = append(rs, j.cells[i].region)
		}
	}
	return rs
}

// productConditions groups failing journeys into incidents: journeys that
// share a component and fail in the same regions with the same scope are
// one incident, so one broken edge is one page.
func (t *Tracker) productConditions(names []string) []Condition {
	type member struct {
		name    string
		j       *journeyState
		regions string
	}
	var failing []member
	for _, name := range names {
		j := t.journeys[name]
		if j.scope != ScopeNone {
			failing = append(failing, member{name, j, strings.Join(failingRegions(j), ",")})
		}
	}
	// Union-find over failing journeys.
	parent := make([]int, len(failing))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		if parent[i] != i {
			parent[i] = find(parent[i])
		}
		return parent[i]
	}
	for a := range failing {
		for b := a + 1; b < len(failing); b++ {
			if failing[a].regions == failing[b].regions && failing[a].j.scope == failing[b].j.scope &&
				shareAny(failing[a].j.components, failing[b].j.components) {
				parent[find(b)] = find(a)
			}
		}
	}
	groups := map[int][]member{}
	for i := range failing {
		groups[find(i)] = append(groups[find(i)], failing[i])
	}
	var out []Condition
	for _, root := range sortedKeys(groups) {
		g := groups[root]
		first := g[0]
		c := Condition{Scope: first.j.scope, Regions: strings.Split(first.regions, ",")}
		if c.Scope == ScopeGlobal {
			c.Alert, c.Severity = AlertGlobal, "critical"
		} else {
			c.Alert, c.Severity = AlertRegional, "warning"
		}
		kinds, comps := map[string]bool{}, map[string]bool{}
		var earliest *cell
		for _, m := range g {
			c.Journeys = append(c.Journeys, m.name)
			kinds[m.j.kind] = true
			for _, x := range m.j.components {
				comps[x] = true
			}
			if c.Runbook == "" {
				c.Runbook = m.j.runbook
			}
			for _, r := range c.Regions {
				cl := m.j.cell(r)
				if cl != nil && (earliest == nil || cl.firstFail < earliest.firstFail) {
					earliest = cl
				}
			}
		}
		c.Kinds, c.Components = sortedKeys(kinds), sortedKeys(comps)
		if earliest != nil {
			c.FirstFailingSlot = at(earliest.firstFail)
			if s := earliest.lastFail; s != nil {
				c.FailingStep, c.SampleError, c.TraceID = s.failingStep(), s.err(), s.traceID()
			}
		}
		// The incident's identity: its shared component (or its journey when
		// it has none) and where it fails, stable while journeys join it.
		base := "journey:" + first.name
		if len(g) > 1 || len(first.j.components) > 0 {
			var lists [][]string
			for _, m := range g {
				lists = append(lists, m.j.components)
			}
			base = "component:" + commonComponent(lists)
		}
		// Groups with the same shared component differ in scope or regions
		// (else they would be one group), so base and where make the key unique.
		where := string(c.Scope) + ":" + first.regions
		if c.Scope == ScopeGlobal {
			where = "global"
		}
		sum := sha256.Sum256([]byte(base + "|" + where))
		c.Incident = hex.EncodeToString(sum[:6])
		c.Key = c.Alert + "|" + c.Incident
		scopeWord := map[Scope]string{ScopeGlobal: "globally", ScopeRegional: "in " + strings.Join(c.Regions, ", "), ScopeUnknown: "in " + strings.Join(c.Regions, ", ") + " (the only region with data: scope unknown)"}[c.Scope]
		c.Summary = fmt.Sprintf("%s failing %s", strings.Join(c.Journeys, ", "), scopeWord)
		if c.FailingStep != "" {
			c.Summary += " at step " + c.FailingStep
		}
		out = append(out, c)
	}
	t.keepIncidentKeys(out)
	return out
}

// keepIncidentKeys gives an incident the key it already has while
// journeys join or leave it: a group whose own key is not open takes the
// key of the oldest open incident of the same alert and place (scope and
// regions) that shares a journey with it and that no other group keeps.
// Without this the key follows the group's shared component, which
// changes as the group grows or shrinks: a second page for one incident,
// and a third while it recovers.
func (t *Tracker) keepIncidentKeys(out []Condition) {
	kept := map[string]bool{}
	for _, c := range out {
		if _, ok := t.open[c.Key]; ok {
			kept[c.Key] = true
		}
	}
	for i := range out {
		c := &out[i]
		if _, ok := t.open[c.Key]; ok {
			continue
		}
		best := ""
		for _, k := range sortedKeys(t.open) {
			p := t.open[k]
			if kept[k] || p.Alert != c.Alert || p.Scope != c.Scope || p.Incident == "" ||
				strings.Join(p.Regions, ",") != strings.Join(c.Regions, ",") || !shareAny(p.Journeys, c.Journeys) {
				continue
			}
			if best == "" || p.Since.Before(t.open[best].Since) {
				best = k
			}
		}
		if best != "" {
			c.Key, c.Incident = best, t.open[best].Incident
			kept[best] = true
		}
	}
}

// commonComponent picks the smallest component shared by every journey,
// or else the first journey's smallest component.
func commonComponent(lists [][]string) string {
	if len(lists) == 0 || len(lists[0]) == 0 {
		return ""
	}
	for _, c := range lists[0] { // sorted
		all := true
		for _, l := range lists[1:] {
			all = all && shareAny([]string{c}, l)
		}
		if all {
			return c
		}
	}
	return lists[0][0]
}

// dataConditions reports blind regions and missing results.
func (t *Tracker) dataConditions(names []string) []Condition {
	blind := map[string][]string{}
	var out []Condition
	for _, name := range names {
		j := t.journeys[name]
		if j.silentCells == 0 {
			continue
		}
		var missing []string
		for i := range j.cells {
			r, c := j.cells[i].region, &j.cells[i]
			switch c.state {
			case StateBlind:
				blind[r] = append(blind[r], name)
			case StateMissing, StateNoData:
				missing = append(missing, r)
			}
		}
		slices.Sort(missing)
		if len(missing) > 0 {
			out = append(out, Condition{Key: AlertResultsMissing + "|" + name, Alert: AlertResultsMissing, Severity: "warning",
				Journeys: []string{name}, Kinds: []string{j.kind}, Regions: missing, Components: j.components, Runbook: j.runbook,
				Summary: fmt.Sprintf("No results for %s from %s for %d intervals although its probers are alive (or membership is unknown)", name, strings.Join(missing, ", "), t.cfg.NoDataIntervals)})
		}
	}
	for _, r := range sortedKeys(blind) {
		out = append(out, Condition{Key: AlertRegionBlind + "|" + r, Alert: AlertRegionBlind, Severity: "warning",
			Journeys: blind[r], Regions: []string{r},
			Summary: fmt.Sprintf("Region %s is blind: no live prober, %d journeys unobserved", r, len(blind[r]))})
	}
	return out
}

func shareAny(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

// journeyNames returns the sorted journey names (not to be modified).
func (t *Tracker) journeyNames() []string {
	if t.names == nil {
		t.names = sortedKeys(t.journeys)
	}
	return t.names
}

func sortedKeys[K interface{ ~string | ~int }, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
