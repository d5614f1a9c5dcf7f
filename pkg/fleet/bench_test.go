package fleet

import (
	"context"
	"fmt"
	"sync"
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

// benchCluster starts n probers over 5 regions with the given timings and
// waits until every agent sees every other.
func benchCluster(b *testing.B, n int, t Timings) []*Fleet {
	b.Helper()
	key := mustKey(b)
	regions := []string{"ap", "eu", "sa", "us", "za"}
	var nodes []*Fleet
	b.Cleanup(func() {
		var wg sync.WaitGroup
		for _, f := range nodes {
			wg.Add(1)
			go func() { defer wg.Done(); f.Close(time.Second) }()
		}
		wg.Wait()
	})
	for i := 0; i < n; i++ {
		cfg := Config{
			Name: fmt.Sprintf("agent-%02d", i), Fleet: "bench", Bind: "127.0.0.1:0", Keys: [][]byte{key},
			Meta:    Meta{Role: RoleProber, Region: regions[i%len(regions)], Version: "bench", ConfigDigest: "d"},
			Timings: t, Logger: quietLogger(),
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
	eventually(b, 2*time.Minute, "every agent sees the whole cluster", func() bool { return agree(nodes, nodeNames(nodes)) })
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

// reportDeaths kills three agents one after another (different regions)
// and reports the mean time to agreement as the value (goal ≤ 5 s) and the
// worst one.
func reportDeaths(b *testing.B, nodes *[]*Fleet) {
	var total, worst time.Duration
	const deaths = 3
	for i := 0; i < deaths; i++ {
		victim := (*nodes)[len(*nodes)-1-i*7]
		d := deathToAgreement(b, *nodes, victim)
		*nodes = without(*nodes, victim)
		total += d
		worst = max(worst, d)
	}
	b.ReportMetric((total / deaths).Seconds(), "value")
	b.ReportMetric(worst.Seconds(), "worst-s")
	b.ReportMetric(5, "goal")
}

// BenchmarkFleet50_LAN runs 50 agents with memberlist's LAN timings:
//   - GossipBytesPerAgent: gossip bytes sent per second per agent in the
//     steady cluster (probes, acks, gossip, push/pull; encrypted), over 60 s,
//     one push/pull period at this size;
//   - DeathToOwnerAgreement: seconds from an agent's death (no leave) to
//     every survivor agreeing on the new owners, mean of 3 deaths; goal 5.
func BenchmarkFleet50_LAN(b *testing.B) {
	nodes := benchCluster(b, benchAgents, LANTimings())
	b.Run("GossipBytesPerAgent", func(b *testing.B) {
		sum := func() int64 {
			var n int64
			for _, f := range nodes {
				n += f.Stats().BytesSent
			}
			return n
		}
		before, start := sum(), time.Now()
		time.Sleep(60 * time.Second)
		b.ReportMetric(float64(sum()-before)/time.Since(start).Seconds()/float64(len(nodes)), "value")
	})
	b.Run("DeathToOwnerAgreement", func(b *testing.B) { reportDeaths(b, &nodes) })
}

// BenchmarkFleet50_FastLAN is DeathToOwnerAgreement with LAN timings tuned
// for detection: gossip.probe_interval = "500ms", probe_timeout = "250ms",
// suspicion_mult = 2.
func BenchmarkFleet50_FastLAN(b *testing.B) {
	t, err := TimingsFrom("lan", 500*time.Millisecond, 250*time.Millisecond, 0, 2)
	if err != nil {
		b.Fatal(err)
	}
	nodes := benchCluster(b, benchAgents, t)
	b.Run("DeathToOwnerAgreement", func(b *testing.B) { reportDeaths(b, &nodes) })
}
