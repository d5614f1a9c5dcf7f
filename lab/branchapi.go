package lab

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
)

// BranchAPI is a Bitbucket-Cloud-shaped branch REST API backed by the real
// bare repositories of a GitRepos:
//
//	GET    /2.0/repositories/{ws}/{repo}/refs/branches/{name} → 200 {"type":"branch","name",…,"target":{"type":"commit","hash"}} | 404
//	DELETE /2.0/repositories/{ws}/{repo}/refs/branches/{name} → 204 | 404
//
// Reads come from the replica (so they lag like the git reads); deletes go
// to the primary. Repository {ws}/{repo} is "{ws}/{repo}.git" in Repos.
type BranchAPI struct {
	Repos *GitRepos
	// Token, when set, is required as "Authorization: Bearer <Token>".
	Token string
}

const branchesPrefix = "/2.0/repositories/"

// ServeHTTP implements http.Handler.
func (b *BranchAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if b.Token != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(b.Token)) != 1 {
			apiError(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
	}
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), branchesPrefix)
	parts := strings.SplitN(rest, "/", 5)
	if !ok || len(parts) != 5 || parts[2] != "refs" || parts[3] != "branches" || parts[4] == "" {
		apiError(w, http.StatusNotFound, "Resource not found")
		return
	}
	ws, _ := url.PathUnescape(parts[0])
	repoSlug, _ := url.PathUnescape(parts[1])
	name, err := url.PathUnescape(parts[4])
	if err != nil || len(name) > 255 || strings.Contains(name, "..") {
		apiError(w, http.StatusBadRequest, "invalid branch name")
		return
	}
	repo := ws + "/" + repoSlug + ".git"
	if _, _, err := b.Repos.resolve(repo); err != nil {
		apiError(w, http.StatusNotFound, "Repository not found")
		return
	}
	ref := "refs/heads/" + name
	switch r.Method {
	case http.MethodGet:
		refs, err := b.Repos.ReplicaRefs(r.Context(), repo)
		if err != nil {
			apiError(w, http.StatusNotFound, "Repository not found")
			return
		}
		sha, ok := refs[ref]
		if !ok {
			apiError(w, http.StatusNotFound, "Branch not found")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"type": "branch", "name": name,
			"target": map[string]any{"type": "commit", "hash": sha},
		})
	case http.MethodDelete:
		if name == "main" {
			apiError(w, http.StatusForbidden, "The main branch cannot be deleted")
			return
		}
		found := false
		err := b.Repos.Write(r.Context(), repo, func(dir string) error {
			refs, err := listRefs(r.Context(), dir)
			if err != nil {
				return err
			}
			if _, found = refs[ref]; !found {
				return nil
			}
			return gitIn(r.Context(), dir, "update-ref", "-d", ref)
		})
		switch {
		case err != nil:
			apiError(w, http.StatusInternalServerError, "delete failed")
		case !found:
			apiError(w, http.StatusNotFound, "Branch not found")
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	default:
		w.Header().Set("Allow", "GET, DELETE")
		apiError(w, http.StatusMethodNotAllowed, "method not allowed")
	}
}

func gitIn(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	return cmd.Run()
}

func apiError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "error", "error": map[string]string{"message": msg}})
}
