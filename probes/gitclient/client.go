// Package gitclient owns the go-git plumbing that Vantage's git journeys
// share: endpoint and auth setup (HTTPS basic or bearer, SSH keys with
// verified host keys), the one phase-recording http.RoundTripper installed
// into go-git, deadlines on SSH connections, and the operations a journey
// is made of (list refs, shallow clone, push a probe commit, delete a
// branch). Errors it returns carry their class (probes.Error). It must not
// know about journeys, schedules or results.
package gitclient

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
)

// Options configures a Client. Exactly the fields of the URL's transport
// apply.
type Options struct {
	// URL is the repository: https://…, http://… or ssh://user@host[:port]/path.
	URL string

	// Username and Password (a token) select HTTP basic auth.
	Username string
	Password string
	// BearerToken selects "Authorization: Bearer" (exclusive with basic).
	BearerToken string
	// RootCAs, when set, replaces the system roots for HTTPS.
	RootCAs *x509.CertPool

	// SSHKeyPEM is the private key (OpenSSH or PEM); SSHKeyPassphrase
	// decrypts it when it is encrypted.
	SSHKeyPEM        []byte
	SSHKeyPassphrase string
	// KnownHostsFile verifies the server's host key (OpenSSH known_hosts).
	KnownHostsFile string
	// HostKey pins the server's host key, in authorized_keys form
	// ("ssh-ed25519 AAAA…").
	HostKey string
	// InsecureIgnoreHostKey skips host key verification. Only when explicit.
	InsecureIgnoreHostKey bool

	// AuthorName and AuthorEmail sign probe commits. Defaults "vantage",
	// "vantage@localhost".
	AuthorName  string
	AuthorEmail string
}

// Client talks to one repository. It is safe for concurrent use; it holds
// an HTTP connection pool (Close releases it).
type Client struct {
	// ep is read-only after New; go-git gets a copy per operation.
	ep     *transport.Endpoint
	isSSH  bool
	author [2]string

	httpAuth transport.AuthMethod
	base     *http.Transport

	sshUser   string
	signer    ssh.Signer
	hostKeyCB ssh.HostKeyCallback
}

// New validates o and returns a Client. Secrets in o are never put in an error.
func New(o Options) (*Client, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" {
		return nil, errors.New("gitclient: url must be an absolute http(s):// or ssh:// URL")
	}
	if u.User != nil {
		if _, hasPw := u.User.Password(); hasPw {
			return nil, errors.New("gitclient: the url must not carry a password; use the password option")
		}
	}
	ep, err := transport.NewEndpoint(o.URL)
	if err != nil {
		return nil, fmt.Errorf("gitclient: bad url: %w", err)
	}
	c := &Client{ep: ep, author: [2]string{o.AuthorName, o.AuthorEmail}}
	if c.author[0] == "" {
		c.author[0] = "vantage"
	}
	if c.author[1] == "" {
		c.author[1] = "vantage@localhost"
	}
	switch ep.Protocol {
	case "http", "https":
		installHTTP()
		base := http.DefaultTransport.(*http.Transport).Clone()
		base.MaxIdleConnsPerHost = 4
		base.ResponseHeaderTimeout = 0
		if o.RootCAs != nil {
			base.TLSClientConfig.RootCAs = o.RootCAs
		}
		c.base = base
		switch {
		case o.BearerToken != "" && o.Password != "":
			return nil, errors.New("gitclient: set basic auth or a bearer token, not both")
		case o.BearerToken != "":
			c.httpAuth = &githttp.TokenAuth{Token: o.BearerToken}
		case o.Password != "" || o.Username != "":
			c.httpAuth = &githttp.BasicAuth{Username: o.Username, Password: o.Password}
		}
	case "ssh":
		c.isSSH = true
		c.sshUser = ep.User
		if c.sshUser == "" {
			c.sshUser = "git"
		}
		if len(o.SSHKeyPEM) == 0 {
			return nil, errors.New("gitclient: ssh needs a private key")
		}
		c.signer, err = ssh.ParsePrivateKey(o.SSHKeyPEM)
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			if o.SSHKeyPassphrase == "" {
				return nil, errors.New("gitclient: the ssh key is encrypted and no passphrase is set")
			}
			c.signer, err = ssh.ParsePrivateKeyWithPassphrase(o.SSHKeyPEM, []byte(o.SSHKeyPassphrase))
		}
		if err != nil {
			// The parser's message never contains key material; keep it out anyway.
			return nil, errors.New("gitclient: cannot parse the ssh private key (wrong format or passphrase)")
		}
		switch {
		case o.HostKey != "":
			pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(o.HostKey))
			if err != nil {
				return nil, fmt.Errorf("gitclient: host_key is not an authorized_keys line: %w", err)
			}
			c.hostKeyCB = ssh.FixedHostKey(pk)
		case o.KnownHostsFile != "":
			cb, err := knownhosts.New(o.KnownHostsFile)
			if err != nil {
				return nil, fmt.Errorf("gitclient: known_hosts: %w", err)
			}
			c.hostKeyCB = cb
		case o.InsecureIgnoreHostKey:
			c.hostKeyCB = ssh.InsecureIgnoreHostKey() //nolint:gosec // explicit opt-in, warned at start
		default:
			return nil, errors.New("gitclient: ssh needs known_hosts, host_key or insecure_ignore_host_key")
		}
	default:
		return nil, fmt.Errorf("gitclient: unsupported scheme %q (want https, http or ssh)", ep.Protocol)
	}
	return c, nil
}

