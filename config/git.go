package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Git journey defaults, in one place (see GitJourney.applyDefaults).
const (
	DefaultGitStorage  = "memory"
	DefaultGitSweepMax = 20
)

// Git journey default timings.
var (
	DefaultGitVerifyTimeout  = Dur(10 * time.Second)
	DefaultGitVerifyInterval = Dur(100 * time.Millisecond)
	DefaultGitSweepAge       = Dur(24 * time.Hour)
)

// GitJourney configures a kind = "git" journey ([journey.git]): the ref
// advertisement, a shallow clone and, with push = true, a probe commit
// pushed to a branch under branch_prefix, read back (verify) and deleted.
type GitJourney struct {
	// URL is the repository: https://host/path or ssh://user@host[:port]/path.
	// It must not carry a password.
	URL string `toml:"url"`
	// Branch is the branch to clone and build the probe commit on. Default:
	// the server's HEAD.
	Branch string `toml:"branch"`
	// Push enables the push, verify and cleanup steps. It needs write
	// access and branch_prefix.
	Push bool `toml:"push"`
	// BranchPrefix is the only namespace the journey ever writes: probe
	// branches are named <branch_prefix><region>-<agent>-<slot unix>, and
	// the sweeper deletes only old branches under it. Required when push.
	// Pick one no human uses, e.g. "vantage-probe/".
	BranchPrefix string `toml:"branch_prefix"`
	// Verify enables the read-after-write check after a push. Default true
	// when push is set.
	Verify *bool `toml:"verify"`
	// VerifyTimeout is how long the pushed commit may take to become
	// visible before the run fails as stale_read. Default 10s; it must be
	// shorter than the journey timeout (and defaults to half of it when
	// that is less than 10s).
	VerifyTimeout Duration `toml:"verify_timeout"`
	// VerifyInterval is the pause between verify polls: shorter measures the
	// lag more finely but loads the server more. Default 100ms.
	VerifyInterval Duration `toml:"verify_interval"`
	// Storage is where the clone lives: "memory" (default; fastest, costs
	// agent RAM) or "disk" (under the agent's data_dir, removed after the run).
	Storage string `toml:"storage"`

	// Username and Password (a token) authenticate over HTTPS with basic
	// auth, which GitHub, GitLab and Bitbucket expect for tokens.
	Username string `toml:"username"`
	Password Secret `toml:"password"`
	// BearerToken authenticates over HTTPS with "Authorization: Bearer"
	// (Bitbucket Data Center HTTP access tokens). Exclusive with password.
	BearerToken Secret `toml:"bearer_token"`
	// CAFile is a PEM bundle trusted for HTTPS instead of the system roots.
	CAFile string `toml:"ca_file"`

	// SSHKeyFile is the private key for ssh:// URLs (OpenSSH or PEM form).
	SSHKeyFile string `toml:"ssh_key_file"`
	// SSHKeyPassphrase decrypts an encrypted ssh_key_file.
	SSHKeyPassphrase Secret `toml:"ssh_key_passphrase"`
	// KnownHosts is an OpenSSH known_hosts file that verifies the server.
	KnownHosts string `toml:"known_hosts"`
	// HostKey pins the server's key, as an authorized_keys line
	// ("ssh-ed25519 AAAA…"). Takes precedence over known_hosts.
	HostKey string `toml:"host_key"`
	// InsecureIgnoreHostKey skips host key verification. It is logged as a
	// warning at every start; never use it against a real product.
	InsecureIgnoreHostKey bool `toml:"insecure_ignore_host_key"`

	// API, when set, is also polled by verify (the product's branch API)
	// and used for nothing else.
	API *GitAPI `toml:"api"`

	// SweepAge is the age after which a leftover probe branch under
	// branch_prefix is deleted by the sweeper (at start, then hourly; the
	// age is read from the slot time in the branch name). Default 24h.
	SweepAge Duration `toml:"sweep_age"`
	// SweepMax bounds deletions per sweep, so a sweep never floods the
	// server. Default 20; 0 disables the sweeper.
	SweepMax *int `toml:"sweep_max"`
}

// GitAPI is a product's branch REST API, for read-after-write checks.
type GitAPI struct {
	// Type is "bitbucket-cloud", "bitbucket-dc", "github" or "gitlab".
	Type string `toml:"type"`
	// BaseURL is the API root, e.g. https://api.bitbucket.org,
	// https://bitbucket.example.com, https://api.github.com,
	// https://gitlab.example.com.
	BaseURL string `toml:"base_url"`
	// Token is sent as "Authorization: Bearer" (GitLab: PRIVATE-TOKEN is
	// not used; a personal or project token works as Bearer).
	Token Secret `toml:"token"`
	// Username, when set, sends basic auth (Username, Token) instead
	// (Bitbucket Cloud app passwords).
	Username string `toml:"username"`
	// Workspace is the Bitbucket Cloud workspace, the Bitbucket DC project
	// key, the GitHub owner, or the GitLab namespace.
	Workspace string `toml:"workspace"`
	// Repo is the repository slug (GitHub name, GitLab project path).
	Repo string `toml:"repo"`
}

// GitAPITypes lists the supported branch APIs.
var GitAPITypes = []string{"bitbucket-cloud", "bitbucket-dc", "github", "gitlab"}

