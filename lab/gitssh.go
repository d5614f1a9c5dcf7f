package lab

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// GitSSH serves the repositories of a GitRepos over SSH, running the real
// git-upload-pack (from the replica) and git-receive-pack (on the primary,
// through GitRepos.Write) for exec requests. Only AuthorizedKey may log in.
type GitSSH struct {
	Repos *GitRepos
	// HostKey is the server's key; clients pin its public half.
	HostKey ssh.Signer
	// AuthorizedKey is the one client key allowed in.
	AuthorizedKey ssh.PublicKey
	// Faults (may be nil): StallAfterBytes stalls upload-pack output.
	Faults *Faults

	ln     net.Listener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

// NewSSHKey returns a new ed25519 key as a signer and as an OpenSSH PEM
// private key, encrypted with passphrase when it is not empty.
func NewSSHKey(passphrase string) (ssh.Signer, []byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, nil, err
	}
	var blk *pem.Block
	if passphrase == "" {
		blk, err = ssh.MarshalPrivateKey(priv, "lab")
	} else {
		blk, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "lab", []byte(passphrase))
	}
	if err != nil {
		return nil, nil, err
	}
	return signer, pem.EncodeToMemory(blk), nil
}

// Start listens on a loopback port and serves until Close.
func (g *GitSSH) Start() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	g.ln = ln
	g.conns = map[net.Conn]struct{}{}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.wg.Add(1)
	go g.acceptLoop()
	return nil
}

// Addr is the listening address (host:port).
func (g *GitSSH) Addr() string { return g.ln.Addr().String() }

// URL returns the ssh:// clone URL of repo.
func (g *GitSSH) URL(repo string) string { return "ssh://git@" + g.Addr() + "/" + repo }

// Close stops the server, ends every connection and waits for them.
func (g *GitSSH) Close() error {
	g.cancel()
	err := g.ln.Close()
	g.mu.Lock()
	for c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
	g.wg.Wait()
	return err
}

func (g *GitSSH) acceptLoop() {
	defer g.wg.Done()
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if g.AuthorizedKey != nil && string(key.Marshal()) == string(g.AuthorizedKey.Marshal()) {
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("key not authorized")
		},
	}
	cfg.AddHostKey(g.HostKey)
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		g.conns[c] = struct{}{}
		g.mu.Unlock()
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			defer func() {
				c.Close()
				g.mu.Lock()
				delete(g.conns, c)
				g.mu.Unlock()
			}()
			g.serveConn(c, cfg)
		}()
	}
}

func (g *GitSSH) serveConn(c net.Conn, cfg *ssh.ServerConfig) {
	// A client that never completes the handshake is dropped.
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	ctx, cancel := context.WithCancel(g.ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		ssh.DiscardRequests(reqs)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = sc.Wait()
		cancel()
	}()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer ch.Close()
			g.serveSession(ctx, ch, creqs)
		}()
	}
}

func (g *GitSSH) serveSession(ctx context.Context, ch ssh.Channel, reqs <-chan *ssh.Request) {
	for req := range reqs {
		switch req.Type {
		case "env":
			_ = req.Reply(true, nil)
		case "exec":
			var p struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &p); err != nil {
				_ = req.Reply(false, nil)
				return
			}
			service, repo, err := parseGitCommand(p.Command)
			if err != nil {
				_ = req.Reply(false, nil)
				fmt.Fprintln(ch.Stderr(), err)
				return
			}
			_ = req.Reply(true, nil)
			code := g.runGit(ctx, ch, service, repo)
			status := make([]byte, 4)
			binary.BigEndian.PutUint32(status, uint32(code))
			_, _ = ch.SendRequest("exit-status", false, status)
			return
		default:
			_ = req.Reply(false, nil)
		}
	}
}

// parseGitCommand reads "git-upload-pack '/ws/repo.git'".
func parseGitCommand(cmd string) (service, repo string, err error) {
	service, arg, ok := strings.Cut(cmd, " ")
	if !ok || (service != "git-upload-pack" && service != "git-receive-pack") {
		return "", "", fmt.Errorf("unsupported command %q", cmd)
	}
	repo = strings.TrimPrefix(strings.Trim(arg, "'\""), "/")
	if !repoName.MatchString(repo) || strings.Contains(repo, "..") {
		return "", "", fmt.Errorf("invalid repository %q", arg)
	}
	return service, repo, nil
}

func (g *GitSSH) runGit(ctx context.Context, ch ssh.Channel, service, repo string) int {
	run := func(dir string, stdout io.Writer) error {
		cmd := exec.CommandContext(ctx, "git", strings.TrimPrefix(service, "git-"), dir)
		cmd.Stdin = ch
		cmd.Stdout = stdout
		cmd.Stderr = ch.Stderr()
		cmd.WaitDelay = time.Second
		return cmd.Run()
	}
	var err error
	if service == "git-receive-pack" {
		err = g.Repos.Write(ctx, repo, func(dir string) error { return run(dir, ch) })
	} else {
		_, rp, rerr := g.Repos.resolve(repo)
		if rerr != nil {
			return 1
		}
		var out io.Writer = ch
		if n := g.Faults.Get().StallAfterBytes; n > 0 {
			out = &stallAfter{w: ch, left: n, done: ctx.Done()}
		}
		err = run(rp, out)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return 1
	}
	return 0
}

// stallAfter passes the ref advertisement (up to its flush-pkt), then the
// first left bytes of what follows (the pack), then blocks until done.
type stallAfter struct {
	w      io.Writer
	left   int
	done   <-chan struct{}
	advert bool // the advertisement has been passed
	hdr    []byte
	skip   int
}

func (s *stallAfter) Write(p []byte) (int, error) {
	if !s.advert {
		n := s.advertPrefix(p)
		if _, err := s.w.Write(p[:n]); err != nil {
			return 0, err
		}
		if n == len(p) {
			return n, nil
		}
		m, err := s.Write(p[n:])
		return n + m, err
	}
	if s.left <= 0 {
		<-s.done
		return 0, io.ErrClosedPipe
	}
	if len(p) > s.left {
		p = p[:s.left]
	}
	n, err := s.w.Write(p)
	s.left -= n
	if err == nil && s.left <= 0 {
		<-s.done
		return n, io.ErrClosedPipe
	}
	return n, err
}

// advertPrefix returns how much of p still belongs to the advertisement,
// following pkt-line lengths until the flush-pkt "0000".
func (s *stallAfter) advertPrefix(p []byte) int {
	i := 0
	for i < len(p) && !s.advert {
		if s.skip > 0 {
			k := min(s.skip, len(p)-i)
			s.skip -= k
			i += k
			continue
		}
		s.hdr = append(s.hdr, p[i])
		i++
		if len(s.hdr) < 4 {
			continue
		}
		var n int
		_, err := fmt.Sscanf(string(s.hdr), "%04x", &n)
		s.hdr = s.hdr[:0]
		switch {
		case err != nil || n == 0:
			s.advert = true
		case n > 4:
			s.skip = n - 4
		}
	}
	return i
}
