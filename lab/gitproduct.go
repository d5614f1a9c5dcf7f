package lab

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// GitProductOptions configures StartGitProduct.
type GitProductOptions struct {
	// Repos to create ("ws/repo.git"), each with main and a seed commit.
	Repos []string
	// User and Password, when User is set, protect the smart-HTTP server.
	User     string
	Password string
	// APIToken, when set, protects the branch API (Bearer).
	APIToken string
	// AuthorizedKey, when set, is the client key SSH accepts instead of a
	// generated one (ClientKeyPEM is then empty).
	AuthorizedKey ssh.PublicKey
}

// GitProduct is a small local code-hosting product: the same repositories
// over HTTPS (git http-backend), SSH (git-upload-pack/git-receive-pack) and
// a Bitbucket-Cloud-shaped branch API, with shared faults.
type GitProduct struct {
	Repos  *GitRepos
	Faults *Faults
	// HTTPS serves smart HTTP over TLS; HTTPS.Certificate() is its CA.
	HTTPS *httptest.Server
	// API serves the branch API over plain HTTP on loopback.
	API *httptest.Server
	SSH *GitSSH
	// ClientKeyPEM is the private key SSH accepts (unencrypted); KnownHosts
	// is a known_hosts file for the SSH server; HostKeyLine pins its key.
	ClientKeyPEM []byte
	KnownHosts   string
	HostKeyLine  string
	// CAFile holds the HTTPS server's certificate in PEM.
	CAFile string
}

// StartGitProduct creates the repositories under dir and starts every
// server on loopback. Close stops them.
func StartGitProduct(dir string, o GitProductOptions) (*GitProduct, error) {
	p := &GitProduct{Faults: &Faults{}}
	var err error
	p.Repos, err = NewGitRepos(filepath.Join(dir, "repos"), p.Faults)
	if err != nil {
		return nil, err
	}
	for _, r := range o.Repos {
		if err := p.Repos.Create(context.Background(), r); err != nil {
			p.Repos.Close()
			return nil, err
		}
	}
	hostKey, _, err := NewSSHKey("")
	if err != nil {
		return nil, err
	}
	clientKey, pemBytes, err := NewSSHKey("")
	if err != nil {
		return nil, err
	}
	authorized := clientKey.PublicKey()
	if o.AuthorizedKey != nil {
		authorized = o.AuthorizedKey
	} else {
		p.ClientKeyPEM = pemBytes
	}
	p.SSH = &GitSSH{Repos: p.Repos, HostKey: hostKey, AuthorizedKey: authorized, Faults: p.Faults}
	if err := p.SSH.Start(); err != nil {
		p.Repos.Close()
		return nil, err
	}
	p.HTTPS = StartGitHTTP(&GitHTTP{Repos: p.Repos, User: o.User, Password: o.Password, Faults: p.Faults}, true)
	p.API = httptest.NewServer(p.Faults.Wrap(&BranchAPI{Repos: p.Repos, Token: o.APIToken}))
	p.HostKeyLine = string(ssh.MarshalAuthorizedKey(hostKey.PublicKey()))
	p.KnownHosts = filepath.Join(dir, "known_hosts")
	line := "[127.0.0.1]:" + portOf(p.SSH.Addr()) + " " + p.HostKeyLine
	p.CAFile = filepath.Join(dir, "ca.pem")
	err = errors.Join(
		os.WriteFile(p.KnownHosts, []byte(line), 0o600),
		os.WriteFile(p.CAFile, certPEM(p.HTTPS), 0o600),
	)
	if err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// HTTPSURL returns the HTTPS clone URL of repo.
func (p *GitProduct) HTTPSURL(repo string) string { return p.HTTPS.URL + "/" + repo }

// Close stops every server and pending replica updates.
func (p *GitProduct) Close() {
	p.HTTPS.Close()
	p.API.Close()
	p.SSH.Close()
	p.Repos.Close()
}
