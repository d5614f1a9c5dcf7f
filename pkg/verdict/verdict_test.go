package verdict

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/pkg/report"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

const interval = 30 * time.Second

// res builds a Result of journey j in region reg by agent ag for slot k
// (t0 + k×interval).
func res(j, reg, ag string, k int, trig report.Trigger, st report.Status) report.Result {
	slot := t0.Add(time.Duration(k) * interval)
	r := report.Result{Journey: j, Kind: "git", Region: reg, Agent: ag, Slot: slot, Trigger: trig, Status: st,
		Interval: interval, Runbook: "https://runbooks.example/" + j, TraceID: "0123456789abcdef0123456789abcdef"}
	r.ID = report.ResultID(j, reg, ag, slot, trig)
	if j == "clone" || j == "push" {
		r.Components = []string{"https-edge"}
	}
	if st == report.StatusFail {
		r.ErrorType, r.Error = report.ErrHTTP5xx, "502 Bad Gateway"
		r.Steps = []report.Step{{Name: "connect", Status: report.StatusPass}, {Name: "clone", Status: report.StatusFail}}
	}
	return r
}

const (
	S = report.TriggerSchedule
	C = report.TriggerConfirm
	P = report.StatusPass
	F = report.StatusFail
	E = report.StatusProbeError
)

// step is one event of a scenario at t0+at; after it Evaluate runs.
type step struct {
	at     time.Duration
	res    []report.Result
	mem    *Membership
	forget string
	// expectations, checked when non-nil
	cells  map[string]State // "journey/region"
	alerts []string         // "Alert scope regions [agent]" of every open condition, sorted
	err    error            // from the last Accept of this step
}

type scenario struct {
	name  string
	cfg   func(*Config)
	steps []step
}

func alertsOf(tr *Tracker) []string {
	var out []string
	for _, c := range tr.Open() {
		s := fmt.Sprintf("%s %s %s", c.Alert, c.Scope, strings.Join(c.Regions, ","))
		if c.Agent != "" {
			s += " " + c.Agent
		}
		out = append(out, strings.TrimSpace(strings.ReplaceAll(s, "  ", " ")))
	}
	sort.Strings(out)
	return out
}

func play(t *testing.T, sc scenario) *Tracker {
	t.Helper()
	cfg := DefaultConfig()
	if sc.cfg != nil {
		sc.cfg(&cfg)
	}
	tr := New(cfg)
	for i, st := range sc.steps {
		now := t0.Add(st.at)
		if st.mem != nil {
			tr.SetMembership(*st.mem)
		}
		if st.forget != "" {
			tr.Forget(st.forget)
		}
		var err error
		for _, r := range st.res {
			err = tr.Accept(r, now)
		}
		if st.err != nil && !errors.Is(err, st.err) {
			t.Fatalf("step %d: Accept error = %v, want %v", i, err, st.err)
		}
		if st.err == nil && err != nil {
			t.Fatalf("step %d: Accept: %v", i, err)
		}
		tr.Evaluate(now)
		snap := tr.Snapshot()
		for key, want := range st.cells {
			jr := strings.SplitN(key, "/", 2)
			got := State("absent")
			for _, jv := range snap.Journeys {
				if jv.Name == jr[0] {
					if c, ok := jv.Cells[jr[1]]; ok {
						got = c.State
					}
				}
			}
			if got != want {
				t.Errorf("step %d: %s = %s, want %s", i, key, got, want)
			}
		}
		if st.alerts != nil {
			got := alertsOf(tr)
			want := append([]string(nil), st.alerts...)
			sort.Strings(want)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("step %d: open alerts\n got: %q\nwant: %q", i, got, want)
			}
		}
	}
	return tr
}

func sec(n int) time.Duration { return time.Duration(n) * time.Second }

var shifted = &Membership{Known: true, Probers: map[string][]string{"eu": {"eu-1", "eu-2"}, "us": {"us-1", "us-2"}, "ap": {"ap-1"}}}

var three = &Membership{Known: true, Probers: map[string][]string{"eu": {"eu-1", "eu-2"}, "us": {"us-1"}, "ap": {"ap-1"}}}

// passAll returns passing scheduled results of journey j at slot k in every region.
func passAll(j string, k int) []report.Result {
	return []report.Result{res(j, "eu", "eu-1", k, S, P), res(j, "us", "us-1", k, S, P), res(j, "ap", "ap-1", k, S, P)}
}

