package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Pipelines providers and modes.
const (
	PipelinesBitbucket = "bitbucket"
	PipelinesGitHub    = "github"
	PipelinesGitLab    = "gitlab"

	// PipelinesModeTrigger starts a pipeline through the API and follows it.
	PipelinesModeTrigger = "trigger"
	// PipelinesModePush pushes a commit and times how long until the
	// pipeline that the push started appears.
	PipelinesModePush = "push"
)

// Pipelines defaults, in one place.
var (
	defaultPipelinesAPI = map[string]string{
		PipelinesBitbucket: "https://api.bitbucket.org",
		PipelinesGitHub:    "https://api.github.com",
		PipelinesGitLab:    "https://gitlab.com",
	}
	defaultPipelinesWeb = map[string]string{
		PipelinesBitbucket: "https://bitbucket.org",
		PipelinesGitHub:    "https://github.com",
		PipelinesGitLab:    "https://gitlab.com",
	}
	DefaultPipelinesPollInterval    = Dur(2 * time.Second)
	DefaultPipelinesMaxPollInterval = Dur(15 * time.Second)
	DefaultPipelinesRequestTimeout  = Dur(10 * time.Second)
	DefaultPipelinesStopTimeout     = Dur(5 * time.Second)
)

const (
	defaultPipelinesBranchPrefix     = "vantage-probe/"
	defaultPipelinesRateLimitRetries = 5
	defaultPipelinesMaxBodyBytes     = 1 << 20
)

// PipelinesJourney configures a kind = "pipelines" journey
// ([journey.pipelines]): start a CI pipeline (or push a commit that starts
// one), follow it to its result, and stop it when the journey's timeout
// comes first. The journey's timeout is the pipeline's time budget: set it
// to the longest a healthy run may take.
type PipelinesJourney struct {
	// Provider is "bitbucket" (default, Bitbucket Cloud Pipelines), "github"
	// (GitHub Actions) or "gitlab" (GitLab CI).
	Provider string `toml:"provider"`
	// Mode is "trigger" (default: start a pipeline through the API) or
	// "push" (push a commit to a probe branch and measure push-to-start).
	Mode string `toml:"mode"`
	// APIURL is the REST API's base URL. Default per provider:
	// https://api.bitbucket.org, https://api.github.com, https://gitlab.com.
	APIURL string `toml:"api_url"`
	// WebURL is the web UI's base URL, used to build Bitbucket's pipeline
	// links (GitHub and GitLab return theirs). Default https://bitbucket.org.
	WebURL string `toml:"web_url"`
	// Repository is "workspace/repo" (Bitbucket), "owner/repo" (GitHub), or
	// a project path "group/project" or numeric ID (GitLab). Required.
	Repository string `toml:"repository"`
	// Branch is the branch a triggered pipeline runs on. Default "main".
	Branch string `toml:"branch"`
	// Pipeline names what to run: the custom pipeline's selector pattern
	// (Bitbucket; empty runs the branch's default pipeline) or the workflow
	// file or ID (GitHub, required). GitLab ignores it beyond naming results.
	Pipeline string `toml:"pipeline"`
	// Variables are passed to the pipeline (Bitbucket variables, GitHub
	// workflow inputs, GitLab variables). Never put secrets here: they are
	// not redacted.
	Variables map[string]string `toml:"variables"`

	// BearerToken authenticates with "Authorization: Bearer …": a
	// Bitbucket repository/project/workspace access token, a GitHub token
	// or a GitLab token.
	BearerToken Secret `toml:"bearer_token"`
	// BasicUser and BasicPassword authenticate with HTTP Basic (a Bitbucket
	// app password, or an Atlassian API token with the account email).
	BasicUser     string `toml:"basic_user"`
	BasicPassword Secret `toml:"basic_password"`

	// PollInterval is the first wait between status polls; the wait grows
	// by half each poll up to MaxPollInterval. Shorter measures queue and
	// run times more precisely but spends more of the API's rate limit
	// (Bitbucket: 1,000 requests per hour per token). Default 2s.
	PollInterval Duration `toml:"poll_interval"`
	// MaxPollInterval caps the poll backoff. Default 15s.
	MaxPollInterval Duration `toml:"max_poll_interval"`
	// RequestTimeout bounds each API request; an API that does not answer
	// within it fails the journey as timeout, while a pipeline that is
	// still running at the journey's deadline is pipeline_timeout.
	// Default 10s.
	RequestTimeout Duration `toml:"request_timeout"`
	// StopTimeout bounds the request that stops the pipeline once the
	// journey's deadline has passed (the run overruns its timeout by at
	// most this much). Default 5s.
	StopTimeout Duration `toml:"stop_timeout"`
	// RateLimitRetries is how many consecutive 429 answers are waited out
	// (Retry-After when sent, else exponential backoff) before the journey
	// fails as rate_limited. Default 5 (0 also means the default).
	RateLimitRetries int `toml:"rate_limit_retries"`
	// MaxBodyBytes bounds every API response body read. Default 1 MiB.
	MaxBodyBytes int64 `toml:"max_body_bytes"`

	// PushURL is the git repository URL that push mode pushes to
	// (https://… or ssh://…). Required with mode = "push".
	PushURL string `toml:"push_url"`
	// PushUser is the git user for pushes over HTTPS; the password is
	// BearerToken or BasicPassword. Default "x-token-auth" (Bitbucket
	// access tokens) with a bearer token, else BasicUser.
	PushUser string `toml:"push_user"`
	// PushPassword is the git password (token) for HTTPS pushes. Default:
	// bearer_token, else basic_password (a Bitbucket access token works for
	// both the API and git, with push_user "x-token-auth").
	PushPassword Secret `toml:"push_password"`
	// PushCAFile is a PEM bundle trusted for HTTPS pushes instead of the
	// system roots.
	PushCAFile string `toml:"push_ca_file"`
	// PushSSHKeyFile is the private key for an ssh:// push_url; the server
	// is verified with PushHostKey (an authorized_keys line, preferred) or
	// the known_hosts file PushKnownHosts. One of them is required.
	PushSSHKeyFile string `toml:"push_ssh_key_file"`
	PushKnownHosts string `toml:"push_known_hosts"`
	PushHostKey    string `toml:"push_host_key"`
	// BranchPrefix is where push mode creates its probe branches; it pushes
	// and deletes only there. Default "vantage-probe/".
	BranchPrefix string `toml:"branch_prefix"`
	// WaitForResult makes push mode also follow the pipeline that the push
	// started to its result (queue, run and result steps). Default false:
	// the journey ends once the pipeline has started.
	WaitForResult bool `toml:"wait_for_result"`
}

