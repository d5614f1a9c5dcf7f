package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Options configures Start. Zero values are usable except Dir.
type Options struct {
	// Dir holds the repositories, keys, known_hosts and state (created if
	// missing). Required. The git repositories under Dir/git are recreated
	// from the seed at every start; the hg repository under Dir/hg is kept.
	Dir string
	// Regions are the regions that get edges. Default eu, us, ap.
	Regions []string
	// AgentsPerRegion is how many edges (one per agent) each region gets.
	// Default 2.
	AgentsPerRegion int
	// Host is the IP address the edges listen on. Default 127.0.0.1; a
	// chaos test sets the host side of the veth its namespaced probers
	// reach. The product behind the edges stays on loopback.
	Host string
	// ControlAddr is where the control API listens. Default 127.0.0.1:0.
	ControlAddr string
	// PipelinesQueue and PipelinesRun are how long a simulated pipeline
	// stays PENDING and then runs. Defaults 500ms and 1s.
	PipelinesQueue, PipelinesRun time.Duration
	// NoHg runs the lab without Mercurial. Without it, a missing hg binary
	// is an error.
	NoHg bool
	// Log receives the lab's own messages (slog.Default if nil).
	Log *slog.Logger
}

// Repository names the lab creates.
const (
	// LabRepo is the git repository ("ws/app.git"), seeded with main.
	LabRepo = "ws/app.git"
	// LabGitUser is the HTTP user git over HTTP accepts.
	LabGitUser = "probe"
)

// Env names under which the lab's throwaway secrets are handed to probers.
const (
	EnvGitPassword    = "VANTAGE_LAB_GIT_PASSWORD"
	EnvAPIToken       = "VANTAGE_LAB_API_TOKEN"
	EnvPipelinesToken = "VANTAGE_LAB_PIPELINES_TOKEN"
)

// Lab is the whole local product on loopback: one git product (smart HTTP
// through git http-backend, SSH with the real upload/receive-pack, the
// Bitbucket-shaped branch API), the Bitbucket Pipelines simulator, one edge
// per agent (labelled with its region) and the control API. Faults of kind
// replica_lag and queue_stall are applied to the whole product (see
// applyProductFaults); every other kind is applied by the edges.
type Lab struct {
	// Dir is the lab's data directory.
	Dir string
	// Git is the git product; Pipelines the Bitbucket Pipelines simulator.
	Git       *GitProduct
	Pipelines *PipelinesSim
	// Hg is the running `hg serve` (nil with Options.NoHg); API the small
	// HTTP product (/healthz, /api/2.0/repositories/…).
	Hg  *HgServe
	API *HTTPAPI
	// Faults is the fault table shared by the edges and the control API.
	Faults *FaultTable
	// Edges are the entry points, ordered by region then agent number.
	Edges []*Edge
	// ControlURL is the control API's base URL (http://host:port).
	ControlURL string
	// ClientKeyFile is the SSH private key the product accepts;
	// KnownHostsFile lists every edge's SSH address with the host key.
	ClientKeyFile, KnownHostsFile string
	// Secrets are the lab's throwaway credentials by env name
	// (EnvGitPassword, EnvAPIToken, EnvPipelinesToken). They are random per
	// start and protect nothing but this lab.
	Secrets map[string]string

	log     *slog.Logger
	control *http.Server
	ctlDone chan struct{}
	once    sync.Once
}

