package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// State describes a running lab for the tools that drive it (a demo
// orchestrator writes prober configs from it). `lab serve` writes it as
// JSON.
type State struct {
	// ControlURL is the control API's base URL.
	ControlURL string `json:"control_url"`
	// Dir is the lab's data directory.
	Dir string `json:"dir"`
	// Repo is the git repository path ("ws/app.git"); Workspace and Slug
	// name it in the Bitbucket-shaped APIs.
	Repo      string `json:"repo"`
	Workspace string `json:"workspace"`
	Slug      string `json:"slug"`
	// SSHKeyFile is the client key the SSH server accepts; KnownHosts pins
	// the host key for every edge's SSH address; HostKey is the host key
	// as an authorized_keys line.
	SSHKeyFile string `json:"ssh_key_file"`
	KnownHosts string `json:"known_hosts"`
	HostKey    string `json:"host_key"`
	// GitUser is the HTTP user for git over HTTP (password: env
	// VANTAGE_LAB_GIT_PASSWORD).
	GitUser string `json:"git_user"`
	// Env maps env names to the lab's throwaway secrets (LAB ONLY: random
	// per start, they protect nothing but this lab). Probers reference them
	// as "env:NAME".
	Env map[string]string `json:"env"`
	// Regions lists the regions in order; Edges every edge.
	Regions []string    `json:"regions"`
	Edges   []EdgeState `json:"edges"`
}

// EdgeState is one edge (one agent's entry point) of a State.
type EdgeState struct {
	Name   string `json:"name"`
	Region string `json:"region"`
	// HTTPURL is the edge's HTTP base URL; SSHAddr its SSH host:port.
	HTTPURL string `json:"http_url"`
	SSHAddr string `json:"ssh_addr"`
	// GitHTTPURL and GitSSHURL clone the repository through this edge;
	// APIURL is the base URL of the branch and Pipelines APIs.
	GitHTTPURL string `json:"git_http_url"`
	GitSSHURL  string `json:"git_ssh_url"`
	APIURL     string `json:"api_url"`
	// HgURL is the Mercurial repository through this edge (empty without
	// hg); HealthURL the HTTP API product's health page.
	HgURL     string `json:"hg_url,omitempty"`
	HealthURL string `json:"health_url"`
}

// State returns the lab's description.
func (l *Lab) State() State {
	ws, slug := repoSlug(LabRepo)
	s := State{ControlURL: l.ControlURL, Dir: l.Dir, Repo: LabRepo, Workspace: ws, Slug: slug,
		SSHKeyFile: l.ClientKeyFile, KnownHosts: l.KnownHostsFile,
		HostKey: strings.TrimSpace(l.Git.HostKeyLine), GitUser: LabGitUser, Env: map[string]string{}}
	for k, v := range l.Secrets {
		s.Env[k] = v
	}
	for _, e := range l.Edges {
		if len(s.Regions) == 0 || s.Regions[len(s.Regions)-1] != e.Region {
			s.Regions = append(s.Regions, e.Region)
		}
		s.Edges = append(s.Edges, l.edgeState(e))
	}
	return s
}

func (l *Lab) edgeState(e *Edge) EdgeState {
	base := "http://" + e.HTTPAddr
	s := EdgeState{Name: e.Name, Region: e.Region, HTTPURL: base, SSHAddr: e.SSHAddr,
		GitHTTPURL: base + "/git/" + LabRepo, GitSSHURL: "ssh://git@" + e.SSHAddr + "/" + LabRepo, APIURL: base,
		HealthURL: base + "/healthz"}
	if l.Hg != nil {
		s.HgURL = base + "/hg/"
	}
	return s
}

