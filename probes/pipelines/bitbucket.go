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

// bitbucket drives Bitbucket Cloud Pipelines (REST 2.0).
type bitbucket struct {
	api       *api
	repoPath  string // "/2.0/repositories/{ws}/{repo}", escaped
	webBase   string // https://bitbucket.org/{ws}/{repo}
	branch    string
	pattern   string
	variables map[string]string
}

func newBitbucket(a *api, webURL, repository, branch, pattern string, vars map[string]string) *bitbucket {
	ws, repo, _ := strings.Cut(repository, "/")
	return &bitbucket{
		api:      a,
		repoPath: "/2.0/repositories/" + url.PathEscape(ws) + "/" + url.PathEscape(repo),
		webBase:  strings.TrimRight(webURL, "/") + "/" + url.PathEscape(ws) + "/" + url.PathEscape(repo),
		branch:   branch, pattern: pattern, variables: vars,
	}
}

func (b *bitbucket) pipelineName() string {
	if b.pattern == "" {
		return "default"
	}
	return b.pattern
}

// maxPageLen is Bitbucket's largest page; maxPages bounds a listing.
const (
	maxPageLen = 100
	maxPages   = 20
)

// bbPipeline is the part of a Bitbucket pipeline object the journey reads.
type bbPipeline struct {
	UUID        string `json:"uuid"`
	BuildNumber int64  `json:"build_number"`
	State       *struct {
		Name  string `json:"name"`
		Stage *struct {
			Name string `json:"name"`
		} `json:"stage"`
		Result *struct {
			Name string `json:"name"`
		} `json:"result"`
	} `json:"state"`
}

// parseBitbucketPipeline decodes and validates a pipeline object.
func parseBitbucketPipeline(method, path string, body []byte) (bbPipeline, error) {
	var p bbPipeline
	if err := decode(method, path, body, &p); err != nil {
		return p, err
	}
	return p, validPipeline(method, path, p)
}

func validPipeline(method, path string, p bbPipeline) error {
	if !strings.HasPrefix(p.UUID, "{") || !strings.HasSuffix(p.UUID, "}") || len(p.UUID) > 64 {
		return probes.Errorf(report.ErrProtocol, "%s %s: pipeline has no valid uuid", method, path)
	}
	if p.State == nil || p.State.Name == "" {
		return probes.Errorf(report.ErrProtocol, "%s %s: pipeline has no state", method, path)
	}
	return nil
}

// status converts a pipeline object. Only COMPLETED is terminal; an
// unknown state name is reported as phaseUnknown (not terminal).
func (b *bitbucket) status(p bbPipeline) status {
	st := status{id: p.UUID, number: p.BuildNumber, state: p.State.Name,
		url: b.webBase + "/pipelines/results/" + strconv.FormatInt(p.BuildNumber, 10)}
	switch p.State.Name {
	case "PENDING":
		st.phase = phasePending
	case "IN_PROGRESS":
		st.phase = phaseRunning
		if p.State.Stage != nil && p.State.Stage.Name != "" {
			st.state += "/" + p.State.Stage.Name
		}
	case "COMPLETED":
		st.phase = phaseDone
		if p.State.Result != nil {
			st.result = p.State.Result.Name
		}
		switch st.result {
		case "SUCCESSFUL":
			st.outcome = outcomeSuccess
		case "STOPPED":
			st.outcome = outcomeStopped
		case "FAILED", "ERROR", "EXPIRED":
			st.outcome = outcomeFailed
		default:
			st.outcome = outcomeUnknown
		}
	default:
		st.phase = phaseUnknown
	}
	return st
}

func (b *bitbucket) trigger(ctx context.Context) (status, error) {
	target := map[string]any{"type": "pipeline_ref_target", "ref_type": "branch", "ref_name": b.branch}
	if b.pattern != "" {
		target["selector"] = map[string]any{"type": "custom", "pattern": b.pattern}
	}
	body := map[string]any{"target": target}
	if len(b.variables) > 0 {
		vars := make([]map[string]any, 0, len(b.variables))
		for _, k := range sortedKeys(b.variables) {
			vars = append(vars, map[string]any{"key": k, "value": b.variables[k], "secured": false})
		}
		body["variables"] = vars
	}
	path := b.repoPath + "/pipelines/"
	resp, err := b.api.do(ctx, http.MethodPost, path, nil, body, http.StatusCreated)
	if err != nil {
		return status{}, err
	}
	p, err := parseBitbucketPipeline(http.MethodPost, path, resp.body)
	if err != nil {
		return status{}, err
	}
	return b.status(p), nil
}

