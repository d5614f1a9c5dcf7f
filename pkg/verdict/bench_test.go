package verdict

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/pkg/report"
)

// fleetSim simulates DESIGN.md's protocol timeline for one journey: 3
// regions shifted by interval/3, scheduled runs, confirmation requests on a
// failure (one other agent of the region plus each other region's owner),
// run and delivery delays, and an outage starting at a random instant in
// the failing regions. It returns the time from the outage start to the
// first condition of the wanted alert.
func fleetSim(rng *rand.Rand, failing map[string]bool, want string) time.Duration {
	const iv = 30 * time.Second
	regions := []string{"eu", "us", "ap"}
	agents := map[string][]string{"eu": {"eu-1", "eu-2"}, "us": {"us-1", "us-2"}, "ap": {"ap-1"}}
	runTime, confirmDelay, delivery := 2*time.Second, 1*time.Second, 500*time.Millisecond
	base := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	outage := base.Add(5*iv + time.Duration(rng.Int64N(int64(iv))))
	type ev struct {
		at time.Time
		r  report.Result
	}
	var evs []ev
	mk := func(region, agent string, slot time.Time, trig report.Trigger, ranAt time.Time) report.Result {
		st := report.StatusPass
		if failing[region] && !ranAt.Before(outage) {
			st = report.StatusFail
		}
		r := report.Result{Journey: "clone", Kind: "git", Region: region, Agent: agent, Slot: slot, Trigger: trig, Status: st, Interval: iv}
		r.ID = report.ResultID(r.Journey, region, agent, slot, trig)
		return r
	}
	for i, region := range regions {
		for k := 0; k < 12; k++ {
			slot := base.Add(time.Duration(k)*iv + time.Duration(i)*iv/3)
			r := mk(region, agents[region][0], slot, report.TriggerSchedule, slot)
			evs = append(evs, ev{slot.Add(runTime + delivery), r})
			if r.Status != report.StatusFail {
				continue
			}
			ranAt := slot.Add(runTime + confirmDelay)
			for _, other := range regions {
				ag := agents[other][0]
				if other == region {
					if len(agents[other]) < 2 {
						continue
					}
					ag = agents[other][1]
				}
				evs = append(evs, ev{ranAt.Add(runTime + delivery), mk(other, ag, slot, report.TriggerConfirm, ranAt)})
			}
		}
	}
	sort.SliceStable(evs, func(a, b int) bool { return evs[a].at.Before(evs[b].at) })
	tr := New(DefaultConfig())
	tr.SetMembership(Membership{Known: true, Probers: agents})
	for _, e := range evs {
		if err := tr.Accept(e.r, e.at); err != nil {
			continue
		}
		for _, ch := range tr.Evaluate(e.at).Changes {
			if ch.Type == Opened && ch.Condition.Alert == want {
				return e.at.Sub(outage)
			}
		}
	}
	return time.Hour
}

func p95(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(a, b int) bool { return ds[a] < ds[b] })
	return ds[len(ds)*95/100]
}

// BenchmarkDetection_GlobalOutage reports the p95 from a global outage's
// start to the VantageJourneyGlobal condition (goal ≤ 15 s at a 30 s
// interval with 3 regions), over 200 simulated outages per iteration.
func BenchmarkDetection_GlobalOutage(b *testing.B) {
	var got time.Duration
	for i := 0; i < b.N; i++ {
		rng := rand.New(rand.NewPCG(1, uint64(i)))
		var ds []time.Duration
		for n := 0; n < 200; n++ {
			ds = append(ds, fleetSim(rng, map[string]bool{"eu": true, "us": true, "ap": true}, AlertGlobal))
		}
		got = p95(ds)
	}
	b.ReportMetric(got.Seconds(), "value")
	b.ReportMetric(15, "goal")
}

// BenchmarkDetection_RegionalOutage: p95 from an outage of a region with
// two probers (a lone prober has no in-region confirmation) to the
// VantageJourneyRegional condition (goal ≤ interval + 10 s = 40 s).
func BenchmarkDetection_RegionalOutage(b *testing.B) {
	var got time.Duration
	for i := 0; i < b.N; i++ {
		rng := rand.New(rand.NewPCG(2, uint64(i)))
		var ds []time.Duration
		for n := 0; n < 200; n++ {
			ds = append(ds, fleetSim(rng, map[string]bool{"eu": true}, AlertRegional))
		}
		got = p95(ds)
	}
	b.ReportMetric(got.Seconds(), "value")
	b.ReportMetric(40, "goal")
}

// BenchmarkTracker_AcceptEvaluate measures one Accept plus Evaluate with
// 200 journeys in 3 regions.
func BenchmarkTracker_AcceptEvaluate(b *testing.B) {
	tr := New(DefaultConfig())
	iv := 30 * time.Second
	base := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	var rs []report.Result
	for k := 0; k < 20; k++ {
		for j := 0; j < 200; j++ {
			for _, reg := range []string{"eu", "us", "ap"} {
				slot := base.Add(time.Duration(k) * iv)
				name := "j" + string(rune('a'+j%26)) + string(rune('a'+j/26))
				r := report.Result{Journey: name, Kind: "http", Region: reg, Agent: reg + "-1", Slot: slot, Trigger: report.TriggerSchedule,
					Status: report.StatusPass, Interval: iv}
				r.ID = report.ResultID(name, reg, r.Agent, slot, r.Trigger)
				rs = append(rs, r)
			}
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := rs[i%len(rs)]
		now := r.Slot.Add(time.Second)
		_ = tr.Accept(r, now)
		tr.Evaluate(now)
	}
}
