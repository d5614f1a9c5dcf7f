package verdict

import (
	"encoding/json"
	"fmt"
	"sort"
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
		v := JourneyView{Name: name, Kind: j.Kind, Scope: j.Scope, Components: j.Components, Runbook: j.Runbook,
			Interval: j.Interval, Cells: map[string]CellView{}}
		for r, c := range j.Cells {
			regions[r] = true
			ratio, _ := c.failRatio(t.cfg.Window)
			cv := CellView{State: c.State, FailRatio: ratio, LastData: c.LastData, Latest: c.Latest, LastFail: c.LastFail}
			if c.State == StateFailing {
				cv.FirstFail = c.m.FirstFail
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

// stateVersion is bumped when the encoding changes incompatibly.
const stateVersion = 1

type encoded struct {
	Version  int                      `json:"version"`
	Journeys map[string]*journeyState `json:"journeys"`
	Members  Membership               `json:"members"`
	Open     map[string]Condition     `json:"open"`
	Counters Counters                 `json:"counters"`
}

// MarshalState encodes the whole state (for durable storage).
func (t *Tracker) MarshalState() ([]byte, error) {
	return json.Marshal(encoded{Version: stateVersion, Journeys: t.journeys, Members: t.members, Open: t.open, Counters: t.counters})
}

// maxStateBytes bounds a stored state blob.
const maxStateBytes = 64 << 20

// RestoreState replaces the state with one from MarshalState. On error the
// Tracker is unchanged.
func (t *Tracker) RestoreState(b []byte) error {
	if len(b) > maxStateBytes {
		return fmt.Errorf("verdict: state of %d bytes exceeds %d", len(b), maxStateBytes)
	}
	var e encoded
	if err := json.Unmarshal(b, &e); err != nil {
		return fmt.Errorf("verdict: decode state: %w", err)
	}
	if e.Version != stateVersion {
		return fmt.Errorf("verdict: state version %d, want %d", e.Version, stateVersion)
	}
	for name, j := range e.Journeys {
		if j == nil || j.Cells == nil {
			return fmt.Errorf("verdict: state: journey %q has no cells", name)
		}
		for r, c := range j.Cells {
			if c == nil {
				return fmt.Errorf("verdict: state: journey %q region %q is empty", name, r)
			}
			if !sort.SliceIsSorted(c.Slots, func(a, b int) bool { return c.Slots[a].Slot.Before(c.Slots[b].Slot) }) {
				return fmt.Errorf("verdict: state: journey %q region %q slots out of order", name, r)
			}
		}
	}
	if e.Open == nil {
		e.Open = map[string]Condition{}
	}
	t.journeys, t.members, t.open, t.counters = e.Journeys, e.Members, e.Open, e.Counters
	// Recompute the derived machines so Snapshot is right before the next Evaluate.
	for _, j := range t.journeys {
		failed := failedSlots(j)
		for r, c := range j.Cells {
			c.replay(&t.cfg, r, failed)
		}
		j.dirty = true
	}
	return nil
}
