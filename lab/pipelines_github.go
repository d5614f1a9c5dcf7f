package lab

import (
	"net/http"
	"strconv"
	"strings"
)

// GitHubActionsSim is a minimal GitHub Actions API: workflow dispatch
// (204, or 200 with the run's details when "return_run_details" is true),
// run status and conclusion, cancel (202, 409 once completed), run lists
// filtered by event, branch and head_sha, bearer auth and 429.
type GitHubActionsSim struct {
	*ciCore
	mux *http.ServeMux
}

// NewGitHubActionsSim returns a GitHub Actions simulator.
func NewGitHubActionsSim(cfg CISimConfig) *GitHubActionsSim {
	s := &GitHubActionsSim{ciCore: newCICore(cfg), mux: http.NewServeMux()}
	s.mux.HandleFunc("POST /repos/{o}/{r}/actions/workflows/{wf}/dispatches", s.dispatch)
	s.mux.HandleFunc("GET /repos/{o}/{r}/actions/workflows/{wf}/runs", s.list)
	s.mux.HandleFunc("GET /repos/{o}/{r}/actions/runs", s.list)
	s.mux.HandleFunc("GET /repos/{o}/{r}/actions/runs/{id}", s.get)
	s.mux.HandleFunc("POST /repos/{o}/{r}/actions/runs/{id}/cancel", s.cancel)
	return s
}

// ServeHTTP implements http.Handler.
func (s *GitHubActionsSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r, bearerOrBasic, s.fail, func(h http.Header, limit int) {
		h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
		h.Set("X-RateLimit-Resource", "core")
	}) {
		return
	}
	if s.cfg.Repository != "" && !strings.HasPrefix(r.URL.Path, "/repos/"+s.cfg.Repository+"/") {
		s.fail(w, http.StatusNotFound, "Not Found")
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *GitHubActionsSim) fail(w http.ResponseWriter, status int, msg string) {
	if status == http.StatusUnauthorized {
		msg = "Bad credentials"
	}
	s.writeJSON(w, status, map[string]any{"message": msg, "documentation_url": "https://docs.github.com/rest"})
}

func (s *GitHubActionsSim) dispatch(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Ref              string            `json:"ref"`
		Inputs           map[string]string `json:"inputs"`
		ReturnRunDetails bool              `json:"return_run_details"`
	}
	if err := ciReadBody(r, &body); err != nil || body.Ref == "" {
		s.fail(w, http.StatusUnprocessableEntity, "Invalid request: ref is required")
		return
	}
	s.mu.Lock()
	run := s.newRun(body.Ref, "", r.PathValue("wf"), body.Inputs, 0)
	s.mu.Unlock()
	if !body.ReturnRunDetails || s.cfg.NoRunDetails {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	id := s.runID(run)
	s.writeJSON(w, http.StatusOK, map[string]any{
		"workflow_run_id": id,
		"run_url":         "http://" + r.Host + "/repos/" + s.cfg.Repository + "/actions/runs/" + strconv.FormatInt(id, 10),
		"html_url":        s.htmlURL(run),
	})
}

func (s *GitHubActionsSim) runID(r *ciRun) int64 { return 9000000000 + r.number }

func (s *GitHubActionsSim) htmlURL(r *ciRun) string {
	return "https://github.com/" + s.cfg.Repository + "/actions/runs/" + strconv.FormatInt(s.runID(r), 10)
}

// find returns the visible run with the numeric id; the caller holds mu.
func (s *GitHubActionsSim) find(id string) *ciRun {
	for _, r := range s.visible(s.cfg.Now()) {
		if strconv.FormatInt(s.runID(r), 10) == id {
			return r
		}
	}
	return nil
}

func (s *GitHubActionsSim) get(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	run := s.find(r.PathValue("id"))
	var obj map[string]any
	if run != nil {
		obj = s.object(run)
	}
	s.mu.Unlock()
	if run == nil {
		s.fail(w, http.StatusNotFound, "Not Found")
		return
	}
	s.writeJSON(w, http.StatusOK, obj)
}

func (s *GitHubActionsSim) cancel(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	run := s.find(r.PathValue("id"))
	ok := run != nil && s.stop(run, r.PathValue("id"), s.cfg.Now())
	s.mu.Unlock()
	switch {
	case run == nil:
		s.fail(w, http.StatusNotFound, "Not Found")
	case !ok:
		s.fail(w, http.StatusConflict, "Cannot cancel a workflow run that is completed.")
	default:
		s.writeJSON(w, http.StatusAccepted, map[string]any{})
	}
}

func (s *GitHubActionsSim) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	runs := []map[string]any{}
	// Newest first, as GitHub lists runs.
	vis := s.visible(s.cfg.Now())
	for i := len(vis) - 1; i >= 0; i-- {
		run := vis[i]
		if wf := r.PathValue("wf"); wf != "" && !run.push && run.pattern != wf {
			continue
		}
		if v := q.Get("head_sha"); v != "" && run.sha != v {
			continue
		}
		if v := q.Get("branch"); v != "" && run.branch != v {
			continue
		}
		if v := q.Get("event"); v != "" && (v == "push") != run.push {
			continue
		}
		runs = append(runs, s.object(run))
	}
	s.mu.Unlock()
	s.writeJSON(w, http.StatusOK, map[string]any{"total_count": len(runs), "workflow_runs": runs})
}

// object renders a workflow run; the caller holds mu.
func (s *GitHubActionsSim) object(r *ciRun) map[string]any {
	event := "workflow_dispatch"
	if r.push {
		event = "push"
	}
	obj := map[string]any{
		"id": s.runID(r), "name": r.pattern, "run_number": r.number, "event": event,
		"head_branch": r.branch, "head_sha": r.sha, "html_url": s.htmlURL(r),
		"created_at": ciTime(r.created), "run_started_at": ciTime(r.started),
		"status": "queued", "conclusion": nil,
	}
	switch r.phase() {
	case ciRunning:
		obj["status"] = "in_progress"
	case ciCompleted:
		obj["status"] = "completed"
		obj["conclusion"] = map[CIOutcome]string{CISuccessful: "success", CIFailed: "failure",
			CIError: "startup_failure", CIStopped: "cancelled", CIExpired: "timed_out"}[r.result]
		obj["updated_at"] = ciTime(r.completed)
	}
	return obj
}
