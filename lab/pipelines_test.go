package lab

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// simClock is a settable clock for the simulators.
type simClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *simClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *simClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const simToken = "sim-token-123"

func newSimBitbucket(t *testing.T, cfg CISimConfig) (*PipelinesSim, *httptest.Server, *simClock) {
	t.Helper()
	clk := &simClock{t: time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)}
	cfg.Now, cfg.Token, cfg.Repository = clk.Now, simToken, "acme/app"
	s := NewPipelinesSim(cfg)
	srv := httptest.NewServer(s)
	t.Cleanup(func() { s.Close(); srv.Close() })
	return s, srv, clk
}

type simResponse struct {
	status int
	header http.Header
	body   map[string]any
}

func simCall(t *testing.T, method, u, token, body string) simResponse {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := simResponse{status: res.StatusCode, header: res.Header}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out.body); err != nil {
			t.Fatalf("%s %s: body is not a JSON object: %s", method, u, b)
		}
	}
	return out
}

// path reads a dotted path ("state.result.name") from a decoded object.
func simPath(v any, p string) any {
	for _, k := range strings.Split(p, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

const bbRepo = "/2.0/repositories/acme/app/pipelines/"

const customTrigger = `{"target":{"type":"pipeline_ref_target","ref_type":"branch","ref_name":"main",
  "selector":{"type":"custom","pattern":"probe-pipeline"}},"variables":[{"key":"K","value":"V","secured":false}]}`

func TestPipelinesSim_StateMachine_EveryOutcome(t *testing.T) {
	for _, o := range []CIOutcome{CISuccessful, CIFailed, CIError, CIStopped, CIExpired} {
		s, srv, clk := newSimBitbucket(t, CISimConfig{QueueTime: time.Second, RunTime: 2 * time.Second})
		s.SetOutcome(o)
		r := simCall(t, "POST", srv.URL+bbRepo, simToken, customTrigger)
		if r.status != http.StatusCreated || simPath(r.body, "state.name") != "PENDING" || simPath(r.body, "target.selector.pattern") != "probe-pipeline" {
			t.Fatalf("trigger: %d %v", r.status, r.body)
		}
		uuid, _ := r.body["uuid"].(string)
		loc := r.header.Get("Location")
		if !strings.HasSuffix(loc, "/pipelines/"+url.PathEscape(uuid)) || !strings.Contains(loc, "%7B") {
			t.Fatalf("Location %q for %s", loc, uuid)
		}
		get := func() map[string]any { return simCall(t, "GET", loc, simToken, "").body }
		clk.Add(999 * time.Millisecond)
		if got := simPath(get(), "state.name"); got != "PENDING" {
			t.Fatalf("before the queue time: %v", got)
		}
		clk.Add(time.Millisecond)
		if b := get(); simPath(b, "state.name") != "IN_PROGRESS" || simPath(b, "state.stage.name") != "RUNNING" ||
			simPath(b, "state.type") != "pipeline_state_in_progress" {
			t.Fatalf("after the queue time: %v", b["state"])
		}
		clk.Add(2 * time.Second)
		b := get()
		if simPath(b, "state.name") != "COMPLETED" || simPath(b, "state.result.name") != string(o) ||
			simPath(b, "state.result.type") != "pipeline_state_completed_"+strings.ToLower(string(o)) {
			t.Fatalf("%s: completed state %v", o, b["state"])
		}
		if (simPath(b, "state.result.error.type") == "pipeline_error") != (o == CIError) {
			t.Fatalf("%s: error object %v", o, b["state"])
		}
		if b["completed_on"] == nil {
			t.Fatalf("%s: no completed_on", o)
		}
	}
}

func TestPipelinesSim_StopPipeline_204ThenCompleted400(t *testing.T) {
	s, srv, _ := newSimBitbucket(t, CISimConfig{RunTime: time.Hour})
	b := simCall(t, "POST", srv.URL+bbRepo, simToken, customTrigger).body
	uuid := b["uuid"].(string)
	stop := srv.URL + bbRepo + url.PathEscape(uuid) + "/stopPipeline"
	if r := simCall(t, "POST", stop, simToken, ""); r.status != http.StatusNoContent {
		t.Fatalf("stop: %d", r.status)
	}
	if got := s.Stops(); len(got) != 1 || got[0] != uuid {
		t.Fatalf("Stops() = %v", got)
	}
	r := simCall(t, "POST", stop, simToken, "")
	if r.status != http.StatusBadRequest || r.body["type"] != "error" || simPath(r.body, "error.message") == nil {
		t.Fatalf("second stop: %d %v", r.status, r.body)
	}
	if got := simPath(simCall(t, "GET", srv.URL+bbRepo+url.PathEscape(uuid), simToken, "").body, "state.result.name"); got != "STOPPED" {
		t.Fatalf("stopped pipeline reads %v", got)
	}
	if r := simCall(t, "POST", srv.URL+bbRepo+"%7Bnope%7D/stopPipeline", simToken, ""); r.status != http.StatusNotFound {
		t.Fatalf("stop of an unknown pipeline: %d", r.status)
	}
}

func TestPipelinesSim_RawBracesInPath_AreNotFound(t *testing.T) {
	_, srv, _ := newSimBitbucket(t, CISimConfig{})
	b := simCall(t, "POST", srv.URL+bbRepo, simToken, customTrigger).body
	req, _ := http.NewRequest("GET", srv.URL, nil)
	// Opaque is sent as it is: the braces stay raw.
	req.URL.Opaque = "//" + strings.TrimPrefix(srv.URL, "http://") + bbRepo + b["uuid"].(string)
	req.Header.Set("Authorization", "Bearer "+simToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("raw braces answered %d", res.StatusCode)
	}
}

func TestPipelinesSim_InvalidTrigger_Is400WithErrorShape(t *testing.T) {
	s, srv, _ := newSimBitbucket(t, CISimConfig{})
	for _, body := range []string{`{`, `{}`, `{"target":{"type":"pipeline_ref_target","ref_type":"branch","ref_name":"main","selector":{"type":"CUSTOM","pattern":"x"}}}`,
		`{"target":{"type":"pipeline_commit_target"}}`} {
		r := simCall(t, "POST", srv.URL+bbRepo, simToken, body)
		if r.status != http.StatusBadRequest || r.body["type"] != "error" {
			t.Fatalf("%s: %d %v", body, r.status, r.body)
		}
	}
	if s.Runs() != 0 {
		t.Fatal("an invalid trigger created a pipeline")
	}
}

func TestPipelinesSim_Auth_401WithErrorShape(t *testing.T) {
	_, srv, _ := newSimBitbucket(t, CISimConfig{})
	for _, tok := range []string{"", "wrong"} {
		r := simCall(t, "GET", srv.URL+bbRepo, tok, "")
		if r.status != http.StatusUnauthorized || r.body["type"] != "error" || simPath(r.body, "error.message") == nil {
			t.Fatalf("token %q: %d %v", tok, r.status, r.body)
		}
	}
}

func TestPipelinesSim_RequestBudget_429WithRateLimitHeaders(t *testing.T) {
	s, srv, clk := newSimBitbucket(t, CISimConfig{RequestBudget: 2, BudgetWindow: time.Minute})
	for i := range 2 {
		if r := simCall(t, "GET", srv.URL+bbRepo, simToken, ""); r.status != http.StatusOK {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := simCall(t, "GET", srv.URL+bbRepo, simToken, "")
	if r.status != http.StatusTooManyRequests || simPath(r.body, "error.message") != "Rate limit for this resource has been exceeded" {
		t.Fatalf("over budget: %d %v", r.status, r.body)
	}
	if r.header.Get("X-RateLimit-Limit") != "2" || r.header.Get("X-RateLimit-Resource") == "" || r.header.Get("X-RateLimit-NearLimit") != "true" {
		t.Fatalf("headers %v", r.header)
	}
	if r.header.Get("Retry-After") != "" {
		t.Fatal("Retry-After sent although none is configured (Bitbucket documents none)")
	}
	clk.Add(time.Minute)
	if r := simCall(t, "GET", srv.URL+bbRepo, simToken, ""); r.status != http.StatusOK || s.RateLimited() != 1 {
		t.Fatalf("next window: %d, limited %d", r.status, s.RateLimited())
	}
}

func TestPipelinesSim_NotifyPush_ListByCommitSortAndPages(t *testing.T) {
	s, srv, clk := newSimBitbucket(t, CISimConfig{TriggerDelay: 5 * time.Second})
	sha := strings.Repeat("ab", 20)
	s.NotifyPush("vantage-probe/x", sha)
	s.NotifyPush("vantage-probe/gone", strings.Repeat("0", 40)) // a deletion starts nothing
	list := func(q string) simResponse { return simCall(t, "GET", srv.URL+bbRepo+"?"+q, simToken, "") }
	if s.Runs() != 1 {
		t.Fatalf("%d runs after one push and one deletion", s.Runs())
	}
	if r := list("target.commit.hash=" + sha); r.body["size"] != 0.0 {
		t.Fatalf("pipeline visible before the trigger delay: %v", r.body)
	}
	clk.Add(5 * time.Second)
	r := list("target.commit.hash=" + sha + "&sort=-created_on")
	vals, _ := r.body["values"].([]any)
	if len(vals) != 1 || simPath(vals[0], "target.commit.hash") != sha || simPath(vals[0], "trigger.type") != "pipeline_trigger_push" ||
		simPath(vals[0], "target.ref_name") != "vantage-probe/x" {
		t.Fatalf("push pipeline: %v", r.body)
	}
	for range 3 {
		clk.Add(time.Second)
		simCall(t, "POST", srv.URL+bbRepo, simToken, customTrigger)
	}
	r = list("sort=-created_on&pagelen=2")
	vals, _ = r.body["values"].([]any)
	if len(vals) != 2 || r.body["size"] != 4.0 || r.body["next"] == nil {
		t.Fatalf("page 1: %v", r.body)
	}
	if simPath(vals[0], "build_number").(float64) <= simPath(vals[1], "build_number").(float64) {
		t.Fatalf("-created_on not newest first: %v", vals)
	}
	next := simCall(t, "GET", r.body["next"].(string), simToken, "")
	if v, _ := next.body["values"].([]any); len(v) != 2 || next.body["next"] != nil || simPath(v[1], "target.commit.hash") != sha {
		t.Fatalf("page 2: %v", next.body)
	}
	if r := list("pagelen=101"); r.status != http.StatusBadRequest {
		t.Fatalf("pagelen 101: %d", r.status)
	}
	if r := list("sort=-completed_on"); r.status != http.StatusBadRequest {
		t.Fatalf("sort=-completed_on: %d", r.status)
	}
}

func TestPipelinesSim_Steps_StatesDurationsAndPages(t *testing.T) {
	_, srv, clk := newSimBitbucket(t, CISimConfig{QueueTime: time.Second, RunTime: 4 * time.Second, Steps: []string{"a", "b", "c", "d"}, Outcome: CIFailed})
	uuid := simCall(t, "POST", srv.URL+bbRepo, simToken, customTrigger).body["uuid"].(string)
	steps := srv.URL + bbRepo + url.PathEscape(uuid) + "/steps/"
	names := func(q string) []string {
		var out []string
		for _, v := range simCall(t, "GET", steps+q, simToken, "").body["values"].([]any) {
			out = append(out, simPath(v, "state.name").(string))
		}
		return out
	}
	if got := strings.Join(names(""), ","); got != "PENDING,PENDING,PENDING,PENDING" {
		t.Fatalf("queued: %s", got)
	}
	clk.Add(2500 * time.Millisecond)
	if got := strings.Join(names(""), ","); got != "COMPLETED,IN_PROGRESS,PENDING,PENDING" {
		t.Fatalf("running: %s", got)
	}
	clk.Add(3 * time.Second)
	r := simCall(t, "GET", steps+"?pagelen=3", simToken, "")
	vals := r.body["values"].([]any)
	if len(vals) != 3 || r.body["next"] == nil || simPath(vals[0], "duration_in_seconds") != 1.0 || simPath(vals[0], "started_on") == nil {
		t.Fatalf("page 1: %v", r.body)
	}
	last := simCall(t, "GET", r.body["next"].(string), simToken, "").body["values"].([]any)
	if len(last) != 1 || simPath(last[0], "state.result.name") != "FAILED" || simPath(vals[0], "state.result.name") != "SUCCESSFUL" {
		t.Fatalf("results: %v / %v", vals, last)
	}
}

func TestPipelinesSim_QueueStall_HoldsPendingUntilReleased(t *testing.T) {
	s, srv, clk := newSimBitbucket(t, CISimConfig{QueueTime: time.Second, RunTime: time.Second})
	s.SetQueueStall(true)
	loc := simCall(t, "POST", srv.URL+bbRepo, simToken, customTrigger).header.Get("Location")
	clk.Add(time.Hour)
	if got := simPath(simCall(t, "GET", loc, simToken, "").body, "state.name"); got != "PENDING" {
		t.Fatalf("stalled pipeline is %v", got)
	}
	s.SetQueueStall(false)
	if got := simPath(simCall(t, "GET", loc, simToken, "").body, "state.name"); got != "IN_PROGRESS" {
		t.Fatalf("released pipeline is %v", got)
	}
	clk.Add(time.Second)
	if got := simPath(simCall(t, "GET", loc, simToken, "").body, "state.name"); got != "COMPLETED" {
		t.Fatalf("released pipeline then is %v", got)
	}
}

func TestGitHubActionsSim_DispatchRunCancel(t *testing.T) {
	clk := &simClock{t: time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)}
	s := NewGitHubActionsSim(CISimConfig{Now: clk.Now, Token: simToken, Repository: "o/r", RunTime: time.Second})
	srv := httptest.NewServer(s)
	defer srv.Close()
	if r := simCall(t, "POST", srv.URL+"/repos/o/r/actions/workflows/ci.yml/dispatches", simToken, `{"ref":"main"}`); r.status != http.StatusNoContent {
		t.Fatalf("plain dispatch: %d", r.status)
	}
	r := simCall(t, "POST", srv.URL+"/repos/o/r/actions/workflows/ci.yml/dispatches", simToken, `{"ref":"main","return_run_details":true}`)
	id, _ := r.body["workflow_run_id"].(float64)
	if r.status != http.StatusOK || id == 0 {
		t.Fatalf("dispatch with details: %d %v", r.status, r.body)
	}
	run := srv.URL + "/repos/o/r/actions/runs/" + simNum(id)
	if got := simCall(t, "GET", run, simToken, "").body["status"]; got != "in_progress" {
		t.Fatalf("status %v", got)
	}
	if r := simCall(t, "POST", run+"/cancel", simToken, ""); r.status != http.StatusAccepted {
		t.Fatalf("cancel: %d", r.status)
	}
	if b := simCall(t, "GET", run, simToken, "").body; b["conclusion"] != "cancelled" || b["status"] != "completed" {
		t.Fatalf("after cancel: %v", b)
	}
	if r := simCall(t, "POST", run+"/cancel", simToken, ""); r.status != http.StatusConflict {
		t.Fatalf("second cancel: %d", r.status)
	}
	if r := simCall(t, "GET", run, "bad", ""); r.status != http.StatusUnauthorized || r.body["message"] != "Bad credentials" {
		t.Fatalf("bad token: %d %v", r.status, r.body)
	}
}

func TestGitLabSim_CreateGetCancel(t *testing.T) {
	clk := &simClock{t: time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)}
	s := NewGitLabSim(CISimConfig{Now: clk.Now, Token: simToken, Repository: "g/p", QueueTime: time.Second, Outcome: CIFailed})
	srv := httptest.NewServer(s)
	defer srv.Close()
	base := srv.URL + "/api/v4/projects/" + url.PathEscape("g/p")
	r := simCall(t, "POST", base+"/pipeline?ref=main", simToken, `{"variables":[{"key":"K","value":"V"}]}`)
	if r.status != http.StatusCreated || r.body["status"] != "pending" {
		t.Fatalf("create: %d %v", r.status, r.body)
	}
	pid := simNum(r.body["id"].(float64))
	clk.Add(time.Second)
	if got := simCall(t, "GET", base+"/pipelines/"+pid, simToken, "").body["status"]; got != "failed" {
		t.Fatalf("status %v", got)
	}
	if r := simCall(t, "POST", base+"/pipeline?ref=main", "", ""); r.status != http.StatusUnauthorized {
		t.Fatalf("no token: %d", r.status)
	}
	if r := simCall(t, "GET", srv.URL+"/api/v4/projects/other/pipelines/"+pid, simToken, ""); r.status != http.StatusNotFound {
		t.Fatalf("other project: %d", r.status)
	}
}

func simNum(f float64) string {
	b, _ := json.Marshal(int64(f))
	return string(b)
}
