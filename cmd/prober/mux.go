package main

import (
	"fmt"
	"net/http"
)

// newMux builds the agent's HTTP endpoints. Another endpoint (/metrics)
// is one more Handle line here, with its handler in its own file.
func newMux(a *agent) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !a.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", agentMetrics(a))
	return mux
}
