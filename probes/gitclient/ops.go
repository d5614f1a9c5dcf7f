package gitclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
)

// MaxRefs bounds how many refs an advertisement may list before it is
// refused as a protocol error.
const MaxRefs = 200_000

// ListRefs returns the server's branch and tag refs (name → commit hash)
// through a new connection: the ref advertisement of upload-pack.
func (c *Client) ListRefs(ctx context.Context) (map[string]string, error) {
	if c.base != nil {
		// Read-after-write must not ride on a kept-alive connection to one backend.
		c.base.CloseIdleConnections()
	}
	ctx = c.ctx(ctx)
	s, err := c.open(ctx, transport.UploadPackServiceName)
	if err != nil {
		return nil, err
	}
	defer s.close()
	adv, err := c.advertise(ctx, s)
	if err != nil {
		return nil, err
	}
	refs, err := adv.AllReferences()
	if err != nil {
		return nil, probes.Wrap(report.ErrProtocol, err)
	}
	if len(refs) > MaxRefs {
		return nil, probes.Errorf(report.ErrProtocol, "advertisement lists %d refs (more than %d)", len(refs), MaxRefs)
	}
	out := make(map[string]string, len(refs))
	for name, ref := range refs {
		if ref.Type() == plumbing.HashReference {
			out[name.String()] = ref.Hash().String()
		}
	}
	return out, nil
}

func (c *Client) ctx(ctx context.Context) context.Context {
	if phasesFrom(ctx) == nil {
		// classify reads the HTTP status from here, so there always is one.
		ctx = WithPhases(ctx, &Phases{})
	}
	if c.base != nil {
		return withBase(ctx, c.base)
	}
	return ctx
}

func (c *Client) advertise(ctx context.Context, s *session) (*packp.AdvRefs, error) {
	t := time.Now()
	adv, err := s.AdvertisedReferencesContext(ctx)
	if c.isSSH {
		phasesFrom(ctx).add(PhaseAdvertisement, time.Since(t))
	}
	if err != nil {
		return nil, c.classify(ctx, err, s.relay)
	}
	return adv, nil
}

// Clone is the result of a shallow clone: its storage and what it received.
type Clone struct {
	// Branch is the cloned branch's short name; Head its commit.
	Branch string
	Head   plumbing.Hash
	// Bytes is the size of the pack received; Objects the objects stored.
	Bytes   int64
	Objects int
	st      storage.Storer
	dir     string
}

// Close removes an on-disk clone; a memory clone is left to the collector.
func (cl *Clone) Close() error {
	if cl.dir != "" {
		return os.RemoveAll(cl.dir)
	}
	return nil
}

// CloneOptions selects what and where to clone.
type CloneOptions struct {
	// Branch to clone; empty means the server's HEAD.
	Branch string
	// Dir, when set, stores the clone on disk in a new directory under Dir
	// (removed by Clone.Close); otherwise it is kept in memory.
	Dir string
}