// Start creates the repositories under o.Dir and starts every server,
// edge and the control API on loopback. Close stops them.
func Start(ctx context.Context, o Options) (_ *Lab, err error) {
	if o.Dir == "" {
		return nil, errors.New("lab: Dir is required")
	}
	if len(o.Regions) == 0 {
		o.Regions = []string{"eu", "us", "ap"}
	}
	if o.AgentsPerRegion <= 0 {
		o.AgentsPerRegion = 2
	}
	if o.AgentsPerRegion > 50 || len(o.Regions) > 20 {
		return nil, errors.New("lab: at most 20 regions of 50 agents")
	}
	seen := map[string]bool{}
	for _, r := range o.Regions {
		if !regionName(r) || seen[r] {
			return nil, fmt.Errorf("lab: region %q must be unique and hold only a-z, 0-9 and '-'", r)
		}
		seen[r] = true
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if net.ParseIP(o.Host) == nil {
		return nil, fmt.Errorf("lab: host %q is not an IP address", o.Host)
	}
	if o.ControlAddr == "" {
		o.ControlAddr = "127.0.0.1:0"
	}
	if o.PipelinesQueue == 0 {
		o.PipelinesQueue = 500 * time.Millisecond
	}
	if o.PipelinesRun == 0 {
		o.PipelinesRun = time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	l := &Lab{Dir: o.Dir, Faults: NewFaultTable(), log: o.Log, Secrets: map[string]string{
		EnvGitPassword: token(), EnvAPIToken: token(), EnvPipelinesToken: token(),
	}}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The git repositories are throwaway: a restart starts from the seed.
	gitDir := filepath.Join(o.Dir, "git")
	if err := os.RemoveAll(gitDir); err != nil {
		return nil, err
	}
	l.Git, err = StartGitProduct(gitDir, GitProductOptions{Repos: []string{LabRepo},
		User: LabGitUser, Password: l.Secrets[EnvGitPassword], APIToken: l.Secrets[EnvAPIToken]})
	if err != nil {
		return nil, fmt.Errorf("lab: git product: %w", err)
	}
	ws, slug := repoSlug(LabRepo)
	l.Pipelines = NewPipelinesSim(CISimConfig{Repository: ws + "/" + slug, Token: l.Secrets[EnvPipelinesToken],
		QueueTime: o.PipelinesQueue, RunTime: o.PipelinesRun, Outcome: CISuccessful})
	l.Git.Repos.OnPush(func(repo, ref, _, newSHA string) {
		branch, ok := strings.CutPrefix(ref, "refs/heads/")
		if ok && repo == LabRepo && newSHA != ZeroSHA {
			l.Pipelines.NotifyPush(branch, newSHA)
		}
	})
	l.Faults.OnChange(l.applyProductFaults)
	l.API = NewHTTPAPI()
	if !o.NoHg {
		l.Hg, err = startLabHg(ctx, filepath.Join(o.Dir, "hg"))
		if err != nil {
			return nil, fmt.Errorf("lab: hg: %w", err)
		}
	}

	l.ClientKeyFile = filepath.Join(o.Dir, "id_ed25519")
	if err := os.WriteFile(l.ClientKeyFile, l.Git.ClientKeyPEM, 0o600); err != nil {
		return nil, err
	}
	product := l.product()
	var known strings.Builder
	for _, region := range o.Regions {
		for i := 1; i <= o.AgentsPerRegion; i++ {
			e, err := StartEdgeOn(o.Host, fmt.Sprintf("%s-%d", region, i), region, product, l.Faults)
			if err != nil {
				return nil, fmt.Errorf("lab: edge: %w", err)
			}
			l.Edges = append(l.Edges, e)
			fmt.Fprintf(&known, "[%s]:%s %s", o.Host, portOf(e.SSHAddr), l.Git.HostKeyLine)
		}
	}
	l.KnownHostsFile = filepath.Join(o.Dir, "known_hosts")
	if err := os.WriteFile(l.KnownHostsFile, []byte(known.String()), 0o600); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.ControlAddr)
	if err != nil {
		return nil, fmt.Errorf("lab: control API: %w", err)
	}
	l.ControlURL = "http://" + ln.Addr().String()
	l.control = &http.Server{Handler: ControlHandler(l.Faults, func() []*Edge { return l.Edges }),
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	l.ctlDone = make(chan struct{})
	go func() {
		defer close(l.ctlDone)
		_ = l.control.Serve(ln)
	}()
	l.log.Info("lab started", "dir", o.Dir, "control", l.ControlURL, "edges", len(l.Edges))
	return l, nil
}

// product builds the routes every edge puts in front of:
//
//	/healthz, /api/…                          the HTTP API product (api)
//	/hg/…                                     hg serve (hg)
//	/git/{ws}/{repo}.git/…                   git smart HTTP (git-http)
//	/2.0/repositories/{ws}/{repo}/refs/…      branch API (api)
//	/2.0/repositories/{ws}/{repo}/pipelines/… Pipelines simulator (pipelines)
func (l *Lab) product() *Product {
	gh := &GitHTTP{Repos: l.Git.Repos, User: LabGitUser, Password: l.Secrets[EnvGitPassword], Faults: l.Git.Faults}
	branches := &BranchAPI{Repos: l.Git.Repos, Token: l.Secrets[EnvAPIToken]}
	ws, slug := repoSlug(LabRepo)
	base := branchesPrefix + ws + "/" + slug + "/"
	p := &Product{SSHAddr: l.Git.SSH.Addr(), Routes: []Route{
		{Prefix: "/healthz", Protocol: ProtoAPI, Handler: l.API},
		{Prefix: "/api/", Protocol: ProtoAPI, Handler: l.API},
		{Prefix: "/git/", Protocol: ProtoGitHTTP, Handler: http.StripPrefix("/git", gh)},
		{Prefix: branchesPrefix, Protocol: ProtoAPI, Handler: branches},
		{Prefix: base + "refs/", Protocol: ProtoAPI, Handler: branches},
		{Prefix: base + "pipelines/", Protocol: ProtoPipelines, Handler: l.Pipelines},
	}}
	if l.Hg != nil {
		p.Routes = append(p.Routes, Route{Prefix: "/hg/", Protocol: ProtoHg, Handler: http.StripPrefix("/hg", l.Hg.Handler())})
	}
	return p
}

// startLabHg creates a Mercurial repository under dir with one seed changeset
// and serves it with `hg serve`.
func startLabHg(ctx context.Context, dir string) (*HgServe, error) {
	repo := filepath.Join(dir, "repo")
	if _, err := os.Stat(filepath.Join(repo, ".hg")); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(repo, 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(repo, "README"), []byte("Seeded by the Vantage lab.\n"), 0o644); err != nil {
			return nil, err
		}
		for _, args := range [][]string{{"init", repo}, {"-R", repo, "commit", "-A", "-u", "lab <lab@example.invalid>", "-m", "seed"}} {
			cmd := exec.CommandContext(ctx, "hg", args...)
			cmd.Env = append(os.Environ(), "HGPLAIN=1", "HGRCPATH=")
			if out, err := cmd.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("hg %s: %w: %s", args[0], err, out)
			}
		}
	}
	return StartHgServe(ctx, HgServeOptions{Repo: repo})
}

