package campaign

import (
	"reflect"
	"testing"
	"time"
)

func planOpts(seed uint64, n int) PlanOptions {
	var agents []Agent
	for _, r := range []string{"eu", "us", "ap"} {
		agents = append(agents, Agent{Name: r + "-1", Region: r}, Agent{Name: r + "-2", Region: r})
	}
	return PlanOptions{Seed: seed, Faults: n, Interval: 5 * time.Second, Regions: []string{"eu", "us", "ap"}, Agents: agents}
}

func TestNewPlan_SameSeedSamePlan_OtherSeedOtherPlan(t *testing.T) {
	a, b, c := NewPlan(planOpts(11, 30)), NewPlan(planOpts(11, 30)), NewPlan(planOpts(12, 30))
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed drew two different plans")
	}
	if reflect.DeepEqual(a.Faults, c.Faults) {
		t.Fatal("seeds 11 and 12 drew the same plan")
	}
}

func TestNewPlan_EveryCategory_Overlaps_NoConflictingFaultsAtOnce(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		p := NewPlan(planOpts(seed, 30))
		if len(p.Faults) != 30 {
			t.Fatalf("seed %d: %d faults, want 30", seed, len(p.Faults))
		}
		cats := map[string]int{}
		overlapping := 0
		for i, f := range p.Faults {
			cats[f.Category]++
			if f.Onset+f.Duration+p.Settle > p.Length {
				t.Fatalf("seed %d: fault %d ends after the plan's length", seed, f.N)
			}
			for _, g := range p.Faults[i+1:] {
				if g.Onset >= f.Onset+f.Duration+p.Settle {
					continue
				}
				overlapping++
				if f.conflicts(g) {
					t.Fatalf("seed %d: faults %q and %q overlap but conflict", seed, f.Name, g.Name)
				}
			}
		}
		for _, c := range []string{CatRegional, CatGlobal, CatAgentLocal, CatPartial, CatReplicaLag, CatPipelineStall, CatProberDeath, CatAggRestart} {
			if cats[c] < 2 {
				t.Fatalf("seed %d: category %s drawn %d times, want several", seed, c, cats[c])
			}
		}
		if overlapping == 0 {
			t.Fatalf("seed %d: no two faults overlap", seed)
		}
		if p.Length > 20*time.Minute {
			t.Fatalf("seed %d: 30 faults take %s, want at most 20 min at a 5 s interval", seed, p.Length)
		}
	}
}

func TestConflicts_SameJourneyTwoRegionsNeverTogether_AgentFaultBesideOtherRegion(t *testing.T) {
	eu := &PlannedFault{Category: CatRegional, journeys: []string{JourneyHg}, regions: []string{"eu"}, product: true}
	us := &PlannedFault{Category: CatRegional, journeys: []string{JourneyHg}, regions: []string{"us"}, product: true}
	usGit := &PlannedFault{Category: CatRegional, journeys: []string{JourneyGitHTTP}, regions: []string{"us"}, product: true}
	agentUS := &PlannedFault{Category: CatAgentLocal, journeys: allJourneys, regions: []string{"us"}}
	restart := &PlannedFault{Category: CatAggRestart}
	for _, c := range []struct {
		a, b *PlannedFault
		want bool
	}{{eu, us, true}, {eu, usGit, false}, {agentUS, eu, false}, {agentUS, usGit, true}, {restart, eu, false}, {restart, &PlannedFault{Category: CatAggRestart}, true}} {
		if got := c.a.conflicts(c.b); got != c.want {
			t.Errorf("conflicts(%s %v, %s %v) = %v, want %v", c.a.Category, c.a.regions, c.b.Category, c.b.regions, got, c.want)
		}
	}
}

func TestDriverReport_AttributesAlertsToTheFaultTheyMatch(t *testing.T) {
	rec := NewRecorder(nil)
	st := &Stack{Rec: rec, o: Options{Interval: 5 * time.Second}}
	hgEU := &PlannedFault{N: 1, Name: "hg in eu", Category: CatRegional, journeys: []string{"hg"}, regions: []string{"eu"}, product: true,
		Expect: Expect{Scope: ScopeRegional, Regions: []string{"eu"}, Journeys: []string{"hg"}}}
	gitUS := &PlannedFault{N: 2, Name: "git in us", Category: CatRegional, journeys: []string{"git"}, regions: []string{"us"}, product: true,
		Expect: Expect{Scope: ScopeRegional, Regions: []string{"us"}, Journeys: []string{"git"}}}
	agent := &PlannedFault{N: 3, Name: "ap-1 broken", Category: CatAgentLocal, journeys: []string{"hg", "git", "http"}, regions: []string{"ap"},
		Expect: Expect{Scope: ScopeAgentLocal, Agent: "ap-1"}}
	restart := &PlannedFault{N: 4, Name: "restart", Category: CatAggRestart, Expect: Expect{Scope: ScopeNone}}
	d := &Driver{Stack: st, Plan: &Plan{Faults: []*PlannedFault{hgEU, gitUS, agent, restart}, Settle: 30 * time.Second}, start: t0,
		onset: map[int]time.Time{1: t0, 2: t0.Add(5 * time.Second), 3: t0, 4: t0.Add(20 * time.Second)},
		clear: map[int]time.Time{1: t0.Add(60 * time.Second), 2: t0.Add(60 * time.Second), 3: t0.Add(60 * time.Second), 4: t0.Add(21 * time.Second)},
		errs:  map[int]error{}}
	suspect := ev(9, "firing", AlertProberSuspect, "s", "hg", "ap")
	suspect.Labels["agent"] = "ap-1"
	rec.events = []Event{
		ev(12, "firing", AlertRegional, "k1", "hg", "eu"),
		ev(13, "firing", AlertRegional, "k4", "git", "us"),
		ev(14, "firing", AlertGlobal, "k2", "git", "us,eu"),
		ev(20, "resolved", AlertRegional, "k4", "git", "us"), // resolved before the clear: not unresolved
		suspect,
		ev(25, "firing", AlertRegional, "k1", "hg", "eu"), // a second page after the restart
		ev(30, "firing", AlertRegional, "k3", "http", "us"),
		ev(70, "resolved", AlertRegional, "k1", "hg", "eu"),
		ev(71, "resolved", AlertProberSuspect, "s", "hg", "ap"),
	}
	rep := d.Report(Accounting{}, "replay")
	byN := map[int]FaultReport{}
	for _, f := range rep.Items {
		byN[f.N] = f
	}
	if f := byN[1]; f.Verdict != "1 FALSE PAGE(S)" || f.LatencyS != 12 {
		t.Errorf("hg in eu: %+v, want detected in 12 s with the repeat page as a false page", f)
	}
	if f := byN[2]; !f.Misclassified || len(f.Unresolved) != 1 || f.Unresolved[0] != "k2" {
		t.Errorf("git in us paged globally: %+v, want misclassified and unresolved", f)
	}
	if f := byN[3]; f.Verdict != "ok" || f.LatencyS != 9 {
		t.Errorf("agent-local: %+v", f)
	}
	if rep.FalsePages != 2 || len(rep.Unattributed) != 1 || rep.Misclassified != 1 || rep.Missed != 0 {
		t.Errorf("report: false pages %d unattributed %v misclassified %d missed %d", rep.FalsePages, rep.Unattributed, rep.Misclassified, rep.Missed)
	}
	if rep.Latency[ScopeRegional].N != 2 || rep.Latency[ScopeAgentLocal].N != 1 {
		t.Errorf("latency: %+v", rep.Latency)
	}
}