// Clone makes a depth-1, single-branch, tag-free clone without a worktree.
func (c *Client) Clone(ctx context.Context, o CloneOptions) (*Clone, error) {
	ctx = c.ctx(ctx)
	s, err := c.open(ctx, transport.UploadPackServiceName)
	if err != nil {
		return nil, err
	}
	defer s.close()
	adv, err := c.advertise(ctx, s)
	if err != nil {
		return nil, err
	}
	refs, err := adv.AllReferences()
	if err != nil {
		return nil, probes.Wrap(report.ErrProtocol, err)
	}
	branch := o.Branch
	if branch == "" {
		head, ok := refs[plumbing.HEAD]
		if !ok || head.Type() != plumbing.SymbolicReference {
			if b := defaultBranch(refs, adv); b != "" {
				branch = b
			}
		} else {
			branch = head.Target().Short()
		}
		if branch == "" {
			branch = "main"
		}
	}
	ref, ok := refs[plumbing.NewBranchReferenceName(branch)]
	if !ok {
		return nil, probes.Errorf(report.ErrProtocol, "branch %q is not advertised", branch)
	}
	cl := &Clone{Branch: branch, Head: ref.Hash()}
	if o.Dir != "" {
		cl.dir, err = os.MkdirTemp(o.Dir, "clone-")
		if err != nil {
			return nil, probes.Internal(err)
		}
		cl.st = filesystem.NewStorage(osfs.New(cl.dir), cache.NewObjectLRUDefault())
	} else {
		cl.st = memory.NewStorage()
	}
	fail := func(err error) (*Clone, error) {
		_ = cl.Close()
		return nil, err
	}
	req := packp.NewUploadPackRequestFromCapabilities(adv.Capabilities)
	req.Wants = []plumbing.Hash{cl.Head}
	req.Depth = packp.DepthCommits(1)
	if err := req.Capabilities.Set(capability.Shallow); err != nil {
		return fail(probes.Wrap(report.ErrProtocol, err))
	}
	if adv.Capabilities.Supports(capability.NoProgress) {
		_ = req.Capabilities.Set(capability.NoProgress)
	}
	t := time.Now()
	resp, err := s.up.UploadPack(ctx, req)
	if err != nil {
		return fail(c.classify(ctx, err, s.relay))
	}
	var pack io.Reader = resp
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		pack = sideband.NewDemuxer(sideband.Sideband64k, resp)
	case req.Capabilities.Supports(capability.Sideband):
		pack = sideband.NewDemuxer(sideband.Sideband, resp)
	}
	cr := &countingReader{r: pack}
	err = packfile.UpdateObjectStorage(cl.st, cr)
	_ = resp.Close()
	if c.isSSH {
		phasesFrom(ctx).add(PhasePackTransfer, time.Since(t))
	}
	if err != nil {
		return fail(c.classify(ctx, err, s.relay))
	}
	if err := cl.st.SetShallow(resp.Shallows); err != nil {
		return fail(probes.Internal(err))
	}
	if err := cl.st.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName(branch), cl.Head)); err != nil {
		return fail(probes.Internal(err))
	}
	cl.Bytes = cr.n
	iter, err := cl.st.IterEncodedObjects(plumbing.AnyObject)
	if err != nil {
		return fail(probes.Internal(err))
	}
	_ = iter.ForEach(func(plumbing.EncodedObject) error { cl.Objects++; return nil })
	if _, err := object.GetCommit(cl.st, cl.Head); err != nil {
		return fail(probes.Errorf(report.ErrProtocol, "the pack lacks the advertised head %s: %w", cl.Head, err))
	}
	if ms, ok := cl.st.(*memory.Storage); ok {
		// File contents were received, hashed and counted; a probe commit
		// needs only the head's commit and tree, so the blobs are dropped
		// rather than held in agent memory for the rest of the run.
		for h := range ms.Blobs {
			delete(ms.Objects, h)
			delete(ms.Blobs, h)
		}
	}
	return cl, nil
}

// defaultBranch finds the branch at the advertised HEAD when the server did
// not name it (no symref capability).
func defaultBranch(refs memory.ReferenceStorage, adv *packp.AdvRefs) string {
	if adv.Head == nil {
		return ""
	}
	for name, r := range refs {
		if name.IsBranch() && r.Hash() == *adv.Head {
			return name.Short()
		}
	}
	return ""
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Commit adds a commit on top of the clone's head, with the head's tree and
// message as its message, and returns its hash. No worktree is involved.
func (c *Client) Commit(cl *Clone, message string) (plumbing.Hash, error) {
	head, err := object.GetCommit(cl.st, cl.Head)
	if err != nil {
		return plumbing.ZeroHash, probes.Internal(err)
	}
	sig := object.Signature{Name: c.author[0], Email: c.author[1], When: time.Now()}
	commit := &object.Commit{Author: sig, Committer: sig, Message: message,
		TreeHash: head.TreeHash, ParentHashes: []plumbing.Hash{cl.Head}}
	obj := cl.st.NewEncodedObject()
	if err := commit.Encode(obj); err != nil {
		return plumbing.ZeroHash, probes.Internal(err)
	}
	h, err := cl.st.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, probes.Internal(err)
	}
	return h, nil
}

// Push sends commit (made by Commit on cl) to refs/heads/<branch>, creating
// or moving the branch. A refusal by the server is push_rejected.
func (c *Client) Push(ctx context.Context, cl *Clone, commit plumbing.Hash, branch string) error {
	var pack bytes.Buffer
	// Only the new commit travels: its tree and parent are already on the server.
	if _, err := packfile.NewEncoder(&pack, cl.st, false).Encode([]plumbing.Hash{commit}, 0); err != nil {
		return probes.Internal(err)
	}
	return c.updateRef(ctx, branch, commit, &pack)
}

// DeleteBranch deletes refs/heads/<branch>; a branch that is already gone is
// not an error.
func (c *Client) DeleteBranch(ctx context.Context, branch string) error {
	return c.updateRef(ctx, branch, plumbing.ZeroHash, nil)
}

