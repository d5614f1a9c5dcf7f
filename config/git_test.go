package config

import (
	"strings"
	"testing"
	"time"
)

const gitBase = `
[agent]
name = "eu-1"
region = "eu"
data_dir = "/tmp/v"

[[journey]]
name = "clone-push"
kind = "git"
schedule = "@every 1m"
timeout = "30s"
[journey.git]
`

func TestGit_PushJourneyGetsDefaults(t *testing.T) {
	c, err := LoadBytes("git.toml", []byte(gitBase+`url = "https://bitbucket.org/ws/repo.git"
username = "x-token-auth"
password = "env:TOKEN"
push = true
branch_prefix = "vantage-probe/"
`), env(map[string]string{"TOKEN": "tok"}))
	if err != nil {
		t.Fatal(err)
	}
	g := c.Journey[0].Git
	if !*g.Verify || g.Storage != "memory" || g.VerifyTimeout.D != 10*time.Second || *g.SweepMax != DefaultGitSweepMax ||
		g.SweepAge.D != 24*time.Hour || g.Password.Value() != "tok" {
		t.Fatalf("defaults not applied: %+v", g)
	}
}

func TestGit_Problems(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"push without prefix", "url = \"https://h/r.git\"\npush = true\n", "journey[0].git.branch_prefix: is required when push = true"},
		{"prefix naming main", "url = \"https://h/r.git\"\npush = true\nbranch_prefix = \"main\"\n", "journey[0].git.branch_prefix: must not name a real branch"},
		{"prefix with ..", "url = \"https://h/r.git\"\npush = true\nbranch_prefix = \"a/../b\"\n", "journey[0].git.branch_prefix: must start with"},
		{"password in url", "url = \"https://u:p@h/r.git\"\n", "journey[0].git.url: must not carry a password"},
		{"ftp url", "url = \"ftp://h/r.git\"\n", "journey[0].git.url: must be an absolute"},
		{"ssh without host key", "url = \"ssh://git@h/r.git\"\nssh_key_file = \"/k\"\n", "journey[0].git.known_hosts: an ssh:// url needs known_hosts or host_key"},
		{"ssh without key", "url = \"ssh://git@h/r.git\"\nhost_key = \"x\"\n", "journey[0].git.ssh_key_file: is required for an ssh:// url"},
		{"storage", "url = \"https://h/r.git\"\nstorage = \"tape\"\n", `journey[0].git.storage: unknown storage "tape"`},
		{"verify without push", "url = \"https://h/r.git\"\nverify = true\n", "journey[0].git.verify: needs push = true"},
		{"verify_timeout over timeout", "url = \"https://h/r.git\"\npush = true\nbranch_prefix = \"p/\"\nverify_timeout = \"40s\"\n", "journey[0].git.verify_timeout: must be shorter than the journey timeout"},
		{"api type", "url = \"https://h/r.git\"\npush = true\nbranch_prefix = \"p/\"\n[journey.git.api]\ntype = \"gitea\"\nbase_url = \"https://h\"\nworkspace = \"w\"\nrepo = \"r\"\n", `journey[0].git.api.type: unknown api type "gitea"`},
		{"both auths", "url = \"https://h/r.git\"\nusername = \"u\"\npassword = \"env:TOKEN\"\nbearer_token = \"env:TOKEN\"\n", "journey[0].git.bearer_token: set either password"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadBytes("git.toml", []byte(gitBase+tc.body), env(map[string]string{"TOKEN": "canary-git-tok"}))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "canary-git-tok") {
				t.Fatalf("secret in error: %v", err)
			}
		})
	}
}
