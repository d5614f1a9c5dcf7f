package lab

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// HTTPAPI is a small HTTP product for HTTP journeys: a health page, a
// Bitbucket-shaped JSON API, and a fault switch.
//
//	GET  /healthz                                   "ok"
//	GET  /api/2.0/repositories/{workspace}/{repo}   repository JSON
//	POST /fault?status=503[&delay=2s]               every other path answers 503 (after the delay)
//	POST /fault?status=0                            clears the fault
//	GET  /fault                                     the current fault as JSON
//
// It is safe for concurrent use. The fault applies to every path except
// /fault itself, so a test or demo can break and heal the product at will.
type HTTPAPI struct {
	mu     sync.Mutex
	status int
	delay  time.Duration
	mux    *http.ServeMux
}

// maxFaultDelay bounds an injected delay so a mistyped value cannot wedge the lab.
const maxFaultDelay = 5 * time.Minute

// NewHTTPAPI returns the product with no fault.
func NewHTTPAPI() *HTTPAPI {
	a := &HTTPAPI{mux: http.NewServeMux()}
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	a.mux.HandleFunc("GET /api/2.0/repositories/{workspace}/{repo}", func(w http.ResponseWriter, r *http.Request) {
		ws, repo := r.PathValue("workspace"), r.PathValue("repo")
		a.json(w, http.StatusOK, map[string]any{
			"type": "repository", "slug": repo, "full_name": ws + "/" + repo, "is_private": true, "scm": "git",
			"mainbranch": map[string]any{"type": "branch", "name": "main"},
			"links":      map[string]any{"clone": []map[string]string{{"name": "https", "href": "http://" + r.Host + "/" + ws + "/" + repo + ".git"}}},
		})
	})
	a.mux.HandleFunc("GET /fault", func(w http.ResponseWriter, r *http.Request) {
		status, delay := a.Fault()
		a.json(w, http.StatusOK, map[string]any{"status": status, "delay": delay.String()})
	})
	a.mux.HandleFunc("POST /fault", a.setFault)
	return a
}

// SetFault makes every path but /fault answer status (0 clears) after delay.
func (a *HTTPAPI) SetFault(status int, delay time.Duration) {
	a.mu.Lock()
	a.status, a.delay = status, delay
	a.mu.Unlock()
}

// Fault returns the current fault.
func (a *HTTPAPI) Fault() (status int, delay time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status, a.delay
}

func (a *HTTPAPI) setFault(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	status, err := strconv.Atoi(q.Get("status"))
	if err != nil || (status != 0 && (status < 200 || status > 599)) {
		http.Error(w, "status must be 0 (clear) or an HTTP status 200-599", http.StatusBadRequest)
		return
	}
	var delay time.Duration
	if d := q.Get("delay"); d != "" {
		delay, err = time.ParseDuration(d)
		if err != nil || delay < 0 || delay > maxFaultDelay {
			http.Error(w, "delay must be a duration between 0 and "+maxFaultDelay.String(), http.StatusBadRequest)
			return
		}
	}
	a.SetFault(status, delay)
	a.json(w, http.StatusOK, map[string]any{"status": status, "delay": delay.String()})
}

// ServeHTTP serves the product, applying the fault to every path but /fault.
func (a *HTTPAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/fault" {
		status, delay := a.Fault()
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if status != 0 {
			a.json(w, status, map[string]any{"type": "error", "error": map[string]string{"message": "injected fault"}})
			return
		}
	}
	a.mux.ServeHTTP(w, r)
}

func (a *HTTPAPI) json(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