func TestVerdict_Scenarios(t *testing.T) {
	none := []string{}
	scenarios := []scenario{
		{name: "all passing is ok, no alert", steps: []step{
			{at: 0, mem: three, res: passAll("clone", 0), cells: map[string]State{"clone/eu": StateOK, "clone/us": StateOK}, alerts: none},
		}},
		{name: "scheduled failure plus confirmation failure in one region trips within the slot (regional)", steps: []step{
			{at: 0, mem: three, res: passAll("clone", 0)},
			{at: sec(31), res: []report.Result{res("clone", "eu", "eu-1", 1, S, F)}, cells: map[string]State{"clone/eu": StateDegraded}, alerts: none},
			{at: sec(33), res: []report.Result{res("clone", "eu", "eu-2", 1, C, F), res("clone", "us", "us-1", 1, C, P), res("clone", "ap", "ap-1", 1, C, P)},
				cells: map[string]State{"clone/eu": StateFailing, "clone/us": StateOK}, alerts: []string{"VantageJourneyRegional regional eu"}},
		}},
		{name: "confirmation arriving before the scheduled run gives the same verdict", steps: []step{
			{at: 0, mem: three, res: passAll("clone", 0)},
			{at: sec(31), res: []report.Result{res("clone", "eu", "eu-2", 1, C, F)}},
			{at: sec(33), res: []report.Result{res("clone", "eu", "eu-1", 1, S, F)}, cells: map[string]State{"clone/eu": StateFailing}, alerts: []string{"VantageJourneyRegional regional eu"}},
		}},
		{name: "two consecutive failing scheduled slots trip (failures_to_trip=2)", steps: []step{
			{at: 0, mem: &Membership{Known: true, Probers: map[string][]string{"eu": {"eu-1"}, "us": {"us-1"}}},
				res: []report.Result{res("api", "eu", "eu-1", 0, S, F), res("api", "us", "us-1", 0, S, P)}, alerts: none},
			{at: sec(30), res: []report.Result{res("api", "eu", "eu-1", 1, S, F), res("api", "us", "us-1", 1, S, P)},
				cells: map[string]State{"api/eu": StateFailing}, alerts: []string{"VantageJourneyRegional regional eu"}},
		}},
		{name: "failures_to_trip=3 needs three samples", cfg: func(c *Config) { c.FailuresToTrip = 3 }, steps: []step{
			{at: 0, res: []report.Result{res("api", "eu", "eu-1", 0, S, F), res("api", "us", "us-1", 0, S, P)}},
			{at: sec(30), res: []report.Result{res("api", "eu", "eu-1", 1, S, F)}, alerts: none},
			{at: sec(60), res: []report.Result{res("api", "eu", "eu-1", 2, S, F)}, alerts: []string{"VantageJourneyRegional regional eu"}},
		}},
		{name: "global when two of three regions fail", steps: []step{
			{at: 0, mem: three, res: passAll("api", 0)},
			{at: sec(31), res: []report.Result{res("api", "eu", "eu-1", 1, S, F), res("api", "eu", "eu-2", 1, C, F),
				res("api", "us", "us-1", 1, C, F), res("api", "us", "us-1", 2, S, F), res("api", "ap", "ap-1", 1, C, P)},
				cells:  map[string]State{"api/eu": StateFailing, "api/us": StateFailing, "api/ap": StateOK},
				alerts: []string{"VantageJourneyGlobal global eu,us"}},
		}},
		{name: "the confirmation round alone classifies global: the same slot failing in every region is corroborated", steps: []step{
			{at: 0, mem: three, res: passAll("api", 0)},
			// ap has one prober, so no in-region confirmation; eu and us confirm ap's slot.
			{at: sec(33), res: []report.Result{res("api", "ap", "ap-1", 1, S, F)}, alerts: none},
			// eu has a second prober: one eu prober's failure is not yet eu's,
			// but ap and us (one prober each) are two regions: global at once.
			{at: sec(36), res: []report.Result{res("api", "eu", "eu-1", 1, C, F), res("api", "us", "us-1", 1, C, F)},
				cells:  map[string]State{"api/us": StateFailing, "api/ap": StateFailing},
				alerts: []string{"VantageJourneyGlobal global ap,us"}},
		}},
		{name: "phase-shifted slots: regions that ran the slot before the outage began are judged by the later confirmations (global within the confirmation round)", steps: []step{
			{at: 0, mem: shifted, res: []report.Result{res("api", "eu", "eu-1", 0, S, P), res("api", "us", "us-1", 0, S, P), res("api", "ap", "ap-1", 0, S, P)}},
			// ap and eu ran slot 1 first and passed; then the outage began, us ran it and failed.
			{at: sec(40), res: []report.Result{res("api", "ap", "ap-1", 1, S, P), res("api", "eu", "eu-1", 1, S, P)}, alerts: none},
			{at: sec(50), res: []report.Result{res("api", "us", "us-1", 1, S, F), res("api", "us", "us-2", 1, C, F),
				res("api", "eu", "eu-1", 1, C, F), res("api", "ap", "ap-1", 1, C, F)},
				alerts: []string{"VantageJourneyGlobal global ap,eu,us"}},
		}},
		{name: "phase-shifted slots: one prober's failed confirmation of another region's outage does not make it global", steps: []step{
			{at: 0, mem: shifted, res: []report.Result{res("api", "eu", "eu-1", 0, S, P), res("api", "us", "us-1", 0, S, P), res("api", "ap", "ap-1", 0, S, P)}},
			{at: sec(40), res: []report.Result{res("api", "ap", "ap-1", 1, S, P), res("api", "eu", "eu-1", 1, S, P)}},
			{at: sec(50), res: []report.Result{res("api", "us", "us-1", 1, S, F), res("api", "us", "us-2", 1, C, F),
				res("api", "eu", "eu-1", 1, C, F), res("api", "ap", "ap-1", 1, C, P)},
				alerts: []string{"VantageJourneyRegional regional us"}},
		}},
		{name: "one prober's own failure during another region's outage is not corroborated before its region confirms it", steps: []step{
			{at: 0, mem: shifted, res: []report.Result{res("api", "eu", "eu-1", 0, S, P), res("api", "us", "us-1", 0, S, P), res("api", "ap", "ap-1", 0, S, P)}},
			// us is down; eu-1 fails the same slot for its own reasons, and eu-2's confirmation has not come yet.
			{at: sec(33), res: []report.Result{res("api", "us", "us-1", 1, S, F), res("api", "us", "us-2", 1, C, F), res("api", "eu", "eu-1", 1, S, F)},
				alerts: []string{"VantageJourneyRegional regional us"}},
			{at: sec(34), res: []report.Result{res("api", "eu", "eu-2", 1, C, P), res("api", "ap", "ap-1", 1, C, P)},
				alerts: []string{"VantageJourneyRegional regional us", "VantageProberSuspect eu eu-1"}},
		}},
		{name: "two probers' own trouble in two regions at once: one observation per prober, no product page", steps: []step{
			{at: 0, mem: shifted, res: []report.Result{res("api", "eu", "eu-1", 0, S, P), res("api", "us", "us-1", 0, S, P), res("api", "ap", "ap-1", 0, S, P)}},
			// eu-1 and us-1 are both broken; us-1 also confirms eu-1's failure.
			// Before their neighbours' confirmations arrive, nothing pages.
			{at: sec(33), res: []report.Result{res("api", "eu", "eu-1", 1, S, F), res("api", "us", "us-1", 1, C, F),
				res("api", "us", "us-1", 1, S, F)}, alerts: none},
			{at: sec(34), res: []report.Result{res("api", "eu", "eu-2", 1, C, P), res("api", "ap", "ap-1", 1, C, P),
				res("api", "us", "us-2", 1, C, P)},
				alerts: []string{"VantageProberSuspect eu eu-1", "VantageProberSuspect us us-1"}},
		}},
		{name: "a lone prober's single failure uncorroborated by its confirmations does not trip", steps: []step{
			{at: 0, mem: three, res: passAll("api", 0)},
			{at: sec(33), res: []report.Result{res("api", "ap", "ap-1", 1, S, F), res("api", "eu", "eu-1", 1, C, P), res("api", "us", "us-1", 1, C, P)},
				cells: map[string]State{"api/ap": StateDegraded}, alerts: none},
		}},
		{name: "a global outage recovering region by region stays one global alert until the last region clears", steps: []step{
			{at: 0, mem: three, res: passAll("api", 0)},
			{at: sec(33), res: []report.Result{res("api", "ap", "ap-1", 1, S, F), res("api", "eu", "eu-1", 1, C, F), res("api", "eu", "eu-2", 1, C, F), res("api", "us", "us-1", 1, C, F)},
				alerts: []string{"VantageJourneyGlobal global ap,eu,us"}},
			// eu and ap recover (two passing slots each); us still fails.
			{at: sec(63), res: []report.Result{res("api", "eu", "eu-1", 2, S, P), res("api", "ap", "ap-1", 2, S, P), res("api", "us", "us-1", 2, S, F)}},
			{at: sec(93), res: []report.Result{res("api", "eu", "eu-1", 3, S, P), res("api", "ap", "ap-1", 3, S, P), res("api", "us", "us-1", 3, S, F)},
				cells:  map[string]State{"api/us": StateFailing},
				alerts: []string{"VantageJourneyGlobal global us"}},
			{at: sec(123), res: []report.Result{res("api", "us", "us-1", 4, S, P)}},
			{at: sec(153), res: []report.Result{res("api", "us", "us-1", 5, S, P)}, alerts: none},
		}},
		{name: "global_min_regions=3 keeps two failing regions regional", cfg: func(c *Config) { c.GlobalMinRegions = 3 }, steps: []step{
			{at: 0, mem: three, res: passAll("api", 0)},
			{at: sec(31), res: []report.Result{res("api", "eu", "eu-1", 1, S, F), res("api", "eu", "eu-2", 1, C, F),
				res("api", "us", "us-1", 1, C, F), res("api", "us", "us-1", 2, S, F)},
				alerts: []string{"VantageJourneyRegional regional eu,us"}},
		}},
		{name: "one region of data only: scope unknown", steps: []step{
			{at: 0, res: []report.Result{res("api", "eu", "eu-1", 0, S, F), res("api", "eu", "eu-2", 0, C, F)},
				alerts: []string{"VantageJourneyRegional unknown eu"}},
		}},
		{name: "agent fails while another agent of its region passes the same slot: prober suspect, no product alert", steps: []step{
			{at: 0, mem: three, res: passAll("api", 0)},
			{at: sec(31), res: []report.Result{res("api", "eu", "eu-1", 1, S, F), res("api", "eu", "eu-2", 1, C, P), res("api", "us", "us-1", 1, C, P)},
				cells: map[string]State{"api/eu": StateOK}, alerts: []string{"VantageProberSuspect eu eu-1"}},
			{at: sec(61), res: []report.Result{res("api", "eu", "eu-1", 2, S, F), res("api", "eu", "eu-2", 2, C, P)},
				alerts: []string{"VantageProberSuspect eu eu-1"}},
			// still flapping: two failures in its last three runs
			{at: sec(91), res: []report.Result{res("api", "eu", "eu-1", 3, S, P), res("api", "ap", "ap-1", 3, S, P), res("api", "us", "us-1", 3, S, P)}, alerts: []string{"VantageProberSuspect eu eu-1"}},
			{at: sec(151), res: []report.Result{res("api", "eu", "eu-1", 4, S, P), res("api", "eu", "eu-1", 5, S, P), res("api", "us", "us-1", 5, S, P), res("api", "ap", "ap-1", 5, S, P)},
				alerts: none},
		}},
		{name: "agent with a high failure ratio while the others pass is suspect", steps: []step{
			{at: 0, mem: three, res: []report.Result{res("api", "eu", "eu-1", 0, S, F), res("api", "eu", "eu-2", 1, S, P)}},
			{at: sec(60), res: []report.Result{res("api", "eu", "eu-1", 2, S, P), res("api", "eu", "eu-2", 3, S, P)}},
			{at: sec(120), res: []report.Result{res("api", "eu", "eu-1", 4, S, F), res("api", "eu", "eu-2", 5, S, P)},
				cells: map[string]State{"api/eu": StateDegraded}, alerts: []string{"VantageProberSuspect eu eu-1"}},
		}},
		{name: "an agent that only confirmed during a regional outage is not suspect after recovery", steps: []step{
			{at: 0, mem: three, res: []report.Result{res("api", "eu", "eu-1", 0, S, F), res("api", "eu", "eu-2", 0, C, F), res("api", "us", "us-1", 0, S, P)}},
			{at: sec(30), res: []report.Result{res("api", "eu", "eu-1", 1, S, F), res("api", "eu", "eu-2", 1, C, F), res("api", "us", "us-1", 1, S, P)}},
			{at: sec(60), res: []report.Result{res("api", "eu", "eu-1", 2, S, P), res("api", "us", "us-1", 2, S, P)}, alerts: []string{"VantageJourneyRegional regional eu"}},
			{at: sec(90), res: []report.Result{res("api", "eu", "eu-1", 3, S, P), res("api", "us", "us-1", 3, S, P)}, alerts: none},
		}},
		{name: "an agent that stopped running the journey after a regional outage is not suspect while another passes later slots", steps: []step{
			// eu-1 ran the journey through a regional outage, then died (or lost
			// ownership); eu-2 passes every slot after: eu-1's last runs are all
			// failures, but eu-2 failed the same slots too.
			{at: 0, mem: three, res: []report.Result{res("api", "eu", "eu-1", 0, S, F), res("api", "eu", "eu-2", 0, C, F), res("api", "us", "us-1", 0, S, P)}},
			{at: sec(30), res: []report.Result{res("api", "eu", "eu-1", 1, S, F), res("api", "eu", "eu-2", 1, C, F), res("api", "us", "us-1", 1, S, P)},
				alerts: []string{"VantageJourneyRegional regional eu"}},
			{at: sec(12*30 + 1), res: func() []report.Result {
				var rs []report.Result
				for k := 2; k <= 12; k++ {
					rs = append(rs, res("api", "eu", "eu-2", k, S, P), res("api", "us", "us-1", k, S, P))
				}
				return rs
			}(), alerts: none},
		}},
		{name: "probe_error never counts against the product", steps: []step{
			{at: 0, mem: three, res: []report.Result{res("api", "eu", "eu-1", 0, S, E), res("api", "eu", "eu-1", 1, S, E), res("api", "eu", "eu-1", 2, S, E)},
				cells: map[string]State{"api/eu": StateOK}, alerts: none},
		}},
		{name: "degraded: failure ratio at degraded_ratio without tripping", steps: []step{
			{at: sec(150), res: []report.Result{res("api", "eu", "eu-1", 0, S, P), res("api", "eu", "eu-1", 1, S, P), res("api", "eu", "eu-1", 2, S, P),
				res("api", "eu", "eu-1", 3, S, F), res("api", "eu", "eu-1", 4, S, P)},
				cells: map[string]State{"api/eu": StateDegraded}, alerts: none}, // 1/5 = 0.2
			{at: sec(150), res: []report.Result{res("api", "eu", "eu-1", 5, S, P)},
				cells: map[string]State{"api/eu": StateOK}}, // 1/6 < 0.2
		}},
		{name: "recovered after successes_to_clear passing slots, not before", steps: []step{
			{at: 0, mem: three, res: []report.Result{res("api", "eu", "eu-1", 0, S, F), res("api", "eu", "eu-2", 0, C, F), res("api", "us", "us-1", 0, S, P)},
				cells: map[string]State{"api/eu": StateFailing}},
			{at: sec(30), res: []report.Result{res("api", "eu", "eu-1", 1, S, P)}, cells: map[string]State{"api/eu": StateFailing},
				alerts: []string{"VantageJourneyRegional regional eu"}},
			{at: sec(60), res: []report.Result{res("api", "eu", "eu-1", 2, S, P)}, cells: map[string]State{"api/eu": StateDegraded}, alerts: none},
		}},
		{name: "late results for old slots do not flip the verdict order-dependently", steps: []step{
			{at: sec(60), mem: three, res: []report.Result{res("api", "eu", "eu-1", 2, S, P), res("api", "us", "us-1", 2, S, P)}},
			// slots 0 and 1 failed but arrive late, before slot 2's pass: replayed in slot order,
			// the region tripped then is still failing (one pass < successes_to_clear).
			{at: sec(70), res: []report.Result{res("api", "eu", "eu-1", 1, S, F), res("api", "eu", "eu-1", 0, S, F)},
				cells: map[string]State{"api/eu": StateFailing}},
		}},
		{name: "duplicate result is ignored", steps: []step{
			{at: 0, res: []report.Result{res("api", "eu", "eu-1", 0, S, F)}},
			{at: sec(1), res: []report.Result{res("api", "eu", "eu-1", 0, S, F)}, err: ErrDuplicate, cells: map[string]State{"api/eu": StateDegraded}, alerts: none},
		}},
		{name: "skewed agent clock: slot beyond max_slot_skew is rejected", steps: []step{
			{at: 0, res: []report.Result{res("api", "eu", "eu-1", 10, S, F)}, err: ErrSlotFuture, cells: map[string]State{"api/eu": "absent"}},
		}},
		{name: "slot within max_slot_skew is accepted", steps: []step{
			{at: 0, res: []report.Result{res("api", "eu", "eu-1", 2, S, P)}, cells: map[string]State{"api/eu": StateOK}},
		}},
		{name: "slot older than max_slot_age is rejected", steps: []step{
			{at: 2 * time.Hour, res: []report.Result{res("api", "eu", "eu-1", 0, S, F)}, err: ErrSlotOld},
		}},
		{name: "no data with live probers is results-missing; with none the region is blind", steps: []step{
			{at: 0, mem: three, res: passAll("api", 0)},
			{at: sec(60), res: []report.Result{res("api", "eu", "eu-1", 2, S, P), res("api", "ap", "ap-1", 2, S, P)}, alerts: none},
			{at: sec(95), res: []report.Result{res("api", "eu", "eu-1", 3, S, P), res("api", "ap", "ap-1", 3, S, P)},
				cells: map[string]State{"api/us": StateMissing}, alerts: []string{"VantageResultsMissing us"}},
			{at: sec(96), mem: &Membership{Known: true, Probers: map[string][]string{"eu": {"eu-1"}, "ap": {"ap-1"}}},
				cells: map[string]State{"api/us": StateBlind}, alerts: []string{"VantageRegionBlind us"}},
			{at: sec(120), res: []report.Result{res("api", "us", "us-1", 4, S, P)}, cells: map[string]State{"api/us": StateOK}, alerts: none},
		}},
		{name: "without a membership view missing data is no_data", steps: []step{
			{at: 0, res: passAll("api", 0)},
			{at: sec(90), res: []report.Result{res("api", "eu", "eu-1", 3, S, P)}, cells: map[string]State{"api/us": StateNoData},
				alerts: []string{"VantageResultsMissing ap,us"}},
		}},
		{name: "a replay of old results after an outage is not fresh data", steps: []step{
			{at: 0, mem: three, res: []report.Result{res("api", "eu", "eu-1", 0, S, P), res("api", "us", "us-1", 0, S, P)}},
			{at: sec(200), res: []report.Result{res("api", "eu", "eu-1", 6, S, P), res("api", "us", "us-1", 1, S, P)},
				cells: map[string]State{"api/us": StateMissing}},
		}},
		{name: "a no-data region does not count towards global", steps: []step{
			{at: 0, mem: three, res: passAll("api", 0)},
			{at: sec(95), res: []report.Result{res("api", "eu", "eu-1", 3, S, F), res("api", "eu", "eu-2", 3, C, F), res("api", "ap", "ap-1", 3, S, P)},
				cells: map[string]State{"api/us": StateMissing}, alerts: []string{"VantageJourneyRegional regional eu", "VantageResultsMissing us"}},
		}},
		{name: "journey removed from config: Forget resolves its alerts", steps: []step{
			{at: 0, res: []report.Result{res("api", "eu", "eu-1", 0, S, F), res("api", "eu", "eu-2", 0, C, F), res("api", "us", "us-1", 0, S, P)},
				alerts: []string{"VantageJourneyRegional regional eu"}},
			{at: sec(1), forget: "api", alerts: none, cells: map[string]State{"api/eu": "absent"}},
		}},
		{name: "journey silent for forget_after expires", cfg: func(c *Config) { c.ForgetAfter = time.Minute }, steps: []step{
			{at: 0, res: []report.Result{res("api", "eu", "eu-1", 0, S, P)}},
			{at: sec(61), cells: map[string]State{"api/eu": "absent"}, alerts: none},
		}},
		{name: "journeys sharing a component failing in the same regions form one incident", steps: []step{
			{at: 0, mem: three, res: append(passAll("clone", 0), passAll("push", 0)...)},
			{at: sec(31), res: []report.Result{res("clone", "eu", "eu-1", 1, S, F), res("clone", "eu", "eu-2", 1, C, F),
				res("push", "eu", "eu-1", 1, S, F), res("push", "eu", "eu-2", 1, C, F)},
				alerts: []string{"VantageJourneyRegional regional eu"}},
		}},
		{name: "invalid result changes nothing", steps: []step{
			{at: 0, res: []report.Result{{Journey: "api", Region: "eu"}}, err: ErrInvalid, cells: map[string]State{"api/eu": "absent"}},
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { play(t, sc) })
	}
}

func TestVerdict_IncidentListsItsJourneysAndAnnotations(t *testing.T) {
	tr := play(t, scenario{steps: []step{
		{at: 0, mem: three, res: append(passAll("clone", 0), passAll("push", 0)...)},
		{at: sec(31), res: []report.Result{res("clone", "eu", "eu-1", 1, S, F), res("clone", "eu", "eu-2", 1, C, F),
			res("push", "eu", "eu-1", 1, S, F), res("push", "eu", "eu-2", 1, C, F), res("api", "eu", "eu-1", 1, S, F), res("api", "eu", "eu-2", 1, C, F)}},
	}})
	open := tr.Open()
	if len(open) != 2 {
		t.Fatalf("want 2 incidents (edge and api), got %+v", open)
	}
	var edge Condition
	for _, c := range open {
		if strings.Join(c.Journeys, ",") == "clone,push" {
			edge = c
		}
	}
	if edge.Key == "" {
		t.Fatalf("no incident lists clone and push: %+v", open)
	}
	if edge.FailingStep != "clone" || edge.SampleError != "502 Bad Gateway" || !edge.FirstFailingSlot.Equal(t0.Add(interval)) ||
		edge.Runbook != "https://runbooks.example/clone" || edge.TraceID == "" || strings.Join(edge.Components, ",") != "https-edge" {
		t.Fatalf("incident annotations wrong: %+v", edge)
	}
}

func TestVerdict_ConditionKeysAreUniqueAndStable(t *testing.T) {
	// clone has data from eu only (scope unknown), push from eu and us
	// (regional): same component, same failing region, different scope.
	tr := play(t, scenario{steps: []step{
		{at: 0, res: []report.Result{res("clone", "eu", "eu-1", 0, S, F), res("clone", "eu", "eu-2", 0, C, F),
			res("push", "eu", "eu-1", 0, S, F), res("push", "eu", "eu-2", 0, C, F), res("push", "us", "us-1", 0, S, P)},
			alerts: []string{"VantageJourneyRegional regional eu", "VantageJourneyRegional unknown eu"}},
	}})
	if out := tr.Evaluate(t0.Add(sec(1))); len(out.Changes) != 0 {
		t.Fatalf("a steady state must not churn: %+v", out.Changes)
	}
}

func TestVerdict_ConditionKeysAreDeterministic(t *testing.T) {
	mk := func() string {
		tr := play(t, scenario{steps: []step{{at: 0, res: []report.Result{res("api", "eu", "eu-1", 0, S, F), res("api", "eu", "eu-2", 0, C, F), res("api", "us", "us-1", 0, S, P)}}}})
		return tr.Open()[0].Key
	}
	if a, b := mk(), mk(); a != b || a == "" {
		t.Fatalf("keys differ: %q %q", a, b)
	}
}

func TestVerdict_StateRoundTripKeepsOpenConditionsAndVerdicts(t *testing.T) {
	tr := play(t, scenario{steps: []step{{at: 0, mem: three, res: []report.Result{res("api", "eu", "eu-1", 0, S, F), res("api", "eu", "eu-2", 0, C, F), res("api", "us", "us-1", 0, S, P)}}}})
	b, err := tr.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	tr2 := New(DefaultConfig())
	if err := tr2.RestoreState(b); err != nil {
		t.Fatal(err)
	}
	if out := tr2.Evaluate(t0.Add(sec(1))); len(out.Changes) != 0 || len(out.Cells) != 0 {
		t.Fatalf("restored tracker reports changes: %+v", out)
	}
	// The restored tracker resolves after two passes.
	tr2.Accept(res("api", "eu", "eu-1", 1, S, P), t0.Add(sec(30)))
	tr2.Accept(res("api", "eu", "eu-1", 2, S, P), t0.Add(sec(60)))
	out := tr2.Evaluate(t0.Add(sec(60)))
	if len(out.Changes) != 1 || out.Changes[0].Type != Resolved {
		t.Fatalf("want one resolution, got %+v", out.Changes)
	}
	if err := New(DefaultConfig()).RestoreState([]byte(`{"version":99}`)); err == nil {
		t.Fatal("a foreign version must be rejected")
	}
}

func TestVerdict_RestoredAfterDowntime_NoDataCountsFromTheRestart(t *testing.T) {
	// eu fails (a regional incident), us and ap pass; the aggregator then
	// stops for 80 s (no_data is 3 × 30 s = 90 s).
	tr := play(t, scenario{steps: []step{{at: 0, mem: three, res: []report.Result{res("api", "eu", "eu-1", 0, S, F),
		res("api", "eu", "eu-2", 0, C, F), res("api", "us", "us-1", 0, S, P), res("api", "ap", "ap-1", 0, S, P)},
		alerts: []string{"VantageJourneyRegional regional eu"}}}})
	b, err := tr.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	restart := func(hold bool) *Tracker {
		tr2 := New(DefaultConfig())
		if err := tr2.RestoreState(b); err != nil {
			t.Fatal(err)
		}
		tr2.SetMembership(*three)
		if hold {
			tr2.HoldNoData(t0.Add(sec(80)))
		}
		tr2.Evaluate(t0.Add(sec(100)))
		return tr2
	}
	// Without the hold, 20 s after the restart every region looks silent
	// and the open incident loses its scope: the failure this test guards.
	if got := alertsOf(restart(false)); strings.Join(got, ",") == "VantageJourneyRegional regional eu" {
		t.Fatalf("the scenario does not reproduce the restart problem: %q", got)
	}
	tr2 := restart(true)
	if got := alertsOf(tr2); strings.Join(got, ",") != "VantageJourneyRegional regional eu" {
		t.Fatalf("20 s after a restart: open alerts %q, want only the regional incident", got)
	}
	// Silence that lasts no_data after the restart is reported.
	tr2.Evaluate(t0.Add(sec(80 + 91)))
	if got := strings.Join(alertsOf(tr2), ","); !strings.Contains(got, "VantageResultsMissing") {
		t.Fatalf("no_data after the restart: open alerts %q, want results missing", got)
	}
}

func TestVerdict_CellChangesReportRecovery(t *testing.T) {
	tr := New(DefaultConfig())
	tr.Accept(res("api", "eu", "eu-1", 0, S, F), t0)
	tr.Accept(res("api", "eu", "eu-2", 0, C, F), t0)
	if out := tr.Evaluate(t0); len(out.Cells) != 1 || out.Cells[0].To != StateFailing {
		t.Fatalf("want ok→failing, got %+v", out.Cells)
	}
	for k := 1; k <= 2; k++ {
		tr.Accept(res("api", "eu", "eu-1", k, S, P), t0.Add(time.Duration(k)*interval))
	}
	out := tr.Evaluate(t0.Add(2 * interval))
	if len(out.Cells) != 1 || out.Cells[0].From != StateFailing || out.Cells[0].To == StateFailing {
		t.Fatalf("want recovery from failing, got %+v", out.Cells)
	}
}

func TestVerdict_HistoryIsBounded(t *testing.T) {
	tr := New(DefaultConfig())
	for k := 0; k < 500; k++ {
		if err := tr.Accept(res("api", "eu", "eu-1", k, S, P), t0.Add(time.Duration(k)*interval)); err != nil {
			t.Fatal(err)
		}
	}
	c := tr.journeys["api"].cell("eu")
	if n := c.slotCount(); n > tr.keepSlots() {
		t.Fatalf("%d slots kept, bound %d", n, tr.keepSlots())
	}
	if err := tr.Accept(res("api", "eu", "eu-2", 3, C, F), t0.Add(500*interval)); !errors.Is(err, ErrSlotOld) {
		t.Fatalf("a result before the kept history: %v", err)
	}
}

// richState builds a tracker whose state uses every part of the encoding:
// several agents, confirmations, probe errors, failures with samples,
// non-canonical and non-hex IDs, fractional slots and an open incident.
func richState(t testing.TB) *Tracker {
	tr := New(DefaultConfig())
	tr.SetMembership(*three)
	accept := func(r report.Result, now time.Time) {
		if err := tr.Accept(r, now); err != nil {
			t.Fatalf("accept %s: %v", r.ID, err)
		}
	}
	for k := 0; k < 20; k++ {
		now := t0.Add(time.Duration(k) * interval)
		for _, r := range passAll("clone", k) {
			accept(r, now)
		}
		st := P
		if k >= 17 {
			st = F
		}
		accept(res("api", "eu", "eu-1", k, S, st), now)
		accept(res("api", "us", "us-1", k, S, P), now)
		if k%5 == 0 {
			accept(res("api", "eu", "eu-2", k, C, E), now)
		}
		odd := res("push", "ap", "ap-1", k, S, P)
		odd.ID, odd.TraceID = fmt.Sprintf("custom-id-%d", k), "NOT-HEX"
		odd.Slot = odd.Slot.Add(123456789 * time.Nanosecond)
		accept(odd, now)
		tr.Evaluate(now)
	}
	if len(tr.Open()) == 0 {
		t.Fatal("rich state has no open condition")
	}
	return tr
}

func TestVerdict_StateRoundTripKeepsEveryCellAndSample(t *testing.T) {
	tr := richState(t)
	now := t0.Add(19 * interval)
	b, err := tr.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	tr2 := New(DefaultConfig())
	if err := tr2.RestoreState(b); err != nil {
		t.Fatal(err)
	}
	if out := tr2.Evaluate(now); len(out.Changes) != 0 || len(out.Cells) != 0 {
		t.Fatalf("restored tracker reports changes: %+v", out)
	}
	if a, b := snapshotJSON(t, tr), snapshotJSON(t, tr2); a != b {
		t.Fatalf("snapshot differs after restore:\n%s\n%s", a, b)
	}
	// Encoding the restored state gives the same bytes.
	b1, err := tr.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	b2, err := tr2.MarshalState()
	if err != nil || string(b1) != string(b2) {
		t.Fatalf("re-encoded state differs (%v)", err)
	}
	// Both dedup paths survive: canonical IDs and hashed custom ones.
	for _, r := range []report.Result{res("api", "eu", "eu-1", 18, S, F), res("api", "eu", "eu-2", 15, C, E)} {
		if err := tr2.Accept(r, now); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("re-sent %s after restore: %v", r.ID, err)
		}
	}
	odd := res("push", "ap", "ap-1", 19, S, P)
	odd.ID, odd.Slot = "custom-id-19", odd.Slot.Add(123456789*time.Nanosecond)
	if err := tr2.Accept(odd, now); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("re-sent custom ID after restore: %v", err)
	}
}

