package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// HgJourney configures a kind = "hg" journey ([journey.hg]): capabilities,
// heads, clone (or pull from the local cache), and optionally push a probe
// changeset and verify that a fresh request sees it.
type HgJourney struct {
	// URL is the Mercurial repository over http(s), e.g.
	// "https://hg.example.com/scratch/vantage-probe". Required; no query,
	// no credentials (use user and password).
	URL string `toml:"url"`
	// Driver is "native" (default: the agent's own Go client, no Python
	// needed) or "cli" (runs the hg binary, for comparison and for setups
	// the native client does not speak, such as custom extensions).
	Driver string `toml:"driver"`
	// Hg is the hg binary for driver = "cli". Default "hg" from PATH.
	Hg string `toml:"hg"`
	// Push makes the journey commit a changeset (changing probe_file with
	// the run ID) on the current tip and push it. Pushed changesets cannot
	// be removed over the wire: point this at a scratch repository and
	// rotate it when it passes max_changesets. With push, the journey
	// keeps a cache under the agent's data_dir and pulls only what is new.
	Push bool `toml:"push"`
	// Verify checks after a push that a fresh request (new connection)
	// resolves the new changeset. Default true when push is set.
	Verify *bool `toml:"verify"`
	// VerifyTimeout is how long the new changeset may take to become
	// visible (replica lag) before the run fails with stale_read.
	// Default 10s; must be shorter than the journey's timeout.
	VerifyTimeout Duration `toml:"verify_timeout"`
	// VerifyInterval is the pause between two verify attempts. Default 250ms.
	VerifyInterval Duration `toml:"verify_interval"`
	// PushRetries is how many times a push that lost a race to another
	// push (the server's heads moved between reading them and pushing:
	// error:pushraced, or for the cli driver "push creates new remote
	// head") is retried the way a developer would: pull what is new,
	// rebuild the probe changeset on the new tip, push again. Agents push
	// to the same scratch repository at nearly the same moment by design
	// (regions, confirmation runs), so a lost race is the monitor's own
	// concurrency, not a product failure. A push refused for any other
	// reason (hook, abort, auth) is never retried. Retries stay within the
	// journey's timeout. Default 2 (enough for 3 agents pushing at once:
	// each lost race is another agent's success); 0 disables retries, so
	// every lost race ends the run as push_rejected. A pointer so that an
	// explicit 0 differs from unset.
	PushRetries *int `toml:"push_retries"`
	// MaxChangesets is the size at which the scratch repository must be
	// rotated: past it, runs end as probe_error (the prober's own problem,
	// never an alert against the product). Default 10000. Larger values
	// make each clone slower and the cache bigger.
	MaxChangesets int `toml:"max_changesets"`
	// ProbeFile is the path, inside the repository, of the file each push
	// rewrites. Default ".vantage/probe".
	ProbeFile string `toml:"probe_file"`
	// CommitUser is the author of probe changesets.
	// Default "Vantage Probe <vantage-probe@localhost>".
	CommitUser string `toml:"commit_user"`
	// User and Password are sent with HTTP basic authentication.
	User     string `toml:"user"`
	Password Secret `toml:"password"`
	// CAFile is a PEM bundle trusted for HTTPS instead of the system roots
	// (the cli driver passes it as web.cacerts).
	CAFile string `toml:"ca_file"`
	// ConnectTimeout bounds a TCP connect plus TLS handshake. Default 5s.
	ConnectTimeout Duration `toml:"connect_timeout"`
	// ResponseTimeout bounds the wait for a response's headers once a
	// request is sent (getbundle included: the server computes the bundle
	// before answering). Default 15s. The journey's timeout bounds the rest.
	ResponseTimeout Duration `toml:"response_timeout"`
	// MaxBundleBytes bounds the decompressed size of one getbundle
	// response. Default 1 GiB.
	MaxBundleBytes int64 `toml:"max_bundle_bytes"`
}