func (g *GitJourney) applyDefaults(j *Journey) {
	if g.Storage == "" {
		g.Storage = DefaultGitStorage
	}
	if g.Verify == nil {
		v := g.Push
		g.Verify = &v
	}
	if g.VerifyTimeout.IsZero() {
		g.VerifyTimeout = DefaultGitVerifyTimeout
		if half := j.Timeout.D / 2; half > 0 && half < g.VerifyTimeout.D {
			g.VerifyTimeout = Dur(half)
		}
	}
	if g.VerifyInterval.IsZero() {
		g.VerifyInterval = DefaultGitVerifyInterval
	}
	if g.SweepAge.IsZero() {
		g.SweepAge = DefaultGitSweepAge
	}
	if g.SweepMax == nil {
		n := DefaultGitSweepMax
		g.SweepMax = &n
	}
}

// branchPrefixRE is what a probe branch prefix may contain: a safe subset of
// git ref names.
var branchPrefixRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)

func (g *GitJourney) validate(p *problems, key string, j *Journey) {
	g.applyDefaults(j)
	u, err := url.Parse(g.URL)
	switch {
	case g.URL == "":
		p.add(key+".url", "is required")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "ssh"):
		p.add(key+".url", "must be an absolute https://, http:// or ssh:// URL")
	default:
		if _, has := u.User.Password(); has {
			p.add(key+".url", "must not carry a password; use password = \"env:…\"")
		}
	}
	isSSH := err == nil && u != nil && u.Scheme == "ssh"
	if g.Push {
		switch {
		case g.BranchPrefix == "":
			p.add(key+".branch_prefix", "is required when push = true (the only namespace the journey writes)")
		case !branchPrefixRE.MatchString(g.BranchPrefix) || strings.Contains(g.BranchPrefix, "..") ||
			strings.Contains(g.BranchPrefix, "//") || strings.HasSuffix(g.BranchPrefix, ".lock"):
			p.add(key+".branch_prefix", "must start with a letter or digit and hold only letters, digits, '.', '_', '-' and '/' (no '..' or '//')")
		case g.BranchPrefix == g.Branch || g.BranchPrefix == "main" || g.BranchPrefix == "master":
			p.add(key+".branch_prefix", "must not name a real branch; use a dedicated prefix such as \"vantage-probe/\"")
		}
	} else if *g.Verify {
		p.add(key+".verify", "needs push = true (there is nothing to read back)")
	}
	if g.Branch != "" && (strings.Contains(g.Branch, "..") || strings.ContainsAny(g.Branch, " ~^:?*[\\")) {
		p.add(key+".branch", "is not a valid branch name")
	}
	if g.Storage != "memory" && g.Storage != "disk" {
		p.add(key+".storage", fmt.Sprintf("unknown storage %q (want \"memory\" or \"disk\")", g.Storage))
	}
	if *g.Verify && j.Timeout.D > 0 && g.VerifyTimeout.D >= j.Timeout.D {
		p.add(key+".verify_timeout", fmt.Sprintf("must be shorter than the journey timeout (%s)", j.Timeout.D))
	}
	if *g.SweepMax < 0 {
		p.add(key+".sweep_max", "must not be negative")
	}
	if g.Password.IsSet() && g.BearerToken.IsSet() {
		p.add(key+".bearer_token", "set either password (basic auth) or bearer_token, not both")
	}
	if g.Password.IsSet() && g.Username == "" {
		p.add(key+".username", "is required with password")
	}
	if isSSH {
		if g.SSHKeyFile == "" {
			p.add(key+".ssh_key_file", "is required for an ssh:// url")
		}
		if g.HostKey == "" && g.KnownHosts == "" && !g.InsecureIgnoreHostKey {
			p.add(key+".known_hosts", "an ssh:// url needs known_hosts or host_key (or, explicitly, insecure_ignore_host_key = true)")
		}
		if g.Password.IsSet() || g.BearerToken.IsSet() {
			p.add(key+".password", "password and bearer_token apply to https:// urls only")
		}
	} else if g.SSHKeyFile != "" || g.HostKey != "" || g.KnownHosts != "" || g.InsecureIgnoreHostKey {
		p.add(key+".ssh_key_file", "ssh_key_file, known_hosts, host_key and insecure_ignore_host_key apply to ssh:// urls only")
	}
	if a := g.API; a != nil {
		ak := key + ".api"
		known := false
		for _, t := range GitAPITypes {
			known = known || a.Type == t
		}
		if !known {
			p.add(ak+".type", fmt.Sprintf("unknown api type %q (want one of %s)", a.Type, strings.Join(GitAPITypes, ", ")))
		}
		if bu, err := url.Parse(a.BaseURL); err != nil || bu.Host == "" || (bu.Scheme != "https" && bu.Scheme != "http") {
			p.add(ak+".base_url", "must be an absolute https:// or http:// URL")
		}
		if a.Workspace == "" || strings.ContainsAny(a.Workspace, "?#") {
			p.add(ak+".workspace", "is required (workspace, project key, owner or namespace)")
		}
		if a.Repo == "" || strings.ContainsAny(a.Repo, "/?#") {
			p.add(ak+".repo", "is required (the repository slug, without '/')")
		}
		if !g.Push {
			p.add(ak, "is only used by verify; it needs push = true")
		}
	}
}