// snapshotJSON is the Snapshot as the JSON API shows it.
func snapshotJSON(t *testing.T, tr *Tracker) string {
	t.Helper()
	b, err := json.Marshal(tr.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestVerdict_DuplicateIsRecognisedWhateverTheIDForm(t *testing.T) {
	tr := New(DefaultConfig())
	canon := res("api", "eu", "eu-1", 0, S, P)
	custom := res("api", "eu", "eu-2", 0, S, P)
	custom.ID = "agent-chosen-id"
	for _, r := range []report.Result{canon, custom} {
		if err := tr.Accept(r, t0); err != nil {
			t.Fatal(err)
		}
		if err := tr.Accept(r, t0); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("re-send of %s: %v", r.ID, err)
		}
	}
	// A result carrying another run's ID is that run again.
	thief := res("api", "eu", "eu-3", 0, S, F)
	thief.ID = canon.ID
	if err := tr.Accept(thief, t0); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("a result with another run's canonical ID: %v", err)
	}
	// And a run whose canonical ID was used before by a custom-ID result.
	late := res("api", "eu", "eu-4", 0, S, P)
	early := res("api", "eu", "eu-5", 0, S, P)
	early.ID = late.ID
	if err := tr.Accept(early, t0); err != nil {
		t.Fatal(err)
	}
	if err := tr.Accept(late, t0); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("a canonical ID already used by a custom one: %v", err)
	}
	if c := tr.Counters(); c.Accepted != 3 || c.Duplicate != 4 {
		t.Fatalf("counters %+v, want 3 accepted and 4 duplicates", c)
	}
}

