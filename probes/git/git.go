// Package git is the "git" journey kind: over HTTPS or SSH with go-git, it
// reads the ref advertisement, makes a shallow clone and, when configured,
// pushes a probe commit to a branch under branch_prefix, verifies that a
// fresh read sees it (read-after-write; the replica lag users see as stale
// data), and deletes the branch. A sweeper removes probe branches earlier
// runs left behind. It never writes outside branch_prefix. The transport
// plumbing lives in probes/gitclient.
package git

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
	"github.com/vantage-fleet/vantage/probes/gitclient"
)

// Kind is the journey kind this package implements.
const Kind = "git"

// sweepEvery is how often the sweeper runs after its first sweep at start.
const sweepEvery = time.Hour

// maxKeyFileBytes bounds the SSH key and CA files read at start.
const maxKeyFileBytes = 256 << 10

// journey is one configured git journey.
type journey struct {
	cfg     *config.GitJourney
	timeout time.Duration
	client  *gitclient.Client
	api     branchAPI
	log     *slog.Logger
	diskDir string
	now     func() time.Time

	stopSweep context.CancelFunc
	wg        sync.WaitGroup
}

// New builds a git journey from its validated config and starts its sweeper
// (when it pushes). Close stops the sweeper.
func New(j *config.Journey, env probes.Env) (probes.Journey, error) {
	return newJourney(j, env, sweepEvery, time.Now)
}

// newJourney is New with the sweep interval (0: no background sweeper) and
// the clock given.
func newJourney(j *config.Journey, env probes.Env, every time.Duration, now func() time.Time) (*journey, error) {
	g := j.Git
	if g == nil {
		return nil, errors.New("git: journey has no [journey.git] table")
	}
	log := env.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("journey", j.Name, "kind", Kind)
	opts := gitclient.Options{
		URL: g.URL, Username: g.Username, Password: g.Password.Value(), BearerToken: g.BearerToken.Value(),
		HostKey: g.HostKey, KnownHostsFile: g.KnownHosts, InsecureIgnoreHostKey: g.InsecureIgnoreHostKey,
		SSHKeyPassphrase: g.SSHKeyPassphrase.Value(),
		AuthorName:       "vantage " + env.Agent.Name, AuthorEmail: "vantage@localhost",
	}
	if g.CAFile != "" {
		pem, err := readBounded(g.CAFile)
		if err != nil {
			return nil, fmt.Errorf("git: ca_file: %w", err)
		}
		opts.RootCAs = x509.NewCertPool()
		if !opts.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("git: ca_file %s holds no PEM certificate", g.CAFile)
		}
	}
	if g.SSHKeyFile != "" {
		pem, err := readBounded(g.SSHKeyFile)
		if err != nil {
			return nil, fmt.Errorf("git: ssh_key_file: %w", err)
		}
		opts.SSHKeyPEM = pem
	}
	c, err := gitclient.New(opts)
	if err != nil {
		return nil, fmt.Errorf("git: %w", err)
	}
	if g.InsecureIgnoreHostKey {
		log.Warn("insecure_ignore_host_key is set: the SSH server's identity is not verified", "url", g.URL)
	}
	jr := &journey{cfg: g, timeout: j.Timeout.D, client: c, log: log, now: now}
	if g.Storage == "disk" {
		jr.diskDir = filepath.Join(env.DataDir, "git-clones")
		if err := os.MkdirAll(jr.diskDir, 0o700); err != nil {
			return nil, probes.Internal(fmt.Errorf("git: data dir: %w", err))
		}
	}
	if g.API != nil {
		jr.api, err = newBranchAPI(g.API)
		if err != nil {
			return nil, err
		}
	}
	if g.Push && g.SweepMax != nil && *g.SweepMax > 0 && every > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		jr.stopSweep = cancel
		jr.wg.Add(1)
		go jr.sweepLoop(ctx, every)
	}
	return jr, nil
}

func readBounded(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxKeyFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxKeyFileBytes)
	}
	return os.ReadFile(path)
}

// Close stops the sweeper and releases connections.
func (g *journey) Close() error {
	if g.stopSweep != nil {
		g.stopSweep()
	}
	g.wg.Wait()
	g.client.Close()
	return nil
}

var (
	refUnsafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
	dots      = regexp.MustCompile(`\.\.+`)
)