func (b *bitbucket) pipelinePath(id string) string {
	// The UUID's braces must be percent-encoded: PathEscape does it.
	return b.repoPath + "/pipelines/" + url.PathEscape(id)
}

func (b *bitbucket) get(ctx context.Context, id string) (status, error) {
	path := b.pipelinePath(id)
	resp, err := b.api.do(ctx, http.MethodGet, path, nil, nil, http.StatusOK)
	if err != nil {
		return status{}, err
	}
	p, err := parseBitbucketPipeline(http.MethodGet, path, resp.body)
	if err != nil {
		return status{}, err
	}
	return b.status(p), nil
}

func (b *bitbucket) stop(ctx context.Context, id string) error {
	_, err := b.api.do(ctx, http.MethodPost, b.pipelinePath(id)+"/stopPipeline", nil, nil, http.StatusNoContent)
	return err
}

// bbPage is one page of a paginated listing.
type bbPage[T any] struct {
	Next   string `json:"next"`
	Values []T    `json:"values"`
}

func (b *bitbucket) findByCommit(ctx context.Context, branch, sha string) (status, bool, error) {
	path := b.repoPath + "/pipelines/"
	q := url.Values{"target.commit.hash": {sha}, "sort": {"-created_on"}, "pagelen": {"10"}}
	resp, err := b.api.do(ctx, http.MethodGet, path, q, nil, http.StatusOK)
	if err != nil {
		return status{}, false, err
	}
	var page bbPage[bbPipeline]
	if err := decode(http.MethodGet, path, resp.body, &page); err != nil {
		return status{}, false, err
	}
	for _, p := range page.Values {
		if err := validPipeline(http.MethodGet, path, p); err != nil {
			return status{}, false, err
		}
		return b.status(p), true, nil
	}
	return status{}, false, nil
}

// bbStep is the part of a pipeline step the journey reads.
type bbStep struct {
	Name        string `json:"name"`
	StartedOn   string `json:"started_on"`
	CompletedOn string `json:"completed_on"`
	// DurationInSeconds is absent from the published spec snapshot.
	DurationInSeconds *float64 `json:"duration_in_seconds"`
	State             *struct {
		Name   string `json:"name"`
		Result *struct {
			Name string `json:"name"`
		} `json:"result"`
	} `json:"state"`
}

// tasks reads every page of /steps/, following next links on the same
// host only, and returns each step's duration and result.
func (b *bitbucket) tasks(ctx context.Context, id string) ([]task, error) {
	path := b.pipelinePath(id) + "/steps/"
	q := url.Values{"pagelen": {strconv.Itoa(maxPageLen)}}
	var out []task
	for range maxPages {
		resp, err := b.api.do(ctx, http.MethodGet, path, q, nil, http.StatusOK)
		if err != nil {
			return out, err
		}
		var page bbPage[bbStep]
		if err := decode(http.MethodGet, path, resp.body, &page); err != nil {
			return out, err
		}
		for _, s := range page.Values {
			out = append(out, stepTask(s))
		}
		if page.Next == "" {
			return out, nil
		}
		next, err := url.Parse(page.Next)
		base, _ := url.Parse(b.api.base)
		if err != nil || base == nil || next.Host != base.Host {
			return out, probes.Errorf(report.ErrProtocol, "GET %s: next page link is not on the API host", path)
		}
		path, q = strings.TrimPrefix(next.EscapedPath(), strings.TrimRight(base.EscapedPath(), "/")), next.Query()
	}
	return out, probes.Errorf(report.ErrProtocol, "GET %s: more than %d pages of steps", path, maxPages)
}

// stepTask computes a step's duration: duration_in_seconds when present,
// else completed_on - started_on; -1 when neither is known.
func stepTask(s bbStep) task {
	t := task{name: s.Name, duration: -1}
	if s.State != nil {
		t.result = s.State.Name
		if s.State.Result != nil && s.State.Result.Name != "" {
			t.result = s.State.Result.Name
		}
	}
	// A step lasting more than a year is not a real answer; ignore it
	// rather than overflow a Duration.
	if s.DurationInSeconds != nil && *s.DurationInSeconds >= 0 && *s.DurationInSeconds < 366*24*3600 {
		t.duration = time.Duration(*s.DurationInSeconds * float64(time.Second))
		return t
	}
	start, err1 := time.Parse(time.RFC3339Nano, s.StartedOn)
	end, err2 := time.Parse(time.RFC3339Nano, s.CompletedOn)
	if err1 == nil && err2 == nil && !end.Before(start) {
		t.duration = end.Sub(start)
	}
	return t
}
