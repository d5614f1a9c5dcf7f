package fleet

import (
	"fmt"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/pkg/schedule"
)

func prober(name, region string) Member {
	return Member{Name: name, Meta: Meta{Role: RoleProber, Region: region}}
}

func TestOwner_IsOneLiveProberPerRegion_SameForEveryOrdering(t *testing.T) {
	ms := []Member{
		prober("eu-1", "eu"), prober("eu-2", "eu"), prober("eu-3", "eu"),
		prober("us-1", "us"), prober("us-2", "us"),
		{Name: "agg", Meta: Meta{Role: RoleAggregator, Region: "eu"}},
		{Name: "obs", Meta: Meta{Role: RoleObserver, Region: "us"}},
	}
	for j := 0; j < 50; j++ {
		journey := fmt.Sprintf("journey-%d", j)
		for _, region := range []string{"eu", "us"} {
			owner, ok := Owner(journey, region, ms)
			if !ok {
				t.Fatalf("%s/%s: no owner", journey, region)
			}
			// Reversed membership order gives the same owner.
			rev := make([]Member, len(ms))
			for i := range ms {
				rev[len(ms)-1-i] = ms[i]
			}
			if o2, _ := Owner(journey, region, rev); o2 != owner {
				t.Fatalf("%s/%s: owner depends on order: %s vs %s", journey, region, owner, o2)
			}
			runners := 0
			for _, m := range ms {
				if m.Region == region && ShouldRun(journey, ModeOnePerRegion, m, ms) {
					runners++
					if m.Name != owner || m.Role != RoleProber {
						t.Fatalf("%s/%s: %s runs but owner is %s", journey, region, m.Name, owner)
					}
				}
			}
			if runners != 1 {
				t.Fatalf("%s/%s: %d runners, want 1", journey, region, runners)
			}
		}
	}
}

func TestOwner_SpreadsJourneysAcrossProbers(t *testing.T) {
	ms := []Member{prober("a", "eu"), prober("b", "eu"), prober("c", "eu")}
	count := map[string]int{}
	for j := 0; j < 300; j++ {
		o, _ := Owner(fmt.Sprintf("j%d", j), "eu", ms)
		count[o]++
	}
	for _, m := range ms {
		if count[m.Name] < 60 {
			t.Fatalf("uneven spread: %v", count)
		}
	}
}

func TestOwner_DeadOwnerMovesOnlyItsJourneys(t *testing.T) {
	ms := []Member{prober("a", "eu"), prober("b", "eu"), prober("c", "eu")}
	without := ms[1:] // "a" died
	for j := 0; j < 100; j++ {
		journey := fmt.Sprintf("j%d", j)
		before, _ := Owner(journey, "eu", ms)
		after, _ := Owner(journey, "eu", without)
		if before != "a" && before != after {
			t.Fatalf("%s moved from live %s to %s", journey, before, after)
		}
		if after == "a" {
			t.Fatalf("%s still owned by the dead node", journey)
		}
	}
}