// branchName is the probe branch of a run:
// <branch_prefix><region>-<agent>-<slot unix>. Region and agent are
// reduced to characters safe in a ref name.
func branchName(prefix, region, agent string, slot time.Time) string {
	clean := func(s string) string {
		s = strings.Trim(dots.ReplaceAllString(refUnsafe.ReplaceAllString(s, "_"), "_"), "._-")
		if s == "" {
			s = "x"
		}
		return s
	}
	return fmt.Sprintf("%s%s-%s-%d", prefix, clean(region), clean(agent), slot.Unix())
}

// runAgent is the agent part of a run's probe branch: the agent name, with
// the trigger appended for runs other than the scheduled one, so that a
// confirmation run of the same agent and slot (the only live prober of its
// region confirms its own failure) does not push onto the branch its
// scheduled run left behind when that run ran out of time before cleanup.
func runAgent(run *probes.Run) string {
	if run.Trigger == "" || run.Trigger == report.TriggerSchedule {
		return run.Agent
	}
	return run.Agent + "." + string(run.Trigger)
}

// probeBranchSlot returns the slot time encoded in a probe branch name, and
// false for a branch that is not a probe branch under prefix.
func probeBranchSlot(prefix, branch string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(branch, prefix)
	if !ok || prefix == "" {
		return time.Time{}, false
	}
	i := strings.LastIndexByte(rest, '-')
	if i < 0 {
		return time.Time{}, false
	}
	sec, err := strconv.ParseInt(rest[i+1:], 10, 64)
	if err != nil || sec <= 0 || strings.Count(rest[:i], "-") < 1 {
		return time.Time{}, false
	}
	return time.Unix(sec, 0), true
}

// mustBeProbeBranch is the last guard before any write.
func (g *journey) mustBeProbeBranch(branch string) error {
	if _, ok := probeBranchSlot(g.cfg.BranchPrefix, branch); !ok {
		return probes.Internal(fmt.Errorf("refusing to write branch %q outside branch_prefix %q", branch, g.cfg.BranchPrefix))
	}
	return nil
}

// Run performs advertise, clone and, when configured, push, verify and
// cleanup.
func (g *journey) Run(ctx context.Context, run *probes.Run) error {
	run.Rec.SetAttrs(attribute.String("url.full", g.cfg.URL), attribute.String("server.address", g.client.Host()),
		attribute.String("vcs.repository.url.full", g.cfg.URL))
	// Reserve part of the deadline for cleanup, so that a probe branch is
	// deleted even when a step ran out of time.
	work, cancel := withReserve(ctx)
	defer cancel()

	refs, err := g.advertise(work, run)
	if err != nil {
		return err
	}
	_ = refs
	cl, err := g.clone(work, run)
	if err != nil {
		return err
	}
	defer cl.Close()
	if !g.cfg.Push {
		return nil
	}
	branch := branchName(g.cfg.BranchPrefix, run.Region, runAgent(run), run.Slot)
	if err := g.mustBeProbeBranch(branch); err != nil {
		return err
	}
	sha, pushedAt, runErr := g.push(work, run, cl, branch)
	if runErr == nil && *g.cfg.Verify {
		runErr = g.verify(work, run, branch, sha, pushedAt)
	}
	cerr := g.cleanup(ctx, run, branch)
	return errors.Join(runErr, cerr)
}

// withReserve returns a context whose deadline leaves a fifth of the
// remaining time (at most 5s) for cleanup.
func withReserve(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	reserve := min(time.Until(dl)/5, 5*time.Second)
	return context.WithDeadline(ctx, dl.Add(-reserve))
}

func (g *journey) advertise(ctx context.Context, run *probes.Run) (map[string]string, error) {
	s := run.Rec.Step("advertise")
	ph := &gitclient.Phases{}
	refs, err := g.client.ListRefs(gitclient.WithPhases(ctx, ph))
	s.Set(ph.Attrs()...)
	if err == nil {
		s.Set(attribute.Int("vantage.git.refs", len(refs)))
	}
	return refs, s.End(err)
}

