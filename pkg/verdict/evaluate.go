package verdict

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vantage-fleet/vantage/pkg/report"
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
	for name, j := range t.journeys {
		if now.Sub(j.LastSeen) > t.cfg.ForgetAfter {
			delete(t.journeys, name)
		}
	}
	suspects := map[[2]string]*Condition{} // (region, agent)
	names := t.journeyNames()
	for _, name := range names {
		j := t.journeys[name]
		// Replaying region-slots is the costly part: only journeys that
		// received results since the last Evaluate are replayed.
		if j.dirty {
			failed := failedSlots(j)
			for region, c := range j.Cells {
				c.replay(&t.cfg, region, failed)
				c.suspects = t.suspectAgents(c)
			}
			j.dirty = false
		}
		for _, region := range sortedKeys(j.Cells) {
			c := j.Cells[region]
			st := t.cellState(j, c, region, now)
			if st != c.State {
				out.Cells = append(out.Cells, CellChange{Journey: name, Region: region, From: c.State, To: st})
				c.State = st
			}
			if !st.HasData() {
				continue
			}
			for _, agent := range c.suspects {
				k := [2]string{region, agent}
				sc := suspects[k]
				if sc == nil {
					sc = &Condition{Alert: AlertProberSuspect, Severity: "info", Agent: agent, Regions: []string{region},
						Key: AlertProberSuspect + "|" + region + "|" + agent}
					suspects[k] = sc
				}
				sc.Journeys = append(sc.Journeys, name)
				if c.LastFail != nil && c.LastFail.Agent == agent {
					sc.FailingStep, sc.SampleError, sc.TraceID = c.LastFail.FailingStep, c.LastFail.Error, c.LastFail.TraceID
				}
			}
		}
		j.Scope = t.scope(j)
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

// failedSlots maps each slot (Unix ns) to the regions where its
// region-slot failed.
func failedSlots(j *journeyState) map[int64][]string {
	out := map[int64][]string{}
	for r, c := range j.Cells {
		for i := range c.Slots {
			if f, p := c.Slots[i].outcome(); f > p {
				k := c.Slots[i].Slot.UnixNano()
				out[k] = append(out[k], r)
			}
		}
	}
	return out
}

// replay runs the cell's machine over its kept region-slots.
func (c *cell) replay(cfg *Config, region string, failed map[int64][]string) {
	m := c.Base
	for i := range c.Slots {
		rs := failed[c.Slots[i].Slot.UnixNano()]
		corroborated := len(rs) > 1 || (len(rs) == 1 && rs[0] != region)
		m.step(cfg, &c.Slots[i], corroborated)
	}
	c.m = m
}

// cellState applies the no-data rule and the replayed machine.
func (t *Tracker) cellState(j *journeyState, c *cell, region string, now time.Time) State {
	m := c.m
	last := c.LastData
	if t.heardFrom.After(last) {
		last = t.heardFrom
	}
	if now.Sub(last) >= t.noData(j) {
		switch {
		case !t.members.Known:
			return StateNoData
		case len(t.members.Probers[region]) == 0:
			return StateBlind
		default:
			return StateMissing
		}
	}
	if m.Failing {
		return StateFailing
	}
	if r, n := c.failRatio(t.cfg.Window); n > 0 && r >= t.cfg.DegradedRatio {
		return StateDegraded
	}
	return StateOK
}

// failRatio is the share of failing region-slots among the last window
// slots that have runs, and how many there were.
func (c *cell) failRatio(window int) (float64, int) {
	fails, n := 0, 0
	for i := len(c.Slots) - 1; i >= 0 && n < window; i-- {
		f, p := c.Slots[i].outcome()
		if f+p == 0 {
			continue
		}
		n++
		if f > p {
			fails++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return float64(fails) / float64(n), n
}

// suspectAgents applies the agent-local rule: an agent whose latest run
// failed while another agent passed the same slot, or whose failure ratio
// over its last Window runs is at least SuspectRatio while the region's
// other agents, over the same slots (from its oldest to its latest of
// those runs), failed less than DegradedRatio.
func (t *Tracker) suspectAgents(c *cell) []string {
	type hist struct {
		runs, fails int
		latest      time.Time
		oldest      time.Time
		latestFail  bool
	}
	agents := map[string]*hist{}
	for i := len(c.Slots) - 1; i >= 0; i-- {
		s := &c.Slots[i]
		for _, r := range s.Runs {
			if r.Status == report.StatusProbeError {
				continue
			}
			h := agents[r.Agent]
			if h == nil {
				h = &hist{latest: s.Slot, latestFail: r.Status == report.StatusFail}
				agents[r.Agent] = h
			}
			if h.runs < t.cfg.Window {
				h.runs++
				h.oldest = s.Slot
				if r.Status == report.StatusFail {
					h.fails++
				}
			}
		}
	}
	if len(agents) < 2 {
		return nil
	}
	var out []string
	for _, name := range sortedKeys(agents) {
		h := agents[name]
		suspect := false
		if h.latestFail {
			// Did another agent pass the same slot?
			for i := range c.Slots {
				if !c.Slots[i].Slot.Equal(h.latest) {
					continue
				}
				for _, r := range c.Slots[i].Runs {
					if r.Agent != name && r.Status == report.StatusPass {
						suspect = true
					}
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
			for i := range c.Slots {
				if c.Slots[i].Slot.Before(h.oldest) || c.Slots[i].Slot.After(h.latest) {
					continue
				}
				for _, r := range c.Slots[i].Runs {
					if r.Agent == name || r.Status == report.StatusProbeError {
						continue
					}
					runs++
					if r.Status == report.StatusFail {
						fails++
					}
				}
			}
			suspect = runs > 0 && float64(fails)/float64(runs) < t.cfg.DegradedRatio
		}
		if suspect {
			out = append(out, name)
		}
	}
	return out
}

// scope applies the global rule to a journey's cells.
func (t *Tracker) scope(j *journeyState) Scope {
	failing, withData := 0, 0
	for _, c := range j.Cells {
		if c.State.HasData() {
			withData++
		}
		if c.State == StateFailing {
			failing++
		}
	}
	switch {
	case failing == 0:
		return ScopeNone
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
	for _, r := range sortedKeys(j.Cells) {
		if j.Cells[r].State == StateFailing {
			rs = append(rs, r)
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
		if j.Scope != ScopeNone {
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
			if failing[a].regions == failing[b].regions && failing[a].j.Scope == failing[b].j.Scope &&
				shareAny(failing[a].j.Components, failing[b].j.Components) {
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
		c := Condition{Scope: first.j.Scope, Regions: strings.Split(first.regions, ",")}
		if c.Scope == ScopeGlobal {
			c.Alert, c.Severity = AlertGlobal, "critical"
		} else {
			c.Alert, c.Severity = AlertRegional, "warning"
		}
		kinds, comps := map[string]bool{}, map[string]bool{}
		var earliest *cell
		for _, m := range g {
			c.Journeys = append(c.Journeys, m.name)
			kinds[m.j.Kind] = true
			for _, x := range m.j.Components {
				comps[x] = true
			}
			if c.Runbook == "" {
				c.Runbook = m.j.Runbook
			}
			for _, r := range c.Regions {
				cl := m.j.Cells[r]
				if cl != nil && (earliest == nil || cl.m.FirstFail.Before(earliest.m.FirstFail)) {
					earliest = cl
				}
			}
		}
		c.Kinds, c.Components = sortedKeys(kinds), sortedKeys(comps)
		if earliest != nil {
			c.FirstFailingSlot = earliest.m.FirstFail
			if s := earliest.LastFail; s != nil {
				c.FailingStep, c.SampleError, c.TraceID = s.FailingStep, s.Error, s.TraceID
			}
		}
		// The incident's identity: its shared component (or its journey when
		// it has none) and where it fails, stable while journeys join it.
		base := "journey:" + first.name
		if len(g) > 1 || len(first.j.Components) > 0 {
			var lists [][]string
			for _, m := range g {
				lists = append(lists, m.j.Components)
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
	return out
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
		var missing []string
		for r, c := range j.Cells {
			switch c.State {
			case StateBlind:
				blind[r] = append(blind[r], name)
			case StateMissing, StateNoData:
				missing = append(missing, r)
			}
		}
		slices.Sort(missing)
		if len(missing) > 0 {
			out = append(out, Condition{Key: AlertResultsMissing + "|" + name, Alert: AlertResultsMissing, Severity: "warning",
				Journeys: []string{name}, Kinds: []string{j.Kind}, Regions: missing, Components: j.Components, Runbook: j.Runbook,
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

func (t *Tracker) journeyNames() []string { return sortedKeys(t.journeys) }

func sortedKeys[K interface{ ~string | ~int }, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
