package lab

import (
	"strings"
	"testing"
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
