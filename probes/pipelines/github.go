package pipelines

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
)

// github drives GitHub Actions: a workflow_dispatch run, followed through
// the runs API.
type github struct {
	api      *api
	repoPath string // "/repos/{o}/{r}", escaped
	workflow string
	branch   string
	inputs   map[string]string
	poll     time.Duration
}

func newGitHub(a *api, repository, branch, workflow string, inputs map[string]string, poll time.Duration) *github {
	o, r, _ := strings.Cut(repository, "/")
	return &github{api: a, repoPath: "/repos/" + url.PathEscape(o) + "/" + url.PathEscape(r),
		workflow: workflow, branch: branch, inputs: inputs, poll: poll}
}

func (g *github) pipelineName() string { return g.workflow }

// ghRun is the part of a workflow run the journey reads.
type ghRun struct {
	ID         int64   `json:"id"`
	RunNumber  int64   `json:"run_number"`
	Status     string  `json:"status"`
	Conclusion *string `json:"conclusion"`
	HTMLURL    string  `json:"html_url"`
	CreatedAt  string  `json:"created_at"`
}

func (g *github) status(r ghRun) status {
	st := status{id: strconv.FormatInt(r.ID, 10), number: r.RunNumber, url: r.HTMLURL, state: r.Status}
	switch r.Status {
	case "queued", "waiting", "requested", "pending":
		st.phase = phasePending
	case "in_progress":
		st.phase = phaseRunning
	case "completed":
		st.phase = phaseDone
		if r.Conclusion != nil {
			st.result = *r.Conclusion
		}
		switch st.result {
		case "success", "neutral":
			st.outcome = outcomeSuccess
		case "cancelled":
			st.outcome = outcomeStopped
		case "failure", "timed_out", "startup_failure", "action_required", "stale", "skipped":
			st.outcome = outcomeFailed
		default:
			st.outcome = outcomeUnknown
		}
	default:
		st.phase = phaseUnknown
	}
	return st
}

func (g *github) runPath(id string) string { return g.repoPath + "/actions/runs/" + url.PathEscape(id) }

func (g *github) trigger(ctx context.Context) (status, error) {
	since := time.Now().Add(-time.Minute).UTC()
	path := g.repoPath + "/actions/workflows/" + url.PathEscape(g.workflow) + "/dispatches"
	body := map[string]any{"ref": g.branch, "return_run_details": true}
	if len(g.inputs) > 0 {
		body["inputs"] = g.inputs
	}
	resp, err := g.api.do(ctx, http.MethodPost, path, nil, body, http.StatusOK, http.StatusNoContent)
	if err != nil {
		return status{}, err
	}
	if resp.status == http.StatusOK {
		// Run details on dispatch are new (2026-02-19); their field names are
		// not documented in the reference, so accept the two plausible ones.
		var d struct {
			WorkflowRunID int64 `json:"workflow_run_id"`
			ID            int64 `json:"id"`
		}
		if err := decode(http.MethodPost, path, resp.body, &d); err != nil {
			return status{}, err
		}
		if id := max(d.WorkflowRunID, d.ID); id > 0 {
			return g.get(ctx, strconv.FormatInt(id, 10))
		}
	}
	// Older API: 204 without the run. Find the newest dispatched run on the
	// branch created since just before the dispatch.
	q := url.Values{"event": {"workflow_dispatch"}, "branch": {g.branch}, "created": {">=" + since.Format(time.RFC3339)}}
	listPath := g.repoPath + "/actions/workflows/" + url.PathEscape(g.workflow) + "/runs"
	for {
		st, found, err := g.first(ctx, listPath, q)
		if err != nil || found {
			return st, err
		}
		if err := sleep(ctx, g.poll); err != nil {
			return status{}, probes.Errorf(report.ErrTimeout, "the dispatched run of %s never appeared in %s", g.workflow, listPath)
		}
	}
}

// first returns the newest run of a listing.
func (g *github) first(ctx context.Context, path string, q url.Values) (status, bool, error) {
	resp, err := g.api.do(ctx, http.MethodGet, path, q, nil, http.StatusOK)
	if err != nil {
		return status{}, false, err
	}
	var list struct {
		WorkflowRuns []ghRun `json:"workflow_runs"`
	}
	if err := decode(http.MethodGet, path, resp.body, &list); err != nil {
		return status{}, false, err
	}
	if len(list.WorkflowRuns) == 0 {
		return status{}, false, nil
	}
	r := list.WorkflowRuns[0]
	if r.ID <= 0 || r.Status == "" {
		return status{}, false, probes.Errorf(report.ErrProtocol, "GET %s: workflow run has no id or status", path)
	}
	return g.status(r), true, nil
}

func (g *github) get(ctx context.Context, id string) (status, error) {
	path := g.runPath(id)
	resp, err := g.api.do(ctx, http.MethodGet, path, nil, nil, http.StatusOK)
	if err != nil {
		return status{}, err
	}
	var r ghRun
	if err := decode(http.MethodGet, path, resp.body, &r); err != nil {
		return status{}, err
	}
	if r.ID <= 0 || r.Status == "" {
		return status{}, probes.Errorf(report.ErrProtocol, "GET %s: workflow run has no id or status", path)
	}
	return g.status(r), nil
}

func (g *github) stop(ctx context.Context, id string) error {
	_, err := g.api.do(ctx, http.MethodPost, g.runPath(id)+"/cancel", nil, nil, http.StatusAccepted)
	return err
}

func (g *github) findByCommit(ctx context.Context, branch, sha string) (status, bool, error) {
	q := url.Values{"head_sha": {sha}, "event": {"push"}, "branch": {branch}}
	return g.first(ctx, g.repoPath+"/actions/runs", q)
}

// tasks is not implemented for GitHub (jobs are not read).
func (g *github) tasks(ctx context.Context, id string) ([]task, error) { return nil, nil }
