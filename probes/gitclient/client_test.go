package gitclient

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"

	"github.com/vantage-fleet/vantage/lab"
	"github.com/vantage-fleet/vantage/lab/labtest"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
)

const repo = "ws/app.git"

// noLeaks checks, after every other cleanup of the test, that no goroutine
// started during the test is left.
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

type fixture struct {
	repos     *lab.GitRepos
	faults    *lab.Faults
	https     *httptest.Server
	ssh       *lab.GitSSH
	keyPEM    []byte
	clientKey ssh.Signer
	hostPK    string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	labtest.NeedBinary(t, "git", "apt-get install -y git")
	f := &fixture{faults: &lab.Faults{}}
	var err error
	f.repos, err = lab.NewGitRepos(t.TempDir(), f.faults)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.repos.Close() })
	if err := f.repos.Create(context.Background(), repo); err != nil {
		t.Fatal(err)
	}
	f.https = lab.StartGitHTTP(&lab.GitHTTP{Repos: f.repos, User: "probe", Password: "tok-canary-91", Token: "bearer-canary-13", Faults: f.faults}, true)
	t.Cleanup(f.https.Close)
	hostKey, _, err := lab.NewSSHKey("")
	if err != nil {
		t.Fatal(err)
	}
	clientKey, pemBytes, err := lab.NewSSHKey("")
	if err != nil {
		t.Fatal(err)
	}
	f.keyPEM = pemBytes
	f.hostPK = string(ssh.MarshalAuthorizedKey(hostKey.PublicKey()))
	f.clientKey = clientKey
	f.ssh = &lab.GitSSH{Repos: f.repos, HostKey: hostKey, AuthorizedKey: clientKey.PublicKey(), Faults: f.faults}
	if err := f.ssh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.ssh.Close() })
	return f
}

