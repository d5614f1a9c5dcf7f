package lab

import (
	"net/http"
	"net/url"
	"strconv"
)

// GitLabSim is a minimal GitLab CI API (v4): create a pipeline (201),
// get it, cancel it, list pipelines by sha and ref, PRIVATE-TOKEN or
// bearer auth and 429.
type GitLabSim struct {
	*ciCore
	mux *http.ServeMux
}

// NewGitLabSim returns a GitLab CI simulator.
func NewGitLabSim(cfg CISimConfig) *GitLabSim {
	s := &GitLabSim{ciCore: newCICore(cfg), mux: http.NewServeMux()}
	s.mux.HandleFunc("POST /api/v4/projects/{id}/pipeline", s.create)
	s.mux.HandleFunc("GET /api/v4/projects/{id}/pipelines", s.list)
	s.mux.HandleFunc("GET /api/v4/projects/{id}/pipelines/{pid}", s.get)
	s.mux.HandleFunc("POST /api/v4/projects/{id}/pipelines/{pid}/cancel", s.cancel)
	return s
}

// ServeHTTP implements http.Handler.
func (s *GitLabSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	auth := func(r *http.Request, cfg CISimConfig) bool {
		if cfg.Token != "" && r.Header.Get("PRIVATE-TOKEN") == cfg.Token {
			return true
		}
		return bearerOrBasic(r, cfg)
	}
	if !s.admit(w, r, auth, s.fail, func(h http.Header, limit int) {
		h.Set("RateLimit-Limit", strconv.Itoa(limit))
	}) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *GitLabSim) fail(w http.ResponseWriter, status int, msg string) {
	if status == http.StatusUnauthorized {
		msg = "401 Unauthorized"
	}
	s.writeJSON(w, status, map[string]any{"message": msg})
}

// project checks the {id} path value against the configured project.
func (s *GitLabSim) project(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.Repository != "" && r.PathValue("id") != s.cfg.Repository {
		s.fail(w, http.StatusNotFound, "404 Project Not Found")
		return false
	}
	return true
}

func (s *GitLabSim) create(w http.ResponseWriter, r *http.Request) {
	if !s.project(w, r) {
		return
	}
	ref := r.URL.Query().Get("ref")
	var body struct {
		Ref       string `json:"ref"`
		Variables []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"variables"`
	}
	if err := ciReadBody(r, &body); err != nil {
		s.fail(w, http.StatusBadRequest, "400 Bad request - "+err.Error())
		return
	}
	if ref == "" {
		ref = body.Ref
	}
	if ref == "" {
		s.fail(w, http.StatusBadRequest, "400 Bad request - ref is missing")
		return
	}
	vars := map[string]string{}
	for _, v := range body.Variables {
		vars[v.Key] = v.Value
	}
	s.mu.Lock()
	run := s.newRun(ref, "", "", vars, 0)
	obj := s.object(run, r)
	s.mu.Unlock()
	s.writeJSON(w, http.StatusCreated, obj)
}

// find returns the visible run with the numeric id; the caller holds mu.
func (s *GitLabSim) find(id string) *ciRun {
	for _, r := range s.visible(s.cfg.Now()) {
		if strconv.FormatInt(5000+r.number, 10) == id {
			return r
		}
	}
	return nil
}

func (s *GitLabSim) get(w http.ResponseWriter, r *http.Request) {
	if !s.project(w, r) {
		return
	}
	s.mu.Lock()
	run := s.find(r.PathValue("pid"))
	var obj map[string]any
	if run != nil {
		obj = s.object(run, r)
	}
	s.mu.Unlock()
	if run == nil {
		s.fail(w, http.StatusNotFound, "404 Not found")
		return
	}
	s.writeJSON(w, http.StatusOK, obj)
}

func (s *GitLabSim) cancel(w http.ResponseWriter, r *http.Request) {
	if !s.project(w, r) {
		return
	}
	s.mu.Lock()
	run := s.find(r.PathValue("pid"))
	var obj map[string]any
	if run != nil {
		s.stop(run, r.PathValue("pid"), s.cfg.Now())
		obj = s.object(run, r)
	}
	s.mu.Unlock()
	if run == nil {
		s.fail(w, http.StatusNotFound, "404 Not found")
		return
	}
	s.writeJSON(w, http.StatusOK, obj)
}

func (s *GitLabSim) list(w http.ResponseWriter, r *http.Request) {
	if !s.project(w, r) {
		return
	}
	q := r.URL.Query()
	s.mu.Lock()
	out := []map[string]any{}
	vis := s.visible(s.cfg.Now())
	for i := len(vis) - 1; i >= 0; i-- { // newest first (order_by=id, sort=desc)
		run := vis[i]
		if v := q.Get("sha"); v != "" && run.sha != v {
			continue
		}
		if v := q.Get("ref"); v != "" && run.branch != v {
			continue
		}
		out = append(out, s.object(run, r))
	}
	s.mu.Unlock()
	s.writeJSON(w, http.StatusOK, out)
}

// object renders a pipeline; the caller holds mu.
func (s *GitLabSim) object(run *ciRun, r *http.Request) map[string]any {
	id := 5000 + run.number
	source := "api"
	if run.push {
		source = "push"
	}
	obj := map[string]any{
		"id": id, "iid": run.number, "project_id": 42, "sha": run.sha, "ref": run.branch, "source": source,
		"status": "pending", "created_at": ciTime(run.created), "started_at": ciTime(run.started),
		"web_url": "http://" + r.Host + "/" + url.PathEscape(r.PathValue("id")) + "/-/pipelines/" + strconv.FormatInt(id, 10),
	}
	switch run.phase() {
	case ciRunning:
		obj["status"] = "running"
	case ciCompleted:
		obj["status"] = map[CIOutcome]string{CISuccessful: "success", CIFailed: "failed", CIError: "failed",
			CIStopped: "canceled", CIExpired: "failed"}[run.result]
		obj["finished_at"] = ciTime(run.completed)
	}
	return obj
}