func TestShouldRun_Table(t *testing.T) {
	ms := []Member{prober("a", "eu"), prober("b", "eu"), {Name: "agg", Meta: Meta{Role: RoleAggregator, Region: "eu"}}}
	owner, _ := Owner("api", "eu", ms)
	other := "a"
	if owner == "a" {
		other = "b"
	}
	byName := map[string]Member{"a": ms[0], "b": ms[1], "agg": ms[2]}
	for _, tc := range []struct {
		name, self, mode string
		want             bool
	}{
		{"owner runs one-per-region", owner, ModeOnePerRegion, true},
		{"non-owner skips one-per-region", other, ModeOnePerRegion, false},
		{"every prober runs every-agent", other, ModeEveryAgent, true},
		{"aggregator never runs one-per-region", "agg", ModeOnePerRegion, false},
		{"aggregator never runs every-agent", "agg", ModeEveryAgent, false},
		{"unknown mode fails safe to one runner", other, "bogus", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ShouldRun("api", tc.mode, byName[tc.self], ms); got != tc.want {
				t.Fatalf("ShouldRun = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestConfirmTarget_OtherProberInRegionAndOwnersElsewhere(t *testing.T) {
	ms := []Member{
		prober("eu-1", "eu"), prober("eu-2", "eu"), prober("eu-3", "eu"),
		prober("us-1", "us"), prober("us-2", "us"),
		prober("ap-1", "ap"),
		{Name: "agg", Meta: Meta{Role: RoleAggregator, Region: "eu"}},
	}
	for j := 0; j < 30; j++ {
		journey := fmt.Sprintf("j%d", j)
		origin, _ := Owner(journey, "eu", ms)
		var targets []string
		for _, m := range ms {
			if ConfirmTarget(journey, "eu", origin, m, ms) {
				targets = append(targets, m.Name)
			}
		}
		if len(targets) != 3 {
			t.Fatalf("%s: targets %v, want one per region", journey, targets)
		}
		regions := map[string]bool{}
		for _, name := range targets {
			if name == origin {
				t.Fatalf("%s: origin confirms itself", journey)
			}
			for _, m := range ms {
				if m.Name == name {
					regions[m.Region] = true
					if m.Region != "eu" {
						if o, _ := Owner(journey, m.Region, ms); o != name {
							t.Fatalf("%s: %s confirms but %s owns %s", journey, name, o, m.Region)
						}
					}
				}
			}
		}
		if !regions["eu"] || !regions["us"] || !regions["ap"] {
			t.Fatalf("%s: targets %v miss a region", journey, targets)
		}
	}
}

func TestConfirmTarget_AloneInRegion_NoLocalConfirmation(t *testing.T) {
	ms := []Member{prober("eu-1", "eu"), prober("us-1", "us")}
	if ConfirmTarget("api", "eu", "eu-1", ms[0], ms) {
		t.Fatal("origin must not confirm itself")
	}
	if !ConfirmTarget("api", "eu", "eu-1", ms[1], ms) {
		t.Fatal("the only prober of us must confirm")
	}
}

func TestOffset_RegionsSortedByName(t *testing.T) {
	ms := []Member{prober("x", "us"), prober("y", "eu"), prober("z", "ap"), {Name: "agg", Meta: Meta{Role: RoleAggregator, Region: "zz"}}}
	iv := 30 * time.Second
	for _, tc := range []struct {
		region string
		index  int
	}{{"ap", 0}, {"eu", 1}, {"us", 2}} {
		if got, want := Offset(tc.region, ms, iv), schedule.PhaseOffset(tc.index, 3, iv); got != want {
			t.Fatalf("%s: offset %s, want %s", tc.region, got, want)
		}
	}
	if got := Offset("zz", ms, iv); got != 0 {
		t.Fatalf("region without probers: offset %s, want 0", got)
	}
	if got := Offset("us", ms, iv); got != 20*time.Second {
		t.Fatalf("us offset %s, want 20s", got)
	}
}

func TestTimingsFrom_PresetWithOverrides(t *testing.T) {
	lan, err := TimingsFrom("lan", 0, 0, 0, 0)
	if err != nil || lan != LANTimings() {
		t.Fatalf("plain lan: %+v %v", lan, err)
	}
	fast, err := TimingsFrom("lan", 500*time.Millisecond, 250*time.Millisecond, 0, 2)
	if err != nil || fast.ProbeInterval != 500*time.Millisecond || fast.ProbeTimeout != 250*time.Millisecond || fast.SuspicionMult != 2 || fast.GossipInterval != lan.GossipInterval {
		t.Fatalf("overrides: %+v %v", fast, err)
	}
	if _, err := TimingsFrom("wan", 100*time.Millisecond, 0, 0, 0); err == nil {
		t.Fatal("a probe interval below the wan probe timeout was accepted")
	}
	if _, err := TimingsFrom("moon", 0, 0, 0, 0); err == nil {
		t.Fatal("unknown preset accepted")
	}
}
