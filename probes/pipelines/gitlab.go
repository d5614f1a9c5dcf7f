package pipelines

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
)

// gitlab drives GitLab CI pipelines (API v4).
type gitlab struct {
	api         *api
	projectPath string // "/api/v4/projects/{id}", the path or ID escaped
	branch      string
	name        string
	variables   map[string]string
}

func newGitLab(a *api, project, branch, name string, vars map[string]string) *gitlab {
	if name == "" {
		name = branch
	}
	return &gitlab{api: a, projectPath: "/api/v4/projects/" + url.PathEscape(project),
		branch: branch, name: name, variables: vars}
}

func (g *gitlab) pipelineName() string { return g.name }

// glPipeline is the part of a GitLab pipeline the journey reads.
type glPipeline struct {
	ID     int64  `json:"id"`
	IID    int64  `json:"iid"`
	Status string `json:"status"`
	WebURL string `json:"web_url"`
}

func (g *gitlab) status(p glPipeline) status {
	st := status{id: strconv.FormatInt(p.ID, 10), number: p.IID, url: p.WebURL, state: p.Status}
	switch p.Status {
	case "created", "waiting_for_resource", "preparing", "pending", "scheduled", "manual":
		st.phase = phasePending
	case "running", "canceling", "waiting_for_callback":
		st.phase = phaseRunning
	case "success":
		st.phase, st.result, st.outcome = phaseDone, p.Status, outcomeSuccess
	case "failed", "skipped":
		st.phase, st.result, st.outcome = phaseDone, p.Status, outcomeFailed
	case "canceled":
		st.phase, st.result, st.outcome = phaseDone, p.Status, outcomeStopped
	default:
		st.phase = phaseUnknown
	}
	return st
}

func (g *gitlab) parse(method, path string, body []byte) (status, error) {
	var p glPipeline
	if err := decode(method, path, body, &p); err != nil {
		return status{}, err
	}
	if p.ID <= 0 || p.Status == "" {
		return status{}, probes.Errorf(report.ErrProtocol, "%s %s: pipeline has no id or status", method, path)
	}
	return g.status(p), nil
}

func (g *gitlab) trigger(ctx context.Context) (status, error) {
	path := g.projectPath + "/pipeline"
	body := map[string]any{}
	if len(g.variables) > 0 {
		vars := make([]map[string]string, 0, len(g.variables))
		for _, k := range sortedKeys(g.variables) {
			vars = append(vars, map[string]string{"key": k, "value": g.variables[k]})
		}
		body["variables"] = vars
	}
	resp, err := g.api.do(ctx, http.MethodPost, path, url.Values{"ref": {g.branch}}, body, http.StatusCreated)
	if err != nil {
		return status{}, err
	}
	return g.parse(http.MethodPost, path, resp.body)
}

func (g *gitlab) pipelinePath(id string) string {
	return g.projectPath + "/pipelines/" + url.PathEscape(id)
}

func (g *gitlab) get(ctx context.Context, id string) (status, error) {
	path := g.pipelinePath(id)
	resp, err := g.api.do(ctx, http.MethodGet, path, nil, nil, http.StatusOK)
	if err != nil {
		return status{}, err
	}
	return g.parse(http.MethodGet, path, resp.body)
}

func (g *gitlab) stop(ctx context.Context, id string) error {
	_, err := g.api.do(ctx, http.MethodPost, g.pipelinePath(id)+"/cancel", nil, nil, http.StatusOK)
	return err
}

func (g *gitlab) findByCommit(ctx context.Context, branch, sha string) (status, bool, error) {
	path := g.projectPath + "/pipelines"
	q := url.Values{"sha": {sha}, "ref": {branch}, "order_by": {"id"}, "sort": {"desc"}}
	resp, err := g.api.do(ctx, http.MethodGet, path, q, nil, http.StatusOK)
	if err != nil {
		return status{}, false, err
	}
	var list []glPipeline
	if err := decode(http.MethodGet, path, resp.body, &list); err != nil {
		return status{}, false, err
	}
	if len(list) == 0 {
		return status{}, false, nil
	}
	if list[0].ID <= 0 || list[0].Status == "" {
		return status{}, false, probes.Errorf(report.ErrProtocol, "GET %s: pipeline has no id or status", path)
	}
	return g.status(list[0]), true, nil
}

// tasks is not implemented for GitLab (jobs are not read).
func (g *gitlab) tasks(ctx context.Context, id string) ([]task, error) { return nil, nil }
