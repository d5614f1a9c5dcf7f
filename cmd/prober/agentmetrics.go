package main

import (
	"fmt"
	"io"
	"net/http"
)

// agentMetrics serves the exporters' counters followed by the scheduler's
// and the fleet's, in the Prometheus text format.
func agentMetrics(a *agent) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		metricsHandler(a.exps).ServeHTTP(w, r)
		// The loop and the fleet are set before ready; reading ready first
		// orders these reads after those writes.
		if !a.ready.Load() {
			return
		}
		{
			st := a.loop.Stats()
			writeCounter(w, "vantage_schedule_runs_total", "Journey runs started by this agent.", st.Runs)
			writeCounter(w, "vantage_schedule_skipped_total", "Slots skipped because the previous run of the journey was still going.", st.Skipped)
			writeCounter(w, "vantage_schedule_not_owned_total", "Slots left to another agent of the region (one-per-region ownership).", st.NotOwned)
			writeCounter(w, "vantage_schedule_refused_total", "Confirmation runs refused at the concurrency limit.", st.Refused)
		}
		if a.fleet != nil {
			fs := a.fleet.Stats()
			writeCounter(w, "vantage_gossip_sent_bytes_total", "Gossip bytes sent, encrypted.", uint64(fs.BytesSent))
			writeCounter(w, "vantage_confirm_requests_sent_total", "Confirmation requests broadcast after a failed scheduled run.", uint64(fs.RequestsSent))
			writeCounter(w, "vantage_gossip_dropped_total", "Gossip messages dropped as malformed, oversized or unknown.", uint64(fs.Dropped))
		}
	})
}

func writeCounter(w io.Writer, name, help string, v uint64) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
}
