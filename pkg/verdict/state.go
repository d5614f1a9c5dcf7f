package verdict

import (
	"time"
)

// Snapshot is a read-only view of the verdicts for the status page, the
// JSON API and derived metrics.
type Snapshot struct {
	Journeys     []JourneyView       `json:"journeys"`
	Regions      []string            `json:"regions"`
	Members      map[string][]string `json:"members"`
	MembersKnown bool                `json:"members_known"`
	Open         []Condition         `json:"open"`
	Counters     Counters            `json:"counters"`
}

// JourneyView is one journey's row.
type JourneyView struct {
	Name       string              `json:"name"`
	Kind       string              `json:"kind"`
	Scope      Scope               `json:"scope"`
	Components []string            `json:"components,omitempty"`
	Runbook    string              `json:"runbook,omitempty"`
	Interval   time.Duration       `json:"interval_ns"`
	Cells      map[string]CellView `json:"cells"`
}

// CellView is one (journey, region) cell.
type CellView struct {
	State     State     `json:"state"`
	FailRatio float64   `json:"fail_ratio"`
	FirstFail time.Time `json:"first_fail,omitempty"`
	LastData  time.Time `json:"last_data"`
	Latest    *Sample   `json:"latest,omitempty"`
	LastFail  *Sample   `json:"last_fail,omitempty"`
}

// Snapshot returns the state as of the last Evaluate.
func (t *Tracker) Snapshot() Snapshot {
	s := Snapshot{Members: t.members.Probers, MembersKnown: t.members.Known, Counters: t.counters}
	regions := map[string]bool{}
	for r := range t.members.Probers {
		regions[r] = true
	}
	for _, name := range t.journeyNames() {
		j := t.journeys[name]
		v := JourneyView{Name: name, Kind: j.kind, Scope: j.scope, Components: j.components, Runbook: j.runbook,
			Interval: j.interval, Cells: make(map[string]CellView, len(j.cells))}
		for i := range j.cells {
			c := &j.cells[i]
			r := c.region
			regions[r] = true
			ratio, _ := c.failRatio(t.cfg.Window)
			cv := CellView{State: c.state, FailRatio: ratio, LastData: at(c.lastData)}
			if c.latest.present() {
				cv.Latest = c.latest.public(name, r)
			}
			if c.lastFail != nil {
				cv.LastFail = c.lastFail.public(name, r)
			}
			if c.state == StateFailing {
				cv.FirstFail = at(c.firstFail)
			}
			v.Cells[r] = cv
		}
		s.Journeys = append(s.Journeys, v)
	}
	s.Regions = sortedKeys(regions)
	for _, k := range sortedKeys(t.open) {
		s.Open = append(s.Open, t.open[k])
	}
	return s
}

// Open returns the open conditions, sorted by key.
func (t *Tracker) Open() []Condition {
	out := make([]Condition, 0, len(t.open))
	for _, k := range sortedKeys(t.open) {
		out = append(out, t.open[k])
	}
	return out
}
