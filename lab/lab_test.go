package lab

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/vantage-fleet/vantage/lab/labtest"
)

func FuzzParseGitCommand(f *testing.F) {
	f.Add("git-upload-pack '/ws/app.git'")
	f.Add("git-receive-pack '/../../etc.git'")
	f.Add("rm -rf /")
	f.Fuzz(func(t *testing.T, cmd string) {
		service, repo, err := parseGitCommand(cmd)
		if err != nil {
			return
		}
		if service != "git-upload-pack" && service != "git-receive-pack" {
			t.Fatalf("accepted service %q", service)
		}
		if strings.Contains(repo, "..") || strings.HasPrefix(repo, "/") || !strings.HasSuffix(repo, ".git") {
			t.Fatalf("accepted repository %q", repo)
		}
	})
}

func TestParseGitCommand_RejectsTraversalAndOtherCommands(t *testing.T) {
	for _, c := range []string{"git-upload-pack '/../x.git'", "sh -c id", "git-upload-pack", "git-upload-pack '/a/b/c.git'"} {
		if _, _, err := parseGitCommand(c); err == nil {
			t.Errorf("accepted %q", c)
		}
	}
	if s, r, err := parseGitCommand("git-receive-pack '/ws/app.git'"); err != nil || s != "git-receive-pack" || r != "ws/app.git" {
		t.Fatalf("got %q %q %v", s, r, err)
	}
}

func TestBranchAPI_GetAndDeleteAgainstTheRealRepo(t *testing.T) {
	labtest.NeedBinary(t, "git", "apt-get install -y git")
	p, err := StartGitProduct(t.TempDir(), GitProductOptions{Repos: []string{"ws/app.git"}, APIToken: "api-tok"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var events []string
	p.Repos.OnPush(func(repo, ref, old, new string) { events = append(events, repo+" "+ref+" "+new) })
	head := mustRefs(t, p)["refs/heads/main"]
	if err := p.Repos.Write(context.Background(), "ws/app.git", func(dir string) error {
		return exec.Command("git", "-C", dir, "update-ref", "refs/heads/p/x", head).Run()
	}); err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0] != "ws/app.git refs/heads/p/x "+head {
		t.Fatalf("OnPush events %v", events)
	}
	do := func(method, name, tok string) (int, map[string]any) {
		req, _ := http.NewRequest(method, p.API.URL+"/2.0/repositories/ws/app/refs/branches/"+name, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v
	}
	if code, _ := do("GET", "p%2Fx", "wrong"); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	code, v := do("GET", "p%2Fx", "api-tok")
	if code != 200 || v["target"].(map[string]any)["hash"] != head {
		t.Fatalf("GET: %d %v", code, v)
	}
	if code, _ := do("DELETE", "main", "api-tok"); code != 403 {
		t.Fatalf("deleting main: %d", code)
	}
	if code, _ := do("DELETE", "p%2Fx", "api-tok"); code != 204 {
		t.Fatalf("DELETE: %d", code)
	}
	if _, ok := mustRefs(t, p)["refs/heads/p/x"]; ok {
		t.Fatal("branch still in the repository after DELETE")
	}
	if code, _ := do("GET", "p%2Fx", "api-tok"); code != 404 {
		t.Fatalf("GET after DELETE: %d", code)
	}
}

func mustRefs(t *testing.T, p *GitProduct) map[string]string {
	refs, err := p.Repos.Refs(context.Background(), "ws/app.git")
	if err != nil {
		t.Fatal(err)
	}
	return refs
}