// Defaults of the hg journey.
const (
	DefaultHgDriver        = "native"
	DefaultHgMaxChangesets = 10000
	DefaultHgProbeFile     = ".vantage/probe"
	DefaultHgCommitUser    = "Vantage Probe <vantage-probe@localhost>"
	DefaultHgMaxBundle     = 1 << 30
	DefaultHgPushRetries   = 2
)

// maxHgPushRetries bounds push_retries: more agents than this racing on
// one repository calls for separate repositories, not more retries.
const maxHgPushRetries = 20

func (h *HgJourney) applyDefaults() {
	if h.Driver == "" {
		h.Driver = DefaultHgDriver
	}
	if h.Hg == "" {
		h.Hg = "hg"
	}
	if h.Verify == nil {
		v := true
		h.Verify = &v
	}
	if h.PushRetries == nil {
		r := DefaultHgPushRetries
		h.PushRetries = &r
	}
	if h.VerifyTimeout.IsZero() {
		h.VerifyTimeout = Dur(10 * time.Second)
	}
	if h.VerifyInterval.IsZero() {
		h.VerifyInterval = Dur(250 * time.Millisecond)
	}
	if h.MaxChangesets == 0 {
		h.MaxChangesets = DefaultHgMaxChangesets
	}
	if h.ProbeFile == "" {
		h.ProbeFile = DefaultHgProbeFile
	}
	if h.CommitUser == "" {
		h.CommitUser = DefaultHgCommitUser
	}
	if h.ConnectTimeout.IsZero() {
		h.ConnectTimeout = Dur(5 * time.Second)
	}
	if h.ResponseTimeout.IsZero() {
		h.ResponseTimeout = Dur(15 * time.Second)
	}
	if h.MaxBundleBytes == 0 {
		h.MaxBundleBytes = DefaultHgMaxBundle
	}
}

func (h *HgJourney) validate(p *problems, key string, j *Journey) {
	// Defaults are applied here, before the checks, so that the loader
	// needs no hg-specific line.
	h.applyDefaults()
	if h.URL == "" {
		p.add(key+".url", "is required")
	} else if u, err := url.Parse(h.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.add(key+".url", fmt.Sprintf("%q is not an http(s) URL", h.URL))
	} else {
		if u.User != nil {
			p.add(key+".url", "must not carry credentials: use user and password (a secret reference)")
		}
		if u.RawQuery != "" || u.Fragment != "" {
			p.add(key+".url", "must not have a query or fragment")
		}
	}
	switch h.Driver {
	case "native", "cli":
	default:
		p.add(key+".driver", fmt.Sprintf("unknown driver %q (want \"native\" or \"cli\")", h.Driver))
	}
	if h.MaxChangesets < 0 {
		p.add(key+".max_changesets", "must be positive")
	}
	if *h.PushRetries < 0 || *h.PushRetries > maxHgPushRetries {
		p.add(key+".push_retries", fmt.Sprintf("must be between 0 and %d", maxHgPushRetries))
	}
	if h.MaxBundleBytes < 0 {
		p.add(key+".max_bundle_bytes", "must be positive")
	}
	for name, d := range map[string]Duration{"verify_timeout": h.VerifyTimeout, "verify_interval": h.VerifyInterval,
		"connect_timeout": h.ConnectTimeout, "response_timeout": h.ResponseTimeout} {
		// A malformed duration is already reported by the decoder.
		if d.problem() == "" && d.D <= 0 {
			p.add(key+"."+name, "must be positive")
		}
	}
	if h.Push && *h.Verify && j.Timeout.D > 0 && h.VerifyTimeout.D >= j.Timeout.D {
		p.add(key+".verify_timeout", fmt.Sprintf("verify_timeout %s must be shorter than the journey timeout %s", h.VerifyTimeout.D, j.Timeout.D))
	}
	if h.Password.IsSet() && h.User == "" {
		p.add(key+".password", "is set but user is empty")
	}
	if h.ProbeFile != "" && (h.ProbeFile[0] == '/' || strings.ContainsAny(h.ProbeFile, "\x00\n\r")) {
		p.add(key+".probe_file", "must be a relative path without NUL or newline")
	}
}
