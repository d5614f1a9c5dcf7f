package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// GitRepos is a set of bare repositories under one directory, each with a
// read replica. Writes (receive-pack, branch deletes) go to the primary;
// reads (ref advertisement, upload-pack, the branch API) are served from the
// replica, which sees a ref update only after the Faults' replica lag. The
// replica shares the primary's objects (objects/info/alternates), so only
// refs lag, as on a real product's replicated storage.
type GitRepos struct {
	primary string
	replica string
	faults  *Faults

	mu     sync.Mutex // serialises writes so that ref diffs are exact
	onPush func(repo, ref, oldSHA, newSHA string)
	timers map[*time.Timer]struct{}
	closed bool
	wg     sync.WaitGroup
}

// ZeroSHA is the object name git uses for "no ref" in push notifications.
const ZeroSHA = "0000000000000000000000000000000000000000"

// NewGitRepos keeps repositories under dir (created if missing). faults may
// be nil (no replica lag).
func NewGitRepos(dir string, faults *Faults) (*GitRepos, error) {
	r := &GitRepos{primary: filepath.Join(dir, "primary"), replica: filepath.Join(dir, "replica"),
		faults: faults, timers: map[*time.Timer]struct{}{}}
	for _, d := range []string{r.primary, r.replica} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// PrimaryRoot is the directory holding the primary bare repositories.
func (r *GitRepos) PrimaryRoot() string { return r.primary }

// ReplicaRoot is the directory holding the replicas.
func (r *GitRepos) ReplicaRoot() string { return r.replica }

// OnPush sets fn to be called after every ref a write changes (oldSHA or
// newSHA is ZeroSHA for a created or deleted ref). fn runs synchronously
// after the write, with the write lock held: it must not block for long
// or write to these repositories itself.
func (r *GitRepos) OnPush(fn func(repo, ref, oldSHA, newSHA string)) {
	r.mu.Lock()
	r.onPush = fn
	r.mu.Unlock()
}

var repoName = regexp.MustCompile(`^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)?\.git$`)

// resolve validates a repository name ("ws/repo.git") and returns its
// primary and replica paths.
func (r *GitRepos) resolve(name string) (string, string, error) {
	if !repoName.MatchString(name) || strings.Contains(name, "..") {
		return "", "", fmt.Errorf("invalid repository name %q", name)
	}
	return filepath.Join(r.primary, name), filepath.Join(r.replica, name), nil
}

// Create makes a bare repository name ("ws/repo.git") with branch main and
// one seed commit, and its replica.
func (r *GitRepos) Create(ctx context.Context, name string) error {
	p, rp, err := r.resolve(name)
	if err != nil {
		return err
	}
	if err := git(ctx, "", "init", "-q", "--bare", "-b", "main", p); err != nil {
		return err
	}
	if err := git(ctx, p, "config", "http.receivepack", "true"); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "lab-seed-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := os.WriteFile(filepath.Join(work, "README.md"), []byte("# "+name+"\nSeeded by the Vantage lab.\n"), 0o644); err != nil {
		return err
	}
	steps := [][]string{
		{"init", "-q", "-b", "main"},
		{"add", "README.md"},
		{"-c", "user.name=lab", "-c", "user.email=lab@example.invalid", "commit", "-q", "-m", "seed"},
		{"push", "-q", p, "main:main"},
	}
	for _, s := range steps {
		if err := git(ctx, work, s...); err != nil {
			return err
		}
	}
	if err := git(ctx, "", "init", "-q", "--bare", "-b", "main", rp); err != nil {
		return err
	}
	abs, err := filepath.Abs(filepath.Join(p, "objects"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(rp, "objects", "info", "alternates"), []byte(abs+"\n"), 0o644); err != nil {
		return err
	}
	refs, err := listRefs(ctx, p)
	if err != nil {
		return err
	}
	return applyRefs(ctx, rp, nil, refs)
}

// Refs returns the primary's refs (name → sha).
func (r *GitRepos) Refs(ctx context.Context, name string) (map[string]string, error) {
	p, _, err := r.resolve(name)
	if err != nil {
		return nil, err
	}
	return listRefs(ctx, p)
}

// ReplicaRefs returns what readers currently see.
func (r *GitRepos) ReplicaRefs(ctx context.Context, name string) (map[string]string, error) {
	_, rp, err := r.resolve(name)
	if err != nil {
		return nil, err
	}
	return listRefs(ctx, rp)
}

// Write runs write (which changes the primary of repo name), then notifies
// OnPush of every changed ref and schedules the replica update after the
// replica lag. Writes are serialised.
func (r *GitRepos) Write(ctx context.Context, name string, write func(primaryDir string) error) error {
	p, rp, err := r.resolve(name)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	before, err := listRefs(ctx, p)
	if err != nil {
		return err
	}
	werr := write(p)
	after, err := listRefs(context.WithoutCancel(ctx), p)
	if err != nil {
		return errors.Join(werr, err)
	}
	for ref, sha := range after {
		if before[ref] != sha && r.onPush != nil {
			old := before[ref]
			if old == "" {
				old = ZeroSHA
			}
			r.onPush(name, ref, old, sha)
		}
	}
	for ref, sha := range before {
		if _, ok := after[ref]; !ok && r.onPush != nil {
			r.onPush(name, ref, sha, ZeroSHA)
		}
	}
	r.replicate(rp, before, after)
	return werr
}

// replicate applies the ref changes between before and after to the replica
// after the configured lag. Called with r.mu held.
func (r *GitRepos) replicate(rp string, before, after map[string]string) {
	apply := func() {
		_ = applyRefs(context.Background(), rp, before, after)
	}
	lag := r.faults.replicaLag()
	if lag <= 0 || r.closed {
		apply()
		return
	}
	var t *time.Timer
	r.wg.Add(1)
	t = time.AfterFunc(lag, func() {
		defer r.wg.Done()
		r.mu.Lock()
		_, live := r.timers[t]
		delete(r.timers, t)
		r.mu.Unlock()
		if live {
			apply()
		}
	})
	r.timers[t] = struct{}{}
}

// Close stops pending replica updates and waits for running ones.
func (r *GitRepos) Close() error {
	r.mu.Lock()
	r.closed = true
	for t := range r.timers {
		if t.Stop() {
			r.wg.Done()
		}
		delete(r.timers, t)
	}
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}

// applyRefs makes the refs of dir move from before to after.
func applyRefs(ctx context.Context, dir string, before, after map[string]string) error {
	var in bytes.Buffer
	for ref, sha := range after {
		if before[ref] != sha {
			fmt.Fprintf(&in, "update %s %s\n", ref, sha)
		}
	}
	for ref := range before {
		if _, ok := after[ref]; !ok {
			fmt.Fprintf(&in, "delete %s\n", ref)
		}
	}
	if in.Len() == 0 {
		return nil
	}
	cmd := exec.CommandContext(ctx, "git", "update-ref", "--stdin")
	cmd.Dir = dir
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git update-ref in %s: %w: %s", dir, err, bytes.TrimSpace(out))
	}
	return nil
}

func listRefs(ctx context.Context, dir string) (map[string]string, error) {
	cmd := exec.CommandContext(ctx, "git", "for-each-ref", "--format=%(refname) %(objectname)")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git for-each-ref in %s: %w", dir, err)
	}
	refs := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if name, sha, ok := strings.Cut(sc.Text(), " "); ok {
			refs[name] = sha
		}
	}
	return refs, sc.Err()
}

func git(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
