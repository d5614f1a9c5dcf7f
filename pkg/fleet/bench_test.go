package fleet

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// benchAgents is the cluster size; 50 memberlist agents run comfortably on
// loopback on a 2-core machine.
const benchAgents = 50

// benchJourneys are the one-per-region journeys whose owners must be agreed.
var benchJourneys = func() []string {
	var js []string
	for i := 0; i < 40; i++ {
		js = append(js, fmt.Sprintf("journey-%02d", i))
	}
	return js
}()

// benchCluster starts n probers over 5 regions with the given timings.
func benchCluster(b *testing.B, n int, t Timings) []*Fleet {
	b.Helper()
	key := mustKey(b)
	regions := []string{"ap", "eu", "sa", "us", "za"}
	var nodes []*Fleet
	for i := 0; i < n; i++ {
		cfg := Config{
			Name: fmt.Sprintf("agent-%02d", i), Fleet: "bench", Bind: "127.0.0.1:0", Keys: [][]byte{key},
			Meta:    Meta{Role: RoleProber, Region: regions[i%len(regions)], Version: "bench", ConfigDigest: "d"},
			Timings: t, Logger: quietLogger(), JoinBackoff: time.Second,
		}
		if i > 0 {
			cfg.Join = []string{nodes[0].Addr(), nodes[i/2].Addr()}
		}
		f, err := New(context.Background(), cfg)
		if err != nil {
			b.Fatalf("agent %d: %v", i, err)
		}
		nodes = append(nodes, f)
	}
	b.Cleanup(func() {
		for _, f := range nodes {
			f.Close(time.Second)
		}
	})
	eventually(b, 60*time.Second, "every agent sees the whole cluster", func() bool { return agree(nodes, nodeNames(nodes)) })
	return nodes
}

// ownersFrom computes, from one membership, the owner of every bench
// journey in every region.
func ownersFrom(ms []Member) string {
	rs := Regions(ms)
	out := make([]string, 0, len(rs)*len(benchJourneys))
	for _, r := range rs {
		for _, j := range benchJourneys {
			o, _ := Owner(j, r, ms)
			out = append(out, o)
		}
	}
	return fmt.Sprint(out)
}

// deathToAgreement kills victim without a leave and returns how long until
// every survivor computes the owners that the membership without the victim
// gives.
func deathToAgreement(b *testing.B, nodes []*Fleet, victim *Fleet) time.Duration {
	survivors := without(nodes, victim)
	var expected []Member
	for _, m := range survivors[0].Snapshot().Members {
		if m.Name != victim.Name() {
			expected = append(expected, m)
		}
	}
	want := ownersFrom(expected)
	start := time.Now()
	victim.kill()
	eventually(b, 3*time.Minute, "survivors agree on the new owners", func() bool {
		for _, s := range survivors {
			if ownersFrom(s.Snapshot().Members) != want {
				return false
			}
		}
		return true
	})
	return time.Since(start)
}

// runDeaths kills `deaths` agents one after another and returns the mean
// and the worst time to agreement.
func runDeaths(b *testing.B, nodes []*Fleet, deaths int) (mean, worst time.Duration, rest []*Fleet) {
	var total time.Duration
	for i := 0; i < deaths; i++ {
		victim := nodes[len(nodes)-1-i*7]
		d := deathToAgreement(b, nodes, victim)
		nodes = without(nodes, victim)
		total += d
		worst = max(worst, d)
	}
	return total / time.Duration(deaths), worst, nodes
}

// BenchmarkFleet_DeathToOwnerAgreement_LAN: with memberlist's LAN timings,
// the time from an agent's death (no leave) to every survivor agreeing on
// the new owners, mean over 3 deaths in a 50-agent cluster. Goal: ≤ 5 s.
func BenchmarkFleet_DeathToOwnerAgreement_LAN(b *testing.B) {
	for i := 0; i < b.N; i++ {
		nodes := benchCluster(b, benchAgents, LANTimings())
		mean, worst, _ := runDeaths(b, nodes, 3)
		b.ReportMetric(mean.Seconds(), "value")
		b.ReportMetric(worst.Seconds(), "worst-s")
		b.ReportMetric(5, "goal")
	}
}

// BenchmarkFleet_DeathToOwnerAgreement_FastLAN is the same with LAN
// timings tuned for detection (probe every 500 ms, suspicion multiplier
// 2), the setting that gossip.probe_interval / suspicion_mult give.
func BenchmarkFleet_DeathToOwnerAgreement_FastLAN(b *testing.B) {
	t := LANTimings()
	t.ProbeInterval, t.ProbeTimeout, t.SuspicionMult = 500*time.Millisecond, 250*time.Millisecond, 2
	for i := 0; i < b.N; i++ {
		nodes := benchCluster(b, benchAgents, t)
		mean, worst, _ := runDeaths(b, nodes, 3)
		b.ReportMetric(mean.Seconds(), "value")
		b.ReportMetric(worst.Seconds(), "worst-s")
		b.ReportMetric(5, "goal")
	}
}

// BenchmarkFleet_GossipBytesPerAgent: gossip bytes sent per second per
// agent in a steady 50-agent cluster with LAN timings (probes, acks,
// gossip and push/pull, encrypted), over a 15 s window.
func BenchmarkFleet_GossipBytesPerAgent(b *testing.B) {
	for i := 0; i < b.N; i++ {
		nodes := benchCluster(b, benchAgents, LANTimings())
		sum := func() int64 {
			var n int64
			for _, f := range nodes {
				n += f.Stats().BytesSent
			}
			return n
		}
		before, start := sum(), time.Now()
		time.Sleep(15 * time.Second)
		perAgent := float64(sum()-before) / time.Since(start).Seconds() / float64(len(nodes))
		b.ReportMetric(perAgent, "value")
		b.ReportMetric(float64(len(nodes)), "agents")
	}
}