func (c *Client) updateRef(ctx context.Context, branch string, to plumbing.Hash, pack *bytes.Buffer) error {
	name := plumbing.NewBranchReferenceName(branch)
	if err := name.Validate(); err != nil || branch == "" {
		return probes.Internal(fmt.Errorf("invalid branch name %q", branch))
	}
	ctx = c.ctx(ctx)
	s, err := c.open(ctx, transport.ReceivePackServiceName)
	if err != nil {
		return err
	}
	defer s.close()
	adv, err := c.advertise(ctx, s)
	if err != nil {
		return err
	}
	refs, err := adv.AllReferences()
	if err != nil {
		return probes.Wrap(report.ErrProtocol, err)
	}
	old := plumbing.ZeroHash
	if r, ok := refs[name]; ok {
		old = r.Hash()
	}
	if to.IsZero() && old.IsZero() {
		return nil
	}
	req := packp.NewReferenceUpdateRequestFromCapabilities(adv.Capabilities)
	req.Commands = []*packp.Command{{Name: name, Old: old, New: to}}
	if to.IsZero() {
		if !adv.Capabilities.Supports(capability.DeleteRefs) {
			return probes.Errorf(report.ErrProtocol, "server does not allow deleting refs (no delete-refs capability)")
		}
		_ = req.Capabilities.Set(capability.DeleteRefs)
	} else {
		req.Packfile = io.NopCloser(pack)
	}
	t := time.Now()
	rs, err := s.rp.ReceivePack(ctx, req)
	if c.isSSH {
		phasesFrom(ctx).add(PhasePackTransfer, time.Since(t))
	}
	if rs != nil {
		// The server answered and refused (hook declined, non-fast-forward,
		// unpack failure); go-git also returns this as err.
		if rerr := rs.Error(); rerr != nil {
			return probes.Errorf(report.ErrPushRejected, "push to %s rejected: %w", name, rerr)
		}
	}
	return c.classify(ctx, err, s.relay)
}

// classify gives err its class: deadlines (including an SSH connection that
// hit its deadline), HTTP 401/403 as auth, 5xx as http_5xx, other 4xx as
// http_4xx, a failed host key as tls; the rest is left to probes.Classify.
func (c *Client) classify(ctx context.Context, err error, relay *sshRelay) error {
	if err == nil {
		return nil
	}
	var pe *probes.Error
	if errors.As(err, &pe) {
		return err
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || (relay != nil && relay.TimedOut()) {
		return probes.Errorf(report.ErrTimeout, "deadline exceeded: %w", err)
	}
	if relay != nil {
		// Over SSH go-git talks to the loopback relay only: what the server
		// connection did is in the relay, not in go-git's error.
		if uerr := relay.UpstreamErr(); uerr != nil && isConnClass(uerr) {
			return probes.Errorf(report.ErrConnect, "ssh connection to the server lost: %w (%w)", uerr, err)
		}
		if isConnClass(err) && ctx.Err() == nil {
			// A reset or broken pipe go-git sees comes from the relay
			// closing the loopback side after the server ended cleanly.
			return probes.Errorf(report.ErrProtocol, "ssh server closed the connection: %w", err)
		}
	}
	if errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, transport.ErrAuthorizationFailed) {
		return probes.Wrap(report.ErrAuth, err)
	}
	var hk *hostKeyError
	if errors.As(err, &hk) {
		return probes.Wrap(report.ErrTLS, err)
	}
	// go-git wraps HTTP errors in plumbing.UnexpectedError, which does not
	// unwrap; the RoundTripper saw the status, so read it from there.
	code := 0
	var he *githttp.Err
	var ue *plumbing.UnexpectedError
	if errors.As(err, &he) {
		code = he.StatusCode()
	} else if errors.As(err, &ue) && errors.As(ue.Err, &he) {
		code = he.StatusCode()
	} else if ph := phasesFrom(ctx); ph != nil {
		code = ph.Status()
	}
	switch {
	case code >= 500:
		return probes.Errorf(report.ErrHTTP5xx, "HTTP %d: %w", code, err)
	case code == 429:
		return probes.Errorf(report.ErrRateLimited, "HTTP %d: %w", code, err)
	case code >= 400:
		return probes.Errorf(report.ErrHTTP4xx, "HTTP %d: %w", code, err)
	}
	if errors.Is(err, transport.ErrRepositoryNotFound) {
		return probes.Errorf(report.ErrHTTP4xx, "repository not found: %w", err)
	}
	return err
}

// isConnClass reports whether probes.Classify puts err in the connect class
// (a refused, reset or unreachable connection).
func isConnClass(err error) bool {
	_, typ := probes.Classify(err)
	return typ == report.ErrConnect
}