func (g *journey) clone(ctx context.Context, run *probes.Run) (*gitclient.Clone, error) {
	s := run.Rec.Step("clone")
	ph := &gitclient.Phases{}
	cl, err := g.client.Clone(gitclient.WithPhases(ctx, ph), gitclient.CloneOptions{Branch: g.cfg.Branch, Dir: g.diskDir})
	s.Set(ph.Attrs()...)
	s.Set(attribute.String("vantage.git.storage", g.cfg.Storage))
	if err == nil {
		s.Set(attribute.Int64("vantage.git.bytes", cl.Bytes), attribute.Int("vantage.git.objects", cl.Objects),
			attribute.String("vcs.ref.head.name", cl.Branch), attribute.String("vcs.ref.head.revision", cl.Head.String()))
	}
	return cl, s.End(err)
}

func (g *journey) push(ctx context.Context, run *probes.Run, cl *gitclient.Clone, branch string) (string, time.Time, error) {
	s := run.Rec.Step("push")
	s.Set(attribute.String("vantage.git.branch", branch))
	msg := fmt.Sprintf("vantage probe %s\n\njourney %s, region %s, agent %s, slot %s\n", run.ID, run.Journey,
		run.Region, run.Agent, run.Slot.UTC().Format(time.RFC3339))
	h, err := g.client.Commit(cl, msg)
	if err != nil {
		return "", time.Time{}, s.End(err)
	}
	ph := &gitclient.Phases{}
	err = g.client.Push(gitclient.WithPhases(ctx, ph), cl, h, branch)
	s.Set(ph.Attrs()...)
	if err == nil {
		s.Set(attribute.String("vcs.ref.head.revision", h.String()))
	}
	return h.String(), g.now(), s.End(err)
}

func (g *journey) cleanup(ctx context.Context, run *probes.Run, branch string) error {
	s := run.Rec.Step("cleanup")
	s.Set(attribute.String("vantage.git.branch", branch))
	if err := g.mustBeProbeBranch(branch); err != nil {
		return s.End(err)
	}
	ph := &gitclient.Phases{}
	err := g.client.DeleteBranch(gitclient.WithPhases(ctx, ph), branch)
	s.Set(ph.Attrs()...)
	return s.End(err)
}

// verify polls, through fresh connections, the ref advertisement (and the
// branch API when configured) until both show sha on branch.
func (g *journey) verify(ctx context.Context, run *probes.Run, branch, sha string, pushedAt time.Time) error {
	s := run.Rec.Step("verify")
	outer := ctx
	ctx, cancel := context.WithTimeout(ctx, g.cfg.VerifyTimeout.D)
	defer cancel()
	ref := "refs/heads/" + branch
	gitSeen, apiSeen := false, g.api == nil
	polls := 0
	seen := func() error {
		polls++
		if !gitSeen {
			refs, err := g.client.ListRefs(ctx)
			if err != nil {
				return err
			}
			if refs[ref] == sha {
				gitSeen = true
				s.Set(attribute.Float64("vantage.git.visible_after_ms.git", ms(g.now().Sub(pushedAt))))
			}
		}
		if !apiSeen {
			got, err := g.api.branchHead(ctx, branch)
			if err != nil {
				return err
			}
			if got == sha {
				apiSeen = true
				s.Set(attribute.Float64("vantage.git.visible_after_ms.api", ms(g.now().Sub(pushedAt))))
			}
		}
		return nil
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.Set(attribute.Int("vantage.git.verify_polls", polls))
			if err := outer.Err(); err != nil {
				// The journey ran out of time before verify_timeout did.
				return s.End(err)
			}
			return s.End(probes.Errorf(report.ErrStaleRead, "commit %s on %s not visible (git: %t, api: %t) after %s",
				short(sha), branch, gitSeen, apiSeen, g.cfg.VerifyTimeout.D))
		case <-t.C:
		}
		err := seen()
		// A poll cut by verify's own deadline (a connection deadline fires a
		// hair before the context's) is the stale read below, not an error.
		if dl, _ := ctx.Deadline(); err != nil && ctx.Err() == nil && time.Now().Before(dl) {
			s.Set(attribute.Int("vantage.git.verify_polls", polls))
			return s.End(err)
		}
		if gitSeen && apiSeen {
			s.Set(attribute.Int("vantage.git.verify_polls", polls),
				attribute.Float64("vantage.git.visible_after_ms", ms(g.now().Sub(pushedAt))))
			return s.End(nil)
		}
		t.Reset(g.cfg.VerifyInterval.D)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
