package lab

import (
	"crypto/subtle"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
)

// GitHTTP serves the repositories of a GitRepos over git's smart HTTP
// protocol through the real `git http-backend` (net/http/cgi). Pushes go to
// the primary and are reported through GitRepos.Write; reads come from the
// replica. Faults, when set, are applied in front of everything.
type GitHTTP struct {
	Repos *GitRepos
	// User and Password, when User is set, require HTTP basic auth.
	User     string
	Password string
	// Token, when set, is also accepted as "Authorization: Bearer <Token>".
	Token string
	// Faults is applied to every request (may be nil).
	Faults *Faults

	once    sync.Once
	backend string
	initErr error
}

// ServeHTTP implements http.Handler.
func (g *GitHTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.once.Do(func() { g.backend, g.initErr = exec.LookPath("git") })
	if g.initErr != nil {
		http.Error(w, "git not installed", http.StatusInternalServerError)
		return
	}
	g.Faults.Wrap(http.HandlerFunc(g.serve)).ServeHTTP(w, r)
}

func (g *GitHTTP) serve(w http.ResponseWriter, r *http.Request) {
	if g.User != "" || g.Token != "" {
		u, p, basic := r.BasicAuth()
		basic = basic && g.User != "" && subtle.ConstantTimeCompare([]byte(u), []byte(g.User)) == 1 &&
			subtle.ConstantTimeCompare([]byte(p), []byte(g.Password)) == 1
		tok, hasBearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		bearer := hasBearer && g.Token != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(g.Token)) == 1
		if !basic && !bearer {
			w.Header().Set("WWW-Authenticate", `Basic realm="lab"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
	}
	repo, _, ok := splitRepoPath(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	write := strings.HasSuffix(r.URL.Path, "/git-receive-pack") || r.URL.Query().Get("service") == "git-receive-pack"
	root := g.Repos.ReplicaRoot()
	if write {
		root = g.Repos.PrimaryRoot()
	}
	h := &cgi.Handler{
		Path: g.backend,
		Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1",
			"REMOTE_USER=" + g.User},
	}
	if write && r.Method == http.MethodPost {
		// A failed ref listing after the write only loses the notification:
		// the client already has its answer.
		_ = g.Repos.Write(r.Context(), repo, func(string) error {
			h.ServeHTTP(w, r)
			return nil
		})
		return
	}
	h.ServeHTTP(w, r)
}

// splitRepoPath splits "/ws/repo.git/info/refs" into "ws/repo.git" and
// "info/refs".
func splitRepoPath(p string) (repo, rest string, ok bool) {
	i := strings.Index(p, ".git/")
	if i < 0 {
		return "", "", false
	}
	repo = strings.TrimPrefix(p[:i+4], "/")
	if !repoName.MatchString(repo) || strings.Contains(repo, "..") {
		return "", "", false
	}
	return repo, p[i+5:], true
}

// StartGitHTTP starts g on a loopback port, over TLS (a self-signed
// certificate for 127.0.0.1, see Server.Certificate) when tls is true. The
// caller closes the returned server.
func StartGitHTTP(g *GitHTTP, tls bool) *httptest.Server {
	if tls {
		return httptest.NewTLSServer(g)
	}
	return httptest.NewServer(g)
}