// applyProductFaults hands replica_lag and queue_stall faults to the
// components that own them. The git product has one replica for every
// region, so replica lag is global: the largest delay among the active
// replica_lag faults applies, whatever their scope. Likewise any active
// queue_stall fault stalls the one Pipelines queue.
func (l *Lab) applyProductFaults(active []Fault) {
	var lag time.Duration
	stall := false
	for _, f := range active {
		switch f.Kind {
		case FaultReplicaLag:
			lag = max(lag, f.Delay)
		case FaultQueueStall:
			stall = true
		}
	}
	l.Git.Faults.Set(GitFault{ReplicaLag: lag})
	l.Pipelines.SetQueueStall(stall)
}

// Edge returns the edge named name, or nil.
func (l *Lab) Edge(name string) *Edge {
	for _, e := range l.Edges {
		if e.Name == name {
			return e
		}
	}
	return nil
}

// Close stops the control API, the edges and the product. It is safe to
// call more than once.
func (l *Lab) Close() error {
	l.once.Do(func() {
		if l.control != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = l.control.Shutdown(ctx)
			cancel()
			_ = l.control.Close()
			<-l.ctlDone
		}
		for _, e := range l.Edges {
			_ = e.Close()
		}
		if l.Hg != nil {
			_ = l.Hg.Close()
		}
		if l.Pipelines != nil {
			l.Pipelines.Close()
		}
		if l.Git != nil {
			l.Git.Close()
		}
	})
	return nil
}

// repoSlug splits "ws/app.git" into "ws" and "app".
func repoSlug(repo string) (ws, slug string) {
	ws, slug, _ = strings.Cut(strings.TrimSuffix(repo, ".git"), "/")
	return ws, slug
}

func regionName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// token returns a random throwaway secret.
func token() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "lab-" + hex.EncodeToString(b)
}
