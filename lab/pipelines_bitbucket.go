package lab

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// PipelinesSim simulates Bitbucket Cloud Pipelines (REST 2.0): trigger
// (201 + Location), get, paginated steps, stopPipeline, list with filters,
// the error JSON shape, bearer/basic auth and 429 with X-RateLimit-*
// headers. Serve it with httptest.NewServer or any http.Server; the
// controls (SetOutcome, SetQueueStall, NotifyPush, …) come from its core.
type PipelinesSim struct {
	*ciCore
	mux *http.ServeMux
}

// NewPipelinesSim returns a Bitbucket Pipelines simulator.
func NewPipelinesSim(cfg CISimConfig) *PipelinesSim {
	s := &PipelinesSim{ciCore: newCICore(cfg), mux: http.NewServeMux()}
	const base = "/2.0/repositories/{ws}/{repo}/pipelines/"
	s.mux.HandleFunc("POST "+base+"{$}", s.trigger)
	s.mux.HandleFunc("GET "+base+"{$}", s.list)
	s.mux.HandleFunc("GET "+base+"{uuid}", s.get)
	s.mux.HandleFunc("GET "+base+"{uuid}/steps/{$}", s.steps)
	s.mux.HandleFunc("POST "+base+"{uuid}/stopPipeline", s.stopPipeline)
	return s
}

// ServeHTTP implements http.Handler.
func (s *PipelinesSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r, bearerOrBasic, s.fail, func(h http.Header, limit int) {
		h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
		h.Set("X-RateLimit-Resource", "api-repository-pipelines")
	}) {
		return
	}
	if ws, repo, ok := strings.Cut(s.cfg.Repository, "/"); ok {
		prefix := "/2.0/repositories/" + ws + "/" + repo + "/"
		if !strings.HasPrefix(r.URL.Path, prefix) {
			s.fail(w, http.StatusNotFound, "Repository not found")
			return
		}
	}
	// A Bitbucket UUID's braces must be percent-encoded in a path.
	if path, _, _ := strings.Cut(r.RequestURI, "?"); strings.ContainsAny(path, "{}") {
		s.fail(w, http.StatusNotFound, "Not found: braces in the path must be percent-encoded")
		return
	}
	s.mux.ServeHTTP(w, r)
}

// fail writes Bitbucket's error shape.
func (s *PipelinesSim) fail(w http.ResponseWriter, status int, msg string) {
	s.writeJSON(w, status, map[string]any{"type": "error", "error": map[string]any{"message": msg}})
}

type bbTriggerBody struct {
	Target *struct {
		Type    string `json:"type"`
		RefType string `json:"ref_type"`
		RefName string `json:"ref_name"`
		Commit  *struct {
			Type string `json:"type"`
			Hash string `json:"hash"`
		} `json:"commit"`
		Selector *struct {
			Type    string `json:"type"`
			Pattern string `json:"pattern"`
		} `json:"selector"`
	} `json:"target"`
	Variables []struct {
		Key     string `json:"key"`
		Value   string `json:"value"`
		Secured bool   `json:"secured"`
	} `json:"variables"`
}

var bbSelectorTypes = map[string]bool{"branches": true, "tags": true, "bookmarks": true, "default": true, "custom": true, "pull-requests": true}
var bbRefTypes = map[string]bool{"branch": true, "tag": true, "named_branch": true, "bookmark": true}

func (s *PipelinesSim) trigger(w http.ResponseWriter, r *http.Request) {
	var body bbTriggerBody
	if err := ciReadBody(r, &body); err != nil {
		s.fail(w, http.StatusBadRequest, "Invalid request body: "+err.Error())
		return
	}
	t := body.Target
	if t == nil {
		s.fail(w, http.StatusBadRequest, "target is required")
		return
	}
	var branch, sha, pattern string
	switch t.Type {
	case "pipeline_ref_target":
		if !bbRefTypes[t.RefType] || t.RefName == "" {
			s.fail(w, http.StatusBadRequest, "ref_type and ref_name are required for a pipeline_ref_target")
			return
		}
		branch = t.RefName
	case "pipeline_commit_target":
		if t.Commit == nil || t.Commit.Hash == "" {
			s.fail(w, http.StatusBadRequest, "commit.hash is required for a pipeline_commit_target")
			return
		}
	default:
		s.fail(w, http.StatusBadRequest, fmt.Sprintf("unknown target type %q", t.Type))
		return
	}
	if t.Commit != nil {
		sha = t.Commit.Hash
	}
	if t.Selector != nil {
		if !bbSelectorTypes[t.Selector.Type] {
			s.fail(w, http.StatusBadRequest, fmt.Sprintf("unknown selector type %q", t.Selector.Type))
			return
		}
		pattern = t.Selector.Pattern
	}
	vars := map[string]string{}
	for _, v := range body.Variables {
		if v.Key == "" {
			s.fail(w, http.StatusBadRequest, "variable key must not be empty")
			return
		}
		vars[v.Key] = v.Value
	}
	s.mu.Lock()
	run := s.newRun(branch, sha, pattern, vars, 0)
	obj := s.object(run)
	s.mu.Unlock()
	w.Header().Set("Location", "http://"+r.Host+"/2.0/repositories/"+url.PathEscape(r.PathValue("ws"))+"/"+
		url.PathEscape(r.PathValue("repo"))+"/pipelines/"+url.PathEscape(run.uuid))
	s.writeJSON(w, http.StatusCreated, obj)
}