func (f *fixture) httpsClient(t *testing.T, password string) *Client {
	pool := x509.NewCertPool()
	pool.AddCert(f.https.Certificate())
	c, err := New(Options{URL: f.https.URL + "/" + repo, Username: "probe", Password: password, RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func (f *fixture) sshClient(t *testing.T, url string) *Client {
	c, err := New(Options{URL: url, SSHKeyPEM: f.keyPEM, HostKey: f.hostPK})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func gitRef(t *testing.T, f *fixture, ref string) string {
	t.Helper()
	out, err := exec.Command("git", "-C", f.repos.PrimaryRoot()+"/"+repo, "for-each-ref", "--format=%(objectname)", ref).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func classOf(err error) report.ErrorType {
	_, typ := probes.Classify(err)
	return typ
}

func TestPushProbeCommitAndDeleteBranch_HTTPSAndSSH(t *testing.T) {
	noLeaks(t)
	f := newFixture(t)
	clients := map[string]*Client{"https": f.httpsClient(t, "tok-canary-91"), "ssh": f.sshClient(t, f.ssh.URL(repo))}
	for name, c := range clients {
		t.Run(name, func(t *testing.T) {
			ph := &Phases{}
			ctx, cancel := context.WithTimeout(WithPhases(context.Background(), ph), 10*time.Second)
			defer cancel()
			branch := "vantage/probe-" + name
			sha, err := PushProbeCommit(ctx, c, ProbeCommit{Branch: branch, Message: "run " + name})
			if err != nil {
				t.Fatalf("push: %v", err)
			}
			if got := gitRef(t, f, "refs/heads/"+branch); got != sha {
				t.Fatalf("server holds %q for the branch, pushed %q", got, sha)
			}
			msg, _ := exec.Command("git", "-C", f.repos.PrimaryRoot()+"/"+repo, "log", "-1", "--format=%s", sha).Output()
			if strings.TrimSpace(string(msg)) != "run "+name {
				t.Fatalf("commit message on server: %q", msg)
			}
			for _, p := range []string{PhaseConnect, PhaseAdvertisement, PhasePackTransfer} {
				if ph.Duration(p) <= 0 {
					t.Errorf("phase %s not recorded: %v", p, ph.Attrs())
				}
			}
			if name == "https" && ph.Duration(PhaseTLS) <= 0 {
				t.Errorf("tls phase not recorded")
			}
			if name == "ssh" && ph.Duration(PhaseHandshake) <= 0 {
				t.Errorf("handshake phase not recorded")
			}
			if err := DeleteBranch(ctx, c, branch); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if got := gitRef(t, f, "refs/heads/"+branch); got != "" {
				t.Fatalf("branch still on server after delete: %s", got)
			}
			if err := DeleteBranch(ctx, c, branch); err != nil {
				t.Fatalf("deleting a missing branch: %v", err)
			}
		})
	}
}

func TestSSH_ServerThatNeverSpeaks_TimesOutAtDeadline(t *testing.T) {
	noLeaks(t)
	f := newFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	defer func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	}()
	c := f.sshClient(t, "ssh://git@"+ln.Addr().String()+"/"+repo)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = c.ListRefs(ctx)
	if classOf(err) != report.ErrTimeout {
		t.Fatalf("silent server: got %v (%s), want timeout", err, classOf(err))
	}
}

func TestSSH_StallMidPack_TimesOutAtDeadline(t *testing.T) {
	noLeaks(t)
	f := newFixture(t)
	f.faults.Set(lab.GitFault{StallAfterBytes: 300})
	c := f.sshClient(t, f.ssh.URL(repo))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := c.Clone(ctx, CloneOptions{})
	if classOf(err) != report.ErrTimeout {
		t.Fatalf("stalled pack: got %v (%s), want timeout", err, classOf(err))
	}
}

func TestSSH_UnknownClientKey_IsAuth(t *testing.T) {
	f := newFixture(t)
	_, other, _ := lab.NewSSHKey("")
	c, err := New(Options{URL: f.ssh.URL(repo), SSHKeyPEM: other, HostKey: f.hostPK})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.ListRefs(ctx)
	if classOf(err) != report.ErrAuth {
		t.Fatalf("got %v (%s), want auth", err, classOf(err))
	}
}

func TestSSH_WrongPinnedHostKey_IsRefused(t *testing.T) {
	f := newFixture(t)
	other, _, _ := lab.NewSSHKey("")
	c, err := New(Options{URL: f.ssh.URL(repo), SSHKeyPEM: f.keyPEM,
		HostKey: string(ssh.MarshalAuthorizedKey(other.PublicKey()))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.ListRefs(ctx)
	var hk *hostKeyError
	if !errors.As(err, &hk) || classOf(err) != report.ErrTLS {
		t.Fatalf("got %v (%s), want a host key failure", err, classOf(err))
	}
}

func TestNew_EncryptedKeyWithoutPassphrase_IsRefused(t *testing.T) {
	_, pemBytes, _ := lab.NewSSHKey("pw")
	_, err := New(Options{URL: "ssh://git@127.0.0.1:1/x.git", SSHKeyPEM: pemBytes, InsecureIgnoreHostKey: true})
	if err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Fatalf("got %v", err)
	}
}

func TestHTTPS_BearerToken_AuthenticatesAndAWrongOneIsAuth(t *testing.T) {
	noLeaks(t)
	f := newFixture(t)
	pool := x509.NewCertPool()
	pool.AddCert(f.https.Certificate())
	for tok, want := range map[string]report.ErrorType{"bearer-canary-13": "", "wrong-token": report.ErrAuth} {
		c, err := New(Options{URL: f.https.URL + "/" + repo, BearerToken: tok, RootCAs: pool})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		refs, err := c.ListRefs(ctx)
		cancel()
		c.Close()
		if classOf(err) != want {
			t.Fatalf("token %s: got %v (%s), want %q", tok, err, classOf(err), want)
		}
		if want == "" && refs["refs/heads/main"] == "" {
			t.Fatalf("no main in %v", refs)
		}
		if err != nil && strings.Contains(err.Error(), tok) {
			t.Fatalf("token in error: %v", err)
		}
	}
}

func TestHTTPS_WrongPassword_IsAuthWithoutTheSecretInTheError(t *testing.T) {
	f := newFixture(t)
	c := f.httpsClient(t, "wrong-canary-55")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Clone(ctx, CloneOptions{})
	if classOf(err) != report.ErrAuth || strings.Contains(err.Error(), "wrong-canary-55") {
		t.Fatalf("got %v (%s)", err, classOf(err))
	}
}

// resettingListener accepts connections and resets each one (RST, not
// FIN), as the lab edge does for a refuse fault: at once, or, with
// afterHello, once the client's SSH version line has arrived, so that the
// reset surely reaches the client through an established connection.
func resettingListener(t *testing.T, afterHello bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if afterHello {
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, _ = c.Read(make([]byte, 64))
			}
			_ = c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func TestSSH_ServerResetsTheConnection_IsConnect(t *testing.T) {
	noLeaks(t)
	f := newFixture(t)
	for _, afterHello := range []bool{false, true} {
		c := f.sshClient(t, "ssh://git@"+resettingListener(t, afterHello)+"/"+repo)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ops := []struct {
			name string
			do   func() error
		}{
			{"ls-remote", func() error { _, err := c.ListRefs(ctx); return err }},
			{"clone", func() error { _, err := c.Clone(ctx, CloneOptions{}); return err }},
			{"delete", func() error { return c.DeleteBranch(ctx, "vantage/probe-x") }},
		}
		// Where the reset lands (connect, handshake) depends on timing:
		// repeat so that every place is met.
		for i := range 10 {
			for _, op := range ops {
				err := op.do()
				if classOf(err) != report.ErrConnect {
					t.Fatalf("%s #%d against a server resetting (after hello: %t): got %v (%s), want connect",
						op.name, i, afterHello, err, classOf(err))
				}
				if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
					t.Fatalf("%s: the reset is not in the error chain: %v", op.name, err)
				}
			}
		}
	}
}

// A server that ends the connection cleanly (FIN) mid-handshake is a
// protocol failure, not connect, even when the relay's own close reaches
// go-git as a reset.
func TestSSH_ServerClosesCleanlyAfterHello_IsProtocol(t *testing.T) {
	noLeaks(t)
	f := newFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _ = c.Read(make([]byte, 1))
			_ = c.(*net.TCPConn).CloseWrite()
			_, _ = io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	c := f.sshClient(t, "ssh://git@"+ln.Addr().String()+"/"+repo)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range 10 {
		_, err := c.ListRefs(ctx)
		if classOf(err) != report.ErrProtocol {
			t.Fatalf("#%d: server closing cleanly: got %v (%s), want protocol", i, err, classOf(err))
		}
	}
}
func TestSSH_ClosedPort_IsConnect(t *testing.T) {
	noLeaks(t)
	f := newFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more: the kernel refuses
	c := f.sshClient(t, "ssh://git@"+addr+"/"+repo)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.ListRefs(ctx)
	if classOf(err) != report.ErrConnect || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("closed port: got %v (%s), want connect (connection refused)", err, classOf(err))
	}
}