func (pj *PipelinesJourney) applyDefaults() {
	if pj.Provider == "" {
		pj.Provider = PipelinesBitbucket
	}
	if pj.Mode == "" {
		pj.Mode = PipelinesModeTrigger
	}
	if pj.APIURL == "" {
		pj.APIURL = defaultPipelinesAPI[pj.Provider]
	}
	if pj.WebURL == "" {
		pj.WebURL = defaultPipelinesWeb[pj.Provider]
	}
	if pj.Branch == "" {
		pj.Branch = "main"
	}
	if pj.PollInterval.IsZero() {
		pj.PollInterval = DefaultPipelinesPollInterval
	}
	if pj.MaxPollInterval.IsZero() {
		pj.MaxPollInterval = DefaultPipelinesMaxPollInterval
	}
	if pj.RequestTimeout.IsZero() {
		pj.RequestTimeout = DefaultPipelinesRequestTimeout
	}
	if pj.StopTimeout.IsZero() {
		pj.StopTimeout = DefaultPipelinesStopTimeout
	}
	if pj.RateLimitRetries == 0 {
		pj.RateLimitRetries = defaultPipelinesRateLimitRetries
	}
	if pj.MaxBodyBytes == 0 {
		pj.MaxBodyBytes = defaultPipelinesMaxBodyBytes
	}
	if pj.BranchPrefix == "" {
		pj.BranchPrefix = defaultPipelinesBranchPrefix
	}
	if pj.PushUser == "" {
		if pj.BearerToken.IsSet() {
			pj.PushUser = "x-token-auth"
		} else {
			pj.PushUser = pj.BasicUser
		}
	}
}