// WriteState writes the State as JSON to path (mode 0600: it holds the
// lab's throwaway tokens), atomically.
func (l *Lab) WriteState(path string) error {
	b, err := json.MarshalIndent(l.State(), "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".lab-state-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// JourneyOptions shapes the journeys ProberJourneys writes.
type JourneyOptions struct {
	// Schedule is every journey's schedule. Default "@every 30s".
	Schedule string
	// Timeout is every journey's timeout. Default 20s; the pipelines
	// journey gets the same.
	Timeout time.Duration
	// Mode is the journeys' mode ("one-per-region" or "every-agent");
	// empty leaves the prober's default.
	Mode string
	// Prefix is put before every journey name (default "lab-").
	Prefix string
	// NoSweep turns the git journeys' stale-branch sweeper off
	// (sweep_max = 0), e.g. for one-shot runs.
	NoSweep bool
}

// ProberJourneys returns prober TOML ([[journey]] tables) whose journeys
// reach the product through edge e: "http" (health page and repository
// JSON of the HTTP API), "git-http" (push, verify against the branch API,
// cleanup), "git-ssh" (clone), "hg" (clone or pull, push a changeset,
// verify; only when the lab runs hg) and "pipelines" (a triggered
// Bitbucket pipeline followed to its result), each name prefixed with
// JourneyOptions.Prefix. Secrets are
// referenced as env:NAME (see State.Env). Append it to an [agent] table.
func (l *Lab) ProberJourneys(e *Edge, o JourneyOptions) string {
	if o.Schedule == "" {
		o.Schedule = "@every 30s"
	}
	if o.Timeout <= 0 {
		o.Timeout = 20 * time.Second
	}
	if o.Prefix == "" {
		o.Prefix = "lab-"
	}
	es := l.edgeState(e)
	ws, slug := repoSlug(LabRepo)
	var b strings.Builder
	head := func(name, kind string, components ...string) {
		fmt.Fprintf(&b, "[[journey]]\nname = %q\nkind = %q\nschedule = %q\ntimeout = %q\n",
			o.Prefix+name, kind, o.Schedule, o.Timeout.String())
		if o.Mode != "" {
			fmt.Fprintf(&b, "mode = %q\n", o.Mode)
		}
		fmt.Fprintf(&b, "components = [%s]\n", quoteList(components))
	}
	head("http", "http", "api")
	fmt.Fprintf(&b, "[journey.http]\n[[journey.http.step]]\nname = \"health\"\nurl = %q\nexpect_status = [200]\n"+
		"[[journey.http.step]]\nname = \"repository\"\nurl = %q\nexpect_status = [200]\njson_equals = { full_name = %q }\n\n",
		es.HealthURL, es.APIURL+"/api/2.0/repositories/"+ws+"/"+slug, ws+"/"+slug)
	if es.HgURL != "" {
		head("hg", "hg", "hg")
		fmt.Fprintf(&b, "[journey.hg]\nurl = %q\npush = true\nverify_timeout = %q\n\n", es.HgURL, (o.Timeout / 2).String())
	}
	verify := o.Timeout / 2
	sweep := ""
	if o.NoSweep {
		sweep = "sweep_max = 0\n"
	}
	head("git-http", "git", "git-http", "git-storage")
	fmt.Fprintf(&b, "[journey.git]\nurl = %q\nusername = %q\npassword = \"env:%s\"\npush = true\n"+
		"branch_prefix = \"vantage-probe/\"\nverify_timeout = %q\nverify_interval = \"100ms\"\n%s",
		es.GitHTTPURL, LabGitUser, EnvGitPassword, verify.String(), sweep)
	fmt.Fprintf(&b, "[journey.git.api]\ntype = \"bitbucket-cloud\"\nbase_url = %q\ntoken = \"env:%s\"\nworkspace = %q\nrepo = %q\n\n",
		es.APIURL, EnvAPIToken, ws, slug)
	head("git-ssh", "git", "git-ssh", "git-storage")
	fmt.Fprintf(&b, "[journey.git]\nurl = %q\nssh_key_file = %q\nknown_hosts = %q\n%s\n",
		es.GitSSHURL, l.ClientKeyFile, l.KnownHostsFile, sweep)
	head("pipelines", "pipelines", "pipelines")
	fmt.Fprintf(&b, "[journey.pipelines]\nprovider = \"bitbucket\"\napi_url = %q\nweb_url = %q\nrepository = %q\n"+
		"branch = \"main\"\npipeline = \"probe-pipeline\"\nbearer_token = \"env:%s\"\npoll_interval = \"200ms\"\nmax_poll_interval = \"1s\"\nrequest_timeout = \"5s\"\n\n",
		es.APIURL, es.APIURL, ws+"/"+slug, EnvPipelinesToken)
	return b.String()
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
