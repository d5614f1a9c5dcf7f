package pipelines

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/probes/gitclient"
)

// gitPusher is the pusher over the git journey's client (probes/gitclient):
// the same shallow clone, commit and push that the git journey times.
type gitPusher struct {
	c    *gitclient.Client
	base string
}

// maxPushFileBytes bounds the CA and key files push mode reads.
const maxPushFileBytes = 1 << 20

// newGitPusher builds the push client from the journey's push_* settings.
// The password defaults to the API credential (a Bitbucket access token
// serves both). It returns the secret values it uses, for redaction.
func newGitPusher(pc *config.PipelinesJourney, agent string) (*gitPusher, []string, error) {
	pw := pc.PushPassword.Value()
	if pw == "" {
		pw = pc.BearerToken.Value()
	}
	if pw == "" {
		pw = pc.BasicPassword.Value()
	}
	o := gitclient.Options{
		URL: pc.PushURL, Username: pc.PushUser, Password: pw,
		HostKey: pc.PushHostKey, KnownHostsFile: pc.PushKnownHosts,
		AuthorName: "vantage " + agent, AuthorEmail: "vantage@localhost",
	}
	if pc.PushCAFile != "" {
		pem, err := readBounded(pc.PushCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("push_ca_file: %w", err)
		}
		o.RootCAs = x509.NewCertPool()
		if !o.RootCAs.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("push_ca_file %s holds no PEM certificate", pc.PushCAFile)
		}
	}
	if pc.PushSSHKeyFile != "" {
		pem, err := readBounded(pc.PushSSHKeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("push_ssh_key_file: %w", err)
		}
		o.SSHKeyPEM = pem
	}
	c, err := gitclient.New(o)
	if err != nil {
		return nil, nil, err
	}
	return &gitPusher{c: c, base: pc.Branch}, []string{pw}, nil
}

// PushProbeCommit implements pusher with gitclient.PushProbeCommit.
func (g *gitPusher) PushProbeCommit(ctx context.Context, branch string) (string, error) {
	return gitclient.PushProbeCommit(ctx, g.c, gitclient.ProbeCommit{Base: g.base, Branch: branch,
		Message: "vantage pipelines probe " + branch})
}

// DeleteBranch implements pusher with gitclient.DeleteBranch.
func (g *gitPusher) DeleteBranch(ctx context.Context, branch string) error {
	return gitclient.DeleteBranch(ctx, g.c, branch)
}

// Close releases the git client's connections.
func (g *gitPusher) Close() { g.c.Close() }

func readBounded(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxPushFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxPushFileBytes)
	}
	return os.ReadFile(path)
}
