package hg

import (
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/pkg/report"
)

// BenchmarkHgJourney_NativeVsCLI times the native journey (full clone +
// push) against the hg binary doing the same clone, commit and push, on
// the same hg serve in the same run. Iterations alternate so that both
// see the repository grow alike. value and baseline are mean seconds per
// journey; the goal is a ratio of at most 0.5.
func BenchmarkHgJourney_NativeVsCLI(b *testing.B) {
	const rounds = 10
	s := newServer(b)
	native := journeyConfig(b, s.URL, "push = true\nverify = false")
	cli := journeyConfig(b, s.URL, "push = true\nverify = false\ndriver = \"cli\"")
	var nativeTotal, cliTotal time.Duration
	for i := 0; i < b.N; i++ {
		for r := 0; r < rounds; r++ {
			for _, tc := range []struct {
				total *time.Duration
				a     *agent
			}{{&nativeTotal, newAgent(b, "native", native)}, {&cliTotal, newAgent(b, "cli", cli)}} {
				start := time.Now()
				res := tc.a.run(b)
				*tc.total += time.Since(start)
				if res.Status != report.StatusPass {
					b.Fatalf("%s: %s/%s: %s", tc.a.runner.Agent, res.Status, res.ErrorType, res.Error)
				}
			}
		}
	}
	n := float64(b.N * rounds)
	v, base := nativeTotal.Seconds()/n, cliTotal.Seconds()/n
	b.ReportMetric(v, "value")
	b.ReportMetric(base, "baseline")
	b.ReportMetric(v/base, "ratio")
	b.ReportMetric(0.5, "goal")
}