func TestVerdict_CorruptStateIsRejectedWithoutChange(t *testing.T) {
	tr := richState(t)
	b, err := tr.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	target := New(DefaultConfig())
	for _, cut := range []int{len(b) - 1, len(b) / 2, 20} {
		if err := target.RestoreState(b[:cut]); err == nil {
			t.Fatalf("a state cut at %d bytes of %d was accepted", cut, len(b))
		}
	}
	if len(target.Snapshot().Journeys) != 0 {
		t.Fatal("a rejected state changed the tracker")
	}
}

func FuzzRestoreState(f *testing.F) {
	tr := New(DefaultConfig())
	tr.Accept(res("api", "eu", "eu-1", 0, S, F), t0)
	tr.Evaluate(t0)
	b, _ := tr.MarshalState()
	f.Add(b)
	b, _ = richState(f).MarshalState()
	f.Add(b)
	f.Add([]byte(`{"version":1,"journeys":{"x":null}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr := New(DefaultConfig())
		if err := tr.RestoreState(b); err != nil {
			return
		}
		tr.Evaluate(t0)
		tr.Snapshot()
		// A state that decodes encodes and decodes again, and takes results.
		again, err := tr.MarshalState()
		if err != nil {
			t.Fatal(err)
		}
		if err := New(DefaultConfig()).RestoreState(again); err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		for _, r := range passAll("api", 1) {
			tr.Accept(r, t0.Add(interval))
		}
		tr.Evaluate(t0.Add(interval))
	})
}

// TestVerdict_SkippingUnchangedJourneysChangesNoOutcome drives two
// trackers with the same random results, membership changes and clock
// jumps; one re-evaluates every journey each time (as if every journey had
// new results), the other skips the journeys nothing can have changed.
// Their outcomes and snapshots must be identical.
func TestVerdict_SkippingUnchangedJourneysChangesNoOutcome(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fast, full := New(DefaultConfig()), New(DefaultConfig())
	journeys := []string{"clone", "push", "api", "web"}
	regions := map[string][]string{"eu": {"eu-1", "eu-2"}, "us": {"us-1", "us-2"}, "ap": {"ap-1"}}
	names := []string{"eu", "us", "ap"}
	now := t0
	for step := 0; step < 600; step++ {
		now = now.Add(time.Duration(rng.IntN(40)) * time.Second)
		switch rng.IntN(20) {
		case 0:
			m := Membership{Known: rng.IntN(4) != 0, Probers: map[string][]string{}}
			for _, r := range names {
				if rng.IntN(3) != 0 {
					m.Probers[r] = regions[r]
				}
			}
			fast.SetMembership(m)
			full.SetMembership(m)
		case 1:
			now = now.Add(-time.Duration(rng.IntN(200)) * time.Second) // the clock goes back
		}
		for n := rng.IntN(6); n > 0; n-- {
			j, reg := journeys[rng.IntN(len(journeys))], names[rng.IntN(len(names))]
			if j == "web" && reg != "eu" { // a journey that is silent most of the time
				continue
			}
			ags := regions[reg]
			k := int(now.Sub(t0)/interval) - rng.IntN(3)
			st := []report.Status{P, P, P, F, F, E}[rng.IntN(6)]
			trig := []report.Trigger{S, S, C}[rng.IntN(3)]
			r := res(j, reg, ags[rng.IntN(len(ags))], k, trig, st)
			e1, e2 := fast.Accept(r, now), full.Accept(r, now)
			if (e1 == nil) != (e2 == nil) {
				t.Fatalf("step %d: accept differs: %v / %v", step, e1, e2)
			}
		}
		for _, j := range full.journeys {
			j.dirty = true
		}
		o1, o2 := fast.Evaluate(now), full.Evaluate(now)
		if a, b := fmt.Sprintf("%+v", o1), fmt.Sprintf("%+v", o2); a != b {
			t.Fatalf("step %d: outcome differs\n fast: %s\n full: %s", step, a, b)
		}
		if a, b := snapshotJSON(t, fast), snapshotJSON(t, full); a != b {
			t.Fatalf("step %d: snapshot differs", step)
		}
	}
	if len(fast.Open()) == 0 {
		t.Fatal("the random run never opened a condition: it tests nothing")
	}
}
