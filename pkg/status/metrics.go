package status

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/vantage-fleet/vantage/pkg/verdict"
)

// states lists every verdict state, for the state-set metric.
var states = []verdict.State{verdict.StateOK, verdict.StateDegraded, verdict.StateFailing, verdict.StateBlind, verdict.StateMissing, verdict.StateNoData}

var scopes = []verdict.Scope{verdict.ScopeNone, verdict.ScopeRegional, verdict.ScopeGlobal, verdict.ScopeUnknown}

// Metrics computes the derived metrics in Prometheus text format:
//
//	vantage_journey_state{journey,region,state} 1 for the current state, 0 for the others
//	vantage_journey_scope{journey,scope}        likewise for the journey's scope
//	vantage_incidents_open                      open product incidents
//	vantage_conditions_open{alertname}          open conditions by alert
//	vantage_detection_latency_seconds           histogram: first failing slot → alert
//	vantage_results_rejected_total{reason}      results the verdict engine refused
//
// The OTLP names are the same with dots (vantage.journey.state, …).
func Metrics(s verdict.Snapshot, lat Histogram) []byte {
	var b bytes.Buffer
	b.WriteString("# HELP vantage_journey_state Verdict of a journey in a region (state set).\n# TYPE vantage_journey_state gauge\n")
	for _, j := range s.Journeys {
		for _, r := range sortedKeys(j.Cells) {
			c := j.Cells[r]
			for _, st := range states {
				fmt.Fprintf(&b, "vantage_journey_state{journey=%s,region=%s,state=%q} %d\n", q(j.Name), q(r), st, b2i(c.State == st))
			}
		}
	}
	b.WriteString("# HELP vantage_journey_scope Scope of a journey's failure (state set).\n# TYPE vantage_journey_scope gauge\n")
	for _, j := range s.Journeys {
		for _, sc := range scopes {
			fmt.Fprintf(&b, "vantage_journey_scope{journey=%s,scope=%q} %d\n", q(j.Name), sc, b2i(j.Scope == sc))
		}
	}
	incidents := 0
	byAlert := map[string]int{}
	for _, c := range s.Open {
		byAlert[c.Alert]++
		if c.Alert == verdict.AlertGlobal || c.Alert == verdict.AlertRegional {
			incidents++
		}
	}
	fmt.Fprintf(&b, "# HELP vantage_incidents_open Open product incidents.\n# TYPE vantage_incidents_open gauge\nvantage_incidents_open %d\n", incidents)
	b.WriteString("# HELP vantage_conditions_open Open conditions by alert name.\n# TYPE vantage_conditions_open gauge\n")
	for _, a := range []string{verdict.AlertGlobal, verdict.AlertRegional, verdict.AlertRegionBlind, verdict.AlertResultsMissing, verdict.AlertProberSuspect} {
		fmt.Fprintf(&b, "vantage_conditions_open{alertname=%q} %d\n", a, byAlert[a])
	}
	b.WriteString("# HELP vantage_detection_latency_seconds Time from the first failing slot to the alert.\n# TYPE vantage_detection_latency_seconds histogram\n")
	for i, le := range lat.Bounds {
		fmt.Fprintf(&b, "vantage_detection_latency_seconds_bucket{le=%q} %d\n", strconv.FormatFloat(le, 'g', -1, 64), lat.Counts[i])
	}
	fmt.Fprintf(&b, "vantage_detection_latency_seconds_bucket{le=\"+Inf\"} %d\n", lat.Count)
	fmt.Fprintf(&b, "vantage_detection_latency_seconds_sum %s\nvantage_detection_latency_seconds_count %d\n", strconv.FormatFloat(lat.Sum, 'g', -1, 64), lat.Count)
	c := s.Counters
	b.WriteString("# HELP vantage_results_rejected_total Results the verdict engine refused.\n# TYPE vantage_results_rejected_total counter\n")
	for _, x := range []struct {
		r string
		n uint64
	}{{"duplicate", c.Duplicate}, {"invalid", c.Invalid}, {"slot_future", c.SlotFuture}, {"slot_old", c.SlotOld}} {
		fmt.Fprintf(&b, "vantage_results_rejected_total{reason=%q} %d\n", x.r, x.n)
	}
	return b.Bytes()
}

// q quotes a label value per the text exposition format.
func q(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(s) + `"`
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