// find returns the visible run with uuid, advanced; the caller holds mu.
func (s *PipelinesSim) find(uuid string) *ciRun {
	now := s.cfg.Now()
	for _, r := range s.visible(now) {
		if r.uuid == uuid {
			return r
		}
	}
	return nil
}

func (s *PipelinesSim) get(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	run := s.find(r.PathValue("uuid"))
	var obj map[string]any
	if run != nil {
		obj = s.object(run)
	}
	s.mu.Unlock()
	if run == nil {
		s.fail(w, http.StatusNotFound, "Pipeline not found")
		return
	}
	s.writeJSON(w, http.StatusOK, obj)
}

func (s *PipelinesSim) stopPipeline(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	run := s.find(r.PathValue("uuid"))
	stopped := run != nil && s.stop(run, run.uuid, s.cfg.Now())
	s.mu.Unlock()
	switch {
	case run == nil:
		s.fail(w, http.StatusNotFound, "Pipeline not found")
	case !stopped:
		s.fail(w, http.StatusBadRequest, "The pipeline has already completed")
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *PipelinesSim) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, pagelen, msg := ciPage(r, 10, 100)
	if msg != "" {
		s.fail(w, http.StatusBadRequest, msg)
		return
	}
	sortKey := q.Get("sort")
	switch sortKey {
	case "", "created_on", "-created_on":
	default:
		s.fail(w, http.StatusBadRequest, fmt.Sprintf("Invalid sort field %q", sortKey))
		return
	}
	s.mu.Lock()
	var match []*ciRun
	for _, run := range s.visible(s.cfg.Now()) {
		if h := q.Get("target.commit.hash"); h != "" && run.sha != h {
			continue
		}
		if b := q.Get("target.branch"); b != "" && run.branch != b {
			continue
		}
		if b := q.Get("target.ref_name"); b != "" && run.branch != b {
			continue
		}
		if tt := q.Get("trigger_type"); tt != "" && (tt == "PUSH") != run.push {
			continue
		}
		match = append(match, run)
	}
	sort.SliceStable(match, func(i, j int) bool {
		if sortKey == "-created_on" {
			return match[i].created.After(match[j].created)
		}
		return match[i].created.Before(match[j].created)
	})
	values := []map[string]any{}
	for i := (page - 1) * pagelen; i < len(match) && i < page*pagelen; i++ {
		values = append(values, s.object(match[i]))
	}
	s.mu.Unlock()
	out := map[string]any{"page": page, "pagelen": pagelen, "size": len(match), "values": values}
	if page*pagelen < len(match) {
		out["next"] = bbNext(r, page+1)
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *PipelinesSim) steps(w http.ResponseWriter, r *http.Request) {
	page, pagelen, msg := ciPage(r, 10, 100)
	if msg != "" {
		s.fail(w, http.StatusBadRequest, msg)
		return
	}
	s.mu.Lock()
	run := s.find(r.PathValue("uuid"))
	var all []map[string]any
	if run != nil {
		all = s.stepObjects(run, s.cfg.Now())
	}
	s.mu.Unlock()
	if run == nil {
		s.fail(w, http.StatusNotFound, "Pipeline not found")
		return
	}
	values := []map[string]any{}
	for i := (page - 1) * pagelen; i < len(all) && i < page*pagelen; i++ {
		values = append(values, all[i])
	}
	out := map[string]any{"page": page, "pagelen": pagelen, "size": len(all), "values": values}
	if page*pagelen < len(all) {
		out["next"] = bbNext(r, page+1)
	}
	s.writeJSON(w, http.StatusOK, out)
}

// bbNext is the absolute URL of the next page.
func bbNext(r *http.Request, page int) string {
	q := r.URL.Query()
	q.Set("page", strconv.Itoa(page))
	return "http://" + r.Host + r.URL.EscapedPath() + "?" + q.Encode()
}

// object renders a run as a Bitbucket pipeline object; the caller holds mu.
func (s *PipelinesSim) object(r *ciRun) map[string]any {
	target := map[string]any{"type": "pipeline_ref_target", "ref_type": "branch", "ref_name": r.branch,
		"commit": map[string]any{"type": "commit", "hash": r.sha}}
	if r.branch == "" {
		target = map[string]any{"type": "pipeline_commit_target", "commit": map[string]any{"type": "commit", "hash": r.sha}}
	}
	switch {
	case r.pattern != "":
		target["selector"] = map[string]any{"type": "custom", "pattern": r.pattern}
	case r.push:
		target["selector"] = map[string]any{"type": "branches", "pattern": r.branch}
	default:
		target["selector"] = map[string]any{"type": "default"}
	}
	trigger := map[string]any{"type": "pipeline_trigger_manual"}
	if r.push {
		trigger = map[string]any{"type": "pipeline_trigger_push"}
	}
	var state map[string]any
	switch r.phase() {
	case ciPending:
		state = map[string]any{"type": "pipeline_state_pending", "name": "PENDING"}
	case ciRunning:
		state = map[string]any{"type": "pipeline_state_in_progress", "name": "IN_PROGRESS",
			"stage": map[string]any{"type": "pipeline_state_in_progress_running", "name": "RUNNING"}}
	default:
		res := map[string]any{"type": "pipeline_state_completed_" + strings.ToLower(string(r.result)), "name": string(r.result)}
		if r.result == CIError {
			res["error"] = map[string]any{"type": "pipeline_error", "key": "plan-service.parse.parse-error",
				"message": "There is an error in your bitbucket-pipelines.yml"}
		}
		state = map[string]any{"type": "pipeline_state_completed", "name": "COMPLETED", "result": res}
	}
	ws, repo, _ := strings.Cut(s.cfg.Repository, "/")
	obj := map[string]any{
		"type": "pipeline", "uuid": r.uuid, "build_number": r.number,
		"created_on": ciTime(r.created), "creator": map[string]any{"type": "user", "display_name": "Vantage Probe"},
		"repository": map[string]any{"type": "repository", "full_name": ws + "/" + repo},
		"target":     target, "trigger": trigger, "state": state,
		"build_seconds_used": 0,
	}
	if r.phase() == ciCompleted {
		obj["completed_on"] = ciTime(r.completed)
		if !r.started.IsZero() {
			obj["build_seconds_used"] = int(r.completed.Sub(r.started).Seconds())
		}
	}
	return obj
}

// stepObjects renders the run's steps: the run time is split evenly
// between them; the last step carries a failing outcome. The caller holds mu.
func (s *PipelinesSim) stepObjects(r *ciRun, now time.Time) []map[string]any {
	n := len(r.steps)
	out := make([]map[string]any, 0, n)
	for i, name := range r.steps {
		obj := map[string]any{"type": "pipeline_step", "uuid": fmt.Sprintf("{%08d-0000-4000-8000-%012d}", r.number, i),
			"name": name, "image": map[string]any{"name": "atlassian/default-image:4"},
			"script_commands": []map[string]any{{"name": name, "command": "make " + name}}}
		completedStep := func(res string) map[string]any {
			return map[string]any{"type": "pipeline_step_state_completed", "name": "COMPLETED",
				"result": map[string]any{"type": "pipeline_step_state_completed_" + strings.ToLower(res), "name": res}}
		}
		var start, end time.Time
		var state map[string]any
		if !r.started.IsZero() {
			start = r.started.Add(r.run * time.Duration(i) / time.Duration(n))
			end = r.started.Add(r.run * time.Duration(i+1) / time.Duration(n))
		}
		switch {
		case start.IsZero() && r.phase() == ciCompleted:
			state = completedStep("NOT_RUN")
		case start.IsZero() || (now.Before(start) && r.phase() != ciCompleted):
			state, start, end = map[string]any{"type": "pipeline_step_state_pending", "name": "PENDING"}, time.Time{}, time.Time{}
		case r.phase() == ciCompleted && r.completed.Before(end):
			// The run ended early (stopped): steps not begun never ran.
			if !r.completed.After(start) {
				state, start, end = completedStep("NOT_RUN"), time.Time{}, time.Time{}
			} else {
				state, end = completedStep(string(r.result)), r.completed
			}
		case now.Before(end):
			state, end = map[string]any{"type": "pipeline_step_state_in_progress", "name": "IN_PROGRESS"}, time.Time{}
		case i == n-1:
			state = completedStep(string(r.result))
		default:
			state = completedStep("SUCCESSFUL")
		}
		obj["state"] = state
		if !start.IsZero() {
			obj["started_on"] = ciTime(start)
		}
		if !end.IsZero() {
			obj["completed_on"] = ciTime(end)
			if !s.cfg.OmitStepDuration {
				obj["duration_in_seconds"] = int(end.Sub(start).Round(time.Second).Seconds())
			}
		}
		out = append(out, obj)
	}
	return out
}