// Close releases idle HTTP connections.
func (c *Client) Close() {
	if c.base != nil {
		c.base.CloseIdleConnections()
	}
}

// IsSSH reports whether the client uses SSH.
func (c *Client) IsSSH() bool { return c.isSSH }

// Host is the server's host name (for server.address).
func (c *Client) Host() string { return c.ep.Host }

// session is an open upload-pack or receive-pack session and what must be
// released with it.
type session struct {
	transport.Session
	up    transport.UploadPackSession
	rp    transport.ReceivePackSession
	relay *sshRelay
}

func (s *session) close() {
	_ = s.Session.Close()
	if s.relay != nil {
		s.relay.wait()
	}
}

// open starts a session for service ("git-upload-pack" or
// "git-receive-pack"), recording the connect and handshake phases over SSH.
func (c *Client) open(ctx context.Context, service string) (*session, error) {
	ph := phasesFrom(ctx)
	if !c.isSSH {
		// go-git's HTTP session keeps the endpoint it is given and rewrites
		// it on every ref advertisement (ModifyEndpointIfRedirect), so each
		// operation gets its own copy: c.ep is never written after New, and
		// concurrent operations (runs, the sweeper) share nothing mutable.
		ep := *c.ep
		tr, err := client.NewClient(&ep)
		if err != nil {
			return nil, probes.Internal(err)
		}
		s := &session{}
		if service == transport.ReceivePackServiceName {
			s.rp, err = tr.NewReceivePackSession(&ep, c.httpAuth)
			s.Session = s.rp
		} else {
			s.up, err = tr.NewUploadPackSession(&ep, c.httpAuth)
			s.Session = s.up
		}
		if err != nil {
			return nil, c.classify(ctx, err, nil)
		}
		return s, nil
	}
	t0 := time.Now()
	relay, err := dialRelay(ctx, hostPort(c.ep.Host, c.ep.Port))
	ph.add(PhaseConnect, time.Since(t0))
	if err != nil {
		return nil, c.classify(ctx, err, nil)
	}
	ep := *c.ep
	ep.Host, ep.Port = "127.0.0.1", relay.Port()
	real := hostPort(c.ep.Host, c.ep.Port)
	var keyChecked bool
	auth := &gitssh.PublicKeys{User: c.sshUser, Signer: c.signer,
		HostKeyCallbackHelper: gitssh.HostKeyCallbackHelper{HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if err := c.hostKeyCB(real, relay.RemoteAddr(), key); err != nil {
				return &hostKeyError{err: err}
			}
			keyChecked = true
			return nil
		}}}
	t1 := time.Now()
	s := &session{relay: relay}
	if service == transport.ReceivePackServiceName {
		s.rp, err = gitssh.DefaultClient.NewReceivePackSession(&ep, auth)
		s.Session = s.rp
	} else {
		s.up, err = gitssh.DefaultClient.NewUploadPackSession(&ep, auth)
		s.Session = s.up
	}
	ph.add(PhaseHandshake, time.Since(t1))
	if err != nil {
		relay.wait()
		if keyChecked && !relay.TimedOut() && relay.UpstreamErr() == nil && !isConnLoss(err) && ctx.Err() == nil {
			// The server proved its identity and then would not let us in.
			return nil, probes.Errorf(report.ErrAuth, "ssh authentication refused: %w", err)
		}
		return nil, c.classify(ctx, err, relay)
	}
	return s, nil
}

// hostKeyError marks a host key that failed verification.
type hostKeyError struct{ err error }

func (e *hostKeyError) Error() string { return "ssh host key verification failed: " + e.err.Error() }
func (e *hostKeyError) Unwrap() error { return e.err }

func isConnLoss(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isConnClass(err) ||
		(errors.As(err, &ne) && ne.Timeout())
}