func (pj *PipelinesJourney) validate(p *problems, key string, j *Journey) {
	pj.applyDefaults()
	switch pj.Provider {
	case PipelinesBitbucket, PipelinesGitHub, PipelinesGitLab:
	default:
		p.add(key+".provider", fmt.Sprintf("unknown provider %q (want %q, %q or %q)", pj.Provider, PipelinesBitbucket, PipelinesGitHub, PipelinesGitLab))
	}
	switch pj.Mode {
	case PipelinesModeTrigger, PipelinesModePush:
	default:
		p.add(key+".mode", fmt.Sprintf("unknown mode %q (want %q or %q)", pj.Mode, PipelinesModeTrigger, PipelinesModePush))
	}
	for _, f := range []struct{ name, v string }{{"api_url", pj.APIURL}, {"web_url", pj.WebURL}} {
		if u, err := url.Parse(f.v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add(key+"."+f.name, "must be an absolute http:// or https:// URL")
		} else if u.User != nil {
			p.add(key+"."+f.name, "must not carry credentials; use bearer_token or basic_password")
		}
	}
	if pj.Repository == "" {
		p.add(key+".repository", "is required")
	} else if pj.Provider != PipelinesGitLab {
		parts := strings.Split(pj.Repository, "/")
		if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
			p.add(key+".repository", fmt.Sprintf("must be \"owner/repo\", not %q", pj.Repository))
		}
	}
	if pj.Provider == PipelinesGitHub && pj.Pipeline == "" && pj.Mode == PipelinesModeTrigger {
		p.add(key+".pipeline", "is required for GitHub: the workflow file or ID to dispatch")
	}
	for k := range pj.Variables {
		if strings.TrimSpace(k) == "" {
			p.add(key+".variables", "variable names must not be empty")
		}
	}
	if pj.BearerToken.IsSet() && pj.BasicPassword.IsSet() {
		p.add(key+".bearer_token", "set either a bearer token or basic auth, not both")
	}
	if pj.BasicPassword.IsSet() != (pj.BasicUser != "") {
		p.add(key+".basic_user", "basic_user and basic_password go together")
	}
	if !pj.BearerToken.IsSet() && !pj.BasicPassword.IsSet() {
		p.add(key+".bearer_token", "pipelines need credentials: bearer_token, or basic_user and basic_password")
	}
	if pj.PollInterval.D > pj.MaxPollInterval.D {
		p.add(key+".poll_interval", fmt.Sprintf("%s is longer than max_poll_interval %s", pj.PollInterval.D, pj.MaxPollInterval.D))
	}
	for _, f := range []struct {
		name string
		d    Duration
	}{{"poll_interval", pj.PollInterval}, {"max_poll_interval", pj.MaxPollInterval}, {"request_timeout", pj.RequestTimeout}, {"stop_timeout", pj.StopTimeout}} {
		if f.d.D <= 0 && f.d.problem() == "" {
			p.add(key+"."+f.name, "must be positive")
		}
	}
	if pj.RateLimitRetries < 0 {
		p.add(key+".rate_limit_retries", "must not be negative")
	}
	if pj.MaxBodyBytes < 0 {
		p.add(key+".max_body_bytes", "must not be negative")
	}
	if pj.Mode == PipelinesModePush {
		if pj.PushURL == "" {
			p.add(key+".push_url", "is required with mode = \"push\"")
		} else if u, err := url.Parse(pj.PushURL); err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ssh") || u.Host == "" {
			p.add(key+".push_url", "must be an https://, http:// or ssh:// URL")
		} else if u.User != nil && u.Scheme != "ssh" {
			p.add(key+".push_url", "must not carry credentials; use push_password, bearer_token or basic_password")
		} else if _, has := u.User.Password(); has {
			p.add(key+".push_url", "must not carry a password")
		} else if u.Scheme == "ssh" {
			if pj.PushSSHKeyFile == "" {
				p.add(key+".push_ssh_key_file", "is required for an ssh:// push_url")
			}
			if pj.PushHostKey == "" && pj.PushKnownHosts == "" {
				p.add(key+".push_known_hosts", "push_host_key or push_known_hosts is required to verify the SSH server")
			}
		}
		if strings.Trim(pj.BranchPrefix, "/") == "" || strings.HasPrefix(pj.BranchPrefix, "refs/") {
			p.add(key+".branch_prefix", "must be a non-empty branch name prefix such as \"vantage-probe/\"")
		}
	}
	if j.Timeout.D > 0 && pj.PollInterval.D >= j.Timeout.D {
		p.add(key+".poll_interval", fmt.Sprintf("%s is not shorter than the journey timeout %s", pj.PollInterval.D, j.Timeout.D))
	}
}
