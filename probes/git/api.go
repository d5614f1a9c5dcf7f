package git

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
)

// maxAPIBody bounds a branch API response.
const maxAPIBody = 1 << 20

// branchAPI reads a branch's head commit from a product's REST API.
type branchAPI interface {
	// branchHead returns the branch's commit hash, or "" when the API says
	// the branch does not exist (yet).
	branchHead(ctx context.Context, branch string) (string, error)
}

// restBranches implements branchAPI for the four supported products; they
// differ only in the URL and in where the hash sits in the JSON.
type restBranches struct {
	cfg  *config.GitAPI
	base string
	hc   *http.Client
}

func newBranchAPI(a *config.GitAPI) (branchAPI, error) {
	switch a.Type {
	case "bitbucket-cloud", "bitbucket-dc", "github", "gitlab":
	default:
		return nil, fmt.Errorf("git: unknown api type %q", a.Type)
	}
	return &restBranches{cfg: a, base: strings.TrimRight(a.BaseURL, "/"), hc: &http.Client{
		Transport: http.DefaultTransport.(*http.Transport).Clone(),
		// A redirect could carry the token to another host; the APIs don't need one.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// requestURL returns the API URL that reads branch.
func (r *restBranches) requestURL(branch string) string {
	ws, repo, b := url.PathEscape(r.cfg.Workspace), url.PathEscape(r.cfg.Repo), url.PathEscape(branch)
	switch r.cfg.Type {
	case "bitbucket-cloud":
		return fmt.Sprintf("%s/2.0/repositories/%s/%s/refs/branches/%s", r.base, ws, repo, b)
	case "bitbucket-dc":
		return fmt.Sprintf("%s/rest/api/latest/projects/%s/repos/%s/branches?filterText=%s", r.base, ws, repo, url.QueryEscape(branch))
	case "github":
		return fmt.Sprintf("%s/repos/%s/%s/branches/%s", r.base, ws, repo, b)
	default: // gitlab
		return fmt.Sprintf("%s/api/v4/projects/%s/repository/branches/%s", r.base,
			url.PathEscape(r.cfg.Workspace+"/"+r.cfg.Repo), b)
	}
}

func (r *restBranches) branchHead(ctx context.Context, branch string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.requestURL(branch), nil)
	if err != nil {
		return "", probes.Internal(err)
	}
	req.Header.Set("Accept", "application/json")
	if tok := r.cfg.Token.Value(); tok != "" {
		if r.cfg.Username != "" {
			req.SetBasicAuth(r.cfg.Username, tok)
		} else {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("branch api: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIBody+1))
	if err != nil {
		return "", fmt.Errorf("branch api: reading response: %w", err)
	}
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
	case code == http.StatusNotFound:
		return "", nil
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return "", probes.Errorf(report.ErrAuth, "branch api: HTTP %d", code)
	case code == http.StatusTooManyRequests:
		return "", probes.Errorf(report.ErrRateLimited, "branch api: HTTP %d", code)
	case code >= 500:
		return "", probes.Errorf(report.ErrHTTP5xx, "branch api: HTTP %d", code)
	default:
		return "", probes.Errorf(report.ErrHTTP4xx, "branch api: HTTP %d", code)
	}
	if len(body) > maxAPIBody {
		return "", probes.Errorf(report.ErrProtocol, "branch api: response larger than %d bytes", maxAPIBody)
	}
	return parseBranchHead(r.cfg.Type, branch, body)
}

// parseBranchHead reads the head commit of branch from an API response
// body; "" means the branch is not in it.
func parseBranchHead(apiType, branch string, body []byte) (string, error) {
	var hash string
	switch apiType {
	case "bitbucket-cloud":
		var v struct {
			Name   string `json:"name"`
			Target struct {
				Hash string `json:"hash"`
			} `json:"target"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			return "", probes.Errorf(report.ErrProtocol, "branch api: %w", err)
		}
		hash = v.Target.Hash
	case "bitbucket-dc":
		var v struct {
			Values []struct {
				DisplayID    string `json:"displayId"`
				LatestCommit string `json:"latestCommit"`
			} `json:"values"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			return "", probes.Errorf(report.ErrProtocol, "branch api: %w", err)
		}
		for _, b := range v.Values {
			if b.DisplayID == branch {
				return checkHash(b.LatestCommit)
			}
		}
		return "", nil
	case "github":
		var v struct {
			Commit struct {
				SHA string `json:"sha"`
			} `json:"commit"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			return "", probes.Errorf(report.ErrProtocol, "branch api: %w", err)
		}
		hash = v.Commit.SHA
	case "gitlab":
		var v struct {
			Commit struct {
				ID string `json:"id"`
			} `json:"commit"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			return "", probes.Errorf(report.ErrProtocol, "branch api: %w", err)
		}
		hash = v.Commit.ID
	default:
		return "", probes.Internal(errors.New("unknown api type"))
	}
	return checkHash(hash)
}

func checkHash(h string) (string, error) {
	if len(h) != 40 && len(h) != 64 {
		return "", probes.Errorf(report.ErrProtocol, "branch api: %q is not a commit hash", truncate(h, 80))
	}
	for _, c := range h {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return "", probes.Errorf(report.ErrProtocol, "branch api: %q is not a commit hash", truncate(h, 80))
		}
	}
	return h, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
